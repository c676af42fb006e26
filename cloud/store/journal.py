"""The worker's embedded store (SQLite, WAL): every accepted message as received, the devices'
births, dead letters, and detector checkpoints. Findings are not kept here: they go to the
ticket database and InfluxDB, which are where people read them.

Messages are kept as their raw payload, one row per (device, seq): the unique key is the
durable half of de-duplication, writing costs one insert per message rather than one per reading,
and the evidence charts decode only the blocks of the device and time range they ask for.
Writes are grouped: a micro-batch's telemetry is one statement (:meth:`add_messages`), and the
worker calls :meth:`commit` and only then acknowledges the MQTT messages, so an acknowledged
message is on disk (WAL with ``synchronous=NORMAL``: safe against a crash of the process;
``durable=True`` selects ``FULL`` for safety against power loss too). The worker's journal
copies its WAL into the database file on a thread of its own (``cloud/store/wal.py``), so that
its commits do not wait for it.

Why SQLite and not DuckDB: this write pattern — one keyed insert per message, committed per
batch — is what SQLite's B-tree does well and a column store does badly; DuckDB writes its files
smaller but ingests several times slower, and reads of one device's week cost the same in both
because decoding the blocks dominates (``benchmarks/embedded_store.py`` measures both; the
figures are in BENCHMARKS.md, "Embedded store"). Messages sit in a rowid table with a unique
(device, seq) key: in a ``WITHOUT ROWID`` table the multi-kilobyte rows spill into overflow
pages, which is slower to write and makes a larger file. The journal is the default store
whenever no InfluxDB is configured, and the evidence charts read from it through
:meth:`Journal.series`.

Retention (:meth:`Journal.prune`, the worker's ``--journal-retention-days``): messages received
longer ago than the retention are deleted a bounded slice at a time, oldest first, except each
device's newest message (its seq is what a restarted worker counts on from). What a deleted
message said about lost data is kept: per device, the first seq ever stored and how many were
deleted (table ``pruned``), so :meth:`seq_spans` counts the same seqs missing after a prune as
before it. SQLite reuses the freed pages, so the file stops growing rather than shrinking.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from cloud.store.wal import BACKSTOP_PAGES, WalCheckpointer
from contract import protocol
from contract.errors import QloopError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    device TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    t0 REAL NOT NULL, t1 REAL NOT NULL, received REAL NOT NULL, body BLOB NOT NULL,
    UNIQUE (device, seq));
CREATE INDEX IF NOT EXISTS messages_time ON messages (device, kind, t1);
CREATE TABLE IF NOT EXISTS births (
    device TEXT PRIMARY KEY, body BLOB NOT NULL, received REAL NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, received REAL NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
    reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    device TEXT PRIMARY KEY, state BLOB NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pruned (
    device TEXT PRIMARY KEY, first_seq INTEGER NOT NULL, removed INTEGER NOT NULL);
"""


class JournalError(QloopError, ValueError):
    """There is no journal to read where one was named."""


class Journal:
    def __init__(
        self, path: str | Path, *, durable: bool = False, checkpoint_thread: bool = False
    ) -> None:
        """``checkpoint_thread``: copy the WAL into the database file on a thread of its own,
        not in the commits (``cloud/store/wal.py``; the worker's journal does)."""
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._checkpointer: WalCheckpointer | None = None
        if checkpoint_thread and self.path != ":memory:":
            self._db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            self._checkpointer = WalCheckpointer(self.path)
        self._in_tx = False
        self._pruned_to = 0  # rowid up to which prune() has looked
        self._stored_since_prune = 0  # messages stored since the last prune()

    @classmethod
    def open_readonly(cls, path: str | Path) -> Journal:
        """An existing journal, for reading beside the worker that writes it (nothing is created
        or changed); :class:`JournalError` when there is no journal at ``path``."""
        p = Path(path)
        if not p.is_file():
            raise JournalError(f"no journal at {p}")
        self = cls.__new__(cls)
        self.path = str(p)
        self._checkpointer = None
        self._db = sqlite3.connect(
            f"{p.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        self._lock = threading.Lock()
        self._in_tx = False
        self._db.execute("PRAGMA busy_timeout=5000")
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if not {"messages", "dead_letters"} <= tables:
            self._db.close()
            raise JournalError(f"{p} is not a qloop journal")
        return self

    def _begin(self) -> None:
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True

    def add_message(
        self, device: str, seq: int, kind: str, t0: float, t1: float, received: float, body: bytes
    ) -> bool:
        """Store one telemetry or event message; False when (device, seq) is already stored."""
        with self._lock:
            self._begin()
            cur = self._db.execute(
                "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)",
                (device, seq, kind, t0, t1, received, body),
            )
            self._stored_since_prune += cur.rowcount
            return cur.rowcount == 1

    def add_messages(
        self, messages: Iterable[tuple[str, int, str, float, float, float, bytes]]
    ) -> list[bool]:
        """Store several messages, each ``(device, seq, kind, t0, t1, received, body)`` as for
        :meth:`add_message`, with one statement; per message, whether it was new (False: its
        (device, seq) was already stored). When any was (a redelivery after a restart, say),
        the statement is undone and the messages go one by one, to say which."""
        rows = list(messages)
        if not rows:
            return []
        self._stored_since_prune += len(rows)  # an upper bound (duplicates): prune's pace
        with self._lock:
            self._begin()
            self._db.execute("SAVEPOINT add_messages")
            try:
                cur = self._db.executemany(
                    "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)", rows
                )
                if cur.rowcount == len(rows):  # the usual case: every one new
                    return [True] * len(rows)
                self._db.execute("ROLLBACK TO add_messages")
                return [
                    self._db.execute(
                        "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)", row
                    ).rowcount
                    == 1
                    for row in rows
                ]
            finally:
                self._db.execute("RELEASE add_messages")

    def add_birth(self, device: str, body: bytes, received: float) -> None:
        with self._lock:
            self._begin()
            self._db.execute(
                "INSERT OR REPLACE INTO births VALUES (?, ?, ?)", (device, body, received)
            )

    def births(self) -> Iterator[bytes]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM births").fetchall()
        return (r[0] for r in rows)

    def dead_letter(self, topic: str, payload: bytes, reason: str, received: float) -> None:
        with self._lock:
            self._begin()
            self._db.execute(
                "INSERT INTO dead_letters (received, topic, payload, reason) VALUES (?, ?, ?, ?)",
                (received, topic, payload, reason),
            )

    def save_checkpoint(self, device: str, state: bytes, updated: float) -> None:
        with self._lock:
            self._begin()
            self._db.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)", (device, state, updated)
            )

    def save_checkpoints(self, states: Iterable[tuple[str, bytes]], updated: float) -> None:
        """Several devices' states, committed with the next :meth:`commit` (with the messages)."""
        for device, state in states:
            self.save_checkpoint(device, state, updated)

    def checkpoints(self, devices: Iterable[str]) -> dict[str, bytes]:
        """The saved states of ``devices`` that have one."""
        out = {}
        for device in devices:
            state = self.checkpoint(device)
            if state is not None:
                out[device] = state
        return out

    def checkpoint(self, device: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state FROM checkpoints WHERE device = ?", (device,)
            ).fetchone()
        return None if row is None else row[0]

    def commit(self) -> None:
        with self._lock:
            if self._in_tx:
                self._db.execute("COMMIT")
                self._in_tx = False
                if self._checkpointer is not None:
                    self._checkpointer.committed()

    def close(self) -> None:
        self.commit()
        if self._checkpointer is not None:
            self._checkpointer.close()
        with self._lock:
            self._db.close()

    # --- reading back (evidence charts, tests, operators) -----------------------------------

    def series(
        self, device: str, field: str, start: float = float("-inf"), end: float = float("inf")
    ) -> list[tuple[float, float | None]]:
        """A device's ``field`` over [start, end] in event time, from the stored blocks."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM messages WHERE device = ? AND kind = 'telemetry'"
                " AND t1 >= ? AND t0 <= ? ORDER BY t0",
                (device, start, end),
            ).fetchall()
        out: list[tuple[float, float | None]] = []
        for (body,) in rows:
            t = protocol.decode_telemetry(body)
            if field not in t.fields:
                continue
            i, k = t.fields.index("ts"), t.fields.index(field)
            out.extend((r[i], r[k]) for r in t.rows if start <= r[i] <= end)
        out.sort(key=lambda p: p[0])
        return out

    def count(self, table: str) -> int:
        if table not in ("messages", "births", "dead_letters", "checkpoints"):
            raise ValueError(table)
        with self._lock:
            return self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def dead_letters(self, limit: int = 100) -> list[tuple[float, str, bytes, str]]:
        with self._lock:
            return self._db.execute(
                "SELECT received, topic, payload, reason FROM dead_letters ORDER BY id DESC"
                " LIMIT ?",
                (limit,),
            ).fetchall()

    def dead_letter_reasons(self, limit: int = 20) -> list[tuple[str, int, float]]:
        """The most frequent dead-letter reasons: (reason, count, last received), most first."""
        with self._lock:
            return self._db.execute(
                "SELECT reason, count(*), max(received) FROM dead_letters GROUP BY reason"
                " ORDER BY count(*) DESC, max(received) DESC LIMIT ?",
                (limit,),
            ).fetchall()

    def messages_after(self, device: str, ts: float) -> list[tuple[int, str, bytes]]:
        """``device``'s telemetry and events with readings after event time ``ts``, as
        ``(seq, kind, body)`` in seq order (what a restarted worker feeds its detectors again)."""
        with self._lock:
            return self._db.execute(  # only the rows past ts, not all the device's, are read
                "SELECT seq, kind, body FROM messages INDEXED BY messages_time WHERE device = ?"
                " AND kind IN ('telemetry', 'event') AND t1 > ? ORDER BY seq",
                (device, ts),
            ).fetchall()

    def seq_spans(self) -> dict[str, tuple[int, int]]:
        """Per device, the seqs it never delivered between the first it ever stored and its
        newest, and the newest: ``{device: (missing, newest)}`` (one pass over the (device,
        seq) key; messages :meth:`prune` deleted count as delivered)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT s.device, s.newest - MIN(COALESCE(p.first_seq, s.lo), s.lo) + 1 - s.n"
                " - COALESCE(p.removed, 0), s.newest FROM (SELECT device, MIN(seq) AS lo,"
                " MAX(seq) AS newest, COUNT(*) AS n FROM messages GROUP BY device) AS s"
                " LEFT JOIN pruned AS p USING (device)"
            ).fetchall()
        return {d: (int(missing), int(newest)) for d, missing, newest in rows}

    def prune(self, before: float, limit: int | None = None) -> int:
        """Delete up to ``limit`` messages received before ``before`` (wall-clock seconds),
        oldest first, never a device's newest; how many were deleted. Committed with the next
        :meth:`commit`. Rows are looked at in insertion order from where the last call stopped,
        and the look stops at the first one received since ``before``: a call costs what it
        deletes (about 13 µs a row), not the table's size. The default ``limit``, twice what
        was stored since the last call and at least 20,000, keeps up with any ingest rate."""
        if limit is None:
            limit = max(20_000, 2 * self._stored_since_prune)
        self._stored_since_prune = 0
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, device, seq, received FROM messages WHERE rowid > ?"
                " ORDER BY rowid LIMIT ?",
                (self._pruned_to, limit),
            ).fetchall()
            old = []
            for row in rows:
                if row[3] >= before:
                    break
                old.append(row)
            if not old:
                return 0
            self._begin()
            seqs = {  # each device's (first, newest) seq stored now
                d: self._db.execute(
                    "SELECT MIN(seq), MAX(seq) FROM messages WHERE device = ?", (d,)
                ).fetchone()
                for d in {r[1] for r in old}
            }
            gone = [(rowid, d) for rowid, d, seq, _ in old if seq < seqs[d][1]]
            removed = Counter(d for _, d in gone)
            self._db.executemany(
                "INSERT INTO pruned VALUES (?, ?, ?) ON CONFLICT (device) DO UPDATE SET"
                " first_seq = MIN(first_seq, excluded.first_seq),"
                " removed = removed + excluded.removed",
                [(d, seqs[d][0], n) for d, n in removed.items()],
            )
            self._db.executemany("DELETE FROM messages WHERE rowid = ?", [(r,) for r, _ in gone])
            self._pruned_to = old[-1][0]
            return len(gone)

    def seqs(self, device: str) -> list[int]:
        with self._lock:
            return [
                r[0]
                for r in self._db.execute(
                    "SELECT seq FROM messages WHERE device = ? ORDER BY seq", (device,)
                )
            ]
