"""The store-and-forward buffer on disk: SQLite in WAL mode, one file, survives restarts.

Same contract as :class:`edge_agent.buffer.MemoryBuffer` (one test suite runs over both); what
the disk adds is durability:

* ``append`` commits before it returns, and the message, the device's ``last_seq`` and the
  clearing of its staged rows go into the same transaction: after a crash either all of them
  are there or none.
* ``ack`` removes a batch of ids in one transaction (one commit per publisher pump, not per
  PUBACK).
* The drop counters live in the same file and are updated in the drop's transaction, so the
  count reported in the next birth survives a restart too.

Durability level (``synchronous``): the default ``"NORMAL"`` in WAL mode makes every commit
safe against a crash of the agent's process (SIGKILL, OOM, a bug): the commit is in the WAL
file, in the operating system's page cache, before ``append`` returns. It is *not* fsynced on
each commit, so a power cut or kernel crash can lose the last commits since the last WAL
checkpoint (the database stays consistent; it just goes back in time a little). After such a
rollback the agent may reuse a ``seq`` that had already been published, and the cloud would
take the new message for a duplicate. Where power cuts are common, set ``synchronous = "FULL"``:
every commit is fsynced (one fsync per telemetry block, event and staged sample — at 1 Hz a
negligible cost on flash; it lowers the drain rate of a large backlog, since acks commit too).

Limits: ``max_bytes`` (payload and topic bytes, see :func:`edge_agent.buffer.entry_size`; the
file is larger by SQLite's overhead and does not shrink after a drain — freed pages are reused),
``max_age_s`` (by the ``now`` given to ``append``) and optionally ``max_messages``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from contract.protocol import Value
from edge_agent.buffer import (
    PRIORITIES,
    PRIORITY_TELEMETRY,
    BufferStats,
    Entry,
    Victim,
    entry_size,
    evictions,
)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids never come back after a delete
    priority INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    readings INTEGER NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_queue ON messages (priority, id);
CREATE TABLE IF NOT EXISTS seqs (device TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS staged (
    id INTEGER PRIMARY KEY, device TEXT NOT NULL, row TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS staged_device ON staged (device, id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
_SYNC_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
_ACK_CHUNK = 500  # ids per DELETE statement (SQLite's variable limit is 32766)


class DiskBuffer:
    """A bounded, durable buffer in the SQLite file ``path`` (created if missing)."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int | None = 256 * 1024 * 1024,
        max_age_s: float | None = 30 * 86400.0,
        max_messages: int | None = None,
        synchronous: str = "NORMAL",
    ) -> None:
        if synchronous.upper() not in _SYNC_LEVELS:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNC_LEVELS)}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.max_messages = max_messages
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, owned by the agent's thread; the lock lets stats() and close() come
        # from other threads (the birth is built on the MQTT thread).
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.executescript(_SCHEMA)
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path}: buffer schema {version}, this agent knows {SCHEMA_VERSION}"
            )
        self._depth = 0
        self._load()

    def _load(self) -> None:
        """(Re)read the counters kept in memory from the file."""
        db = self._db
        self._count, self._bytes = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages"
        ).fetchone()
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
        self._last_id = row[0] if row else 0
        self._seqs = dict(db.execute("SELECT device, seq FROM seqs"))
        counters = dict(db.execute("SELECT name, value FROM counters"))
        self._dropped_messages = counters.get("dropped_messages", 0)
        self._dropped_readings = counters.get("dropped_readings", 0)
        self._oldest_created = self._head_created()

    def _head_created(self) -> float | None:
        """The creation time of the first message of each queue: a cheap lower bound of the
        oldest one while ``now`` only grows (enough to decide when to look for expired ones)."""
        heads = [
            r[0]
            for p in PRIORITIES
            for r in self._db.execute(
                "SELECT created FROM messages WHERE priority = ? ORDER BY id LIMIT 1", (p,)
            )
        ]
        return min(heads) if heads else None

    # --- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic, durable step; nested calls join the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._db.execute("ROLLBACK")
                self._load()
                raise
            self._depth = 0
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._load()
                raise

    # --- the Buffer protocol ---------------------------------------------------------------

    def append(
        self,
        topic: str,
        payload: bytes,
        *,
        priority: int = PRIORITY_TELEMETRY,
        readings: int = 0,
        device: str | None = None,
        seq: int | None = None,
        now: float = 0.0,
        clear_staged: bool = False,
    ) -> int:
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority}")
        size = entry_size(topic, payload)
        with self.transaction():
            cur = self._db.execute(
                "INSERT INTO messages (priority, topic, payload, readings, size, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (priority, topic, payload, readings, size, now),
            )
            entry_id = int(cur.lastrowid or 0)
            if device is not None:
                if seq is not None:
                    self._db.execute(
                        "INSERT INTO seqs (device, seq) VALUES (?, ?) "
                        "ON CONFLICT (device) DO UPDATE SET seq = excluded.seq",
                        (device, seq),
                    )
                    self._seqs[device] = seq
                if clear_staged:
                    self._db.execute("DELETE FROM staged WHERE device = ?", (device,))
            self._last_id = entry_id
            self._count += 1
            self._bytes += size
            if self._oldest_created is None or now < self._oldest_created:
                self._oldest_created = now
            self._enforce(now)
        return entry_id

    def _enforce(self, now: float) -> None:
        dropped: list[tuple[int, int]] = []  # (size, readings)
        db = self._db
        if (
            self.max_age_s is not None
            and self._oldest_created is not None
            and self._oldest_created < now - self.max_age_s
        ):
            dropped += db.execute(
                "DELETE FROM messages WHERE created < ? RETURNING size, readings",
                (now - self.max_age_s,),
            ).fetchall()
            self._oldest_created = self._head_created()
        victims = evictions(
            self._count - len(dropped),
            self._bytes - sum(d[0] for d in dropped),
            self.max_messages,
            self.max_bytes,
            self._oldest_first,
        )
        self._delete([entry_id for entry_id, _, _ in victims])
        dropped += [(s, r) for _, s, r in victims]
        if dropped:
            self._count -= len(dropped)
            self._bytes -= sum(d[0] for d in dropped)
            self._dropped_messages += len(dropped)
            self._dropped_readings += sum(d[1] for d in dropped)
            db.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [
                    ("dropped_messages", self._dropped_messages),
                    ("dropped_readings", self._dropped_readings),
                ],
            )
            self._oldest_created = self._head_created()

    def _oldest_first(self, priority: int) -> Iterator[Victim]:
        yield from self._db.execute(
            "SELECT id, size, readings FROM messages WHERE priority = ? ORDER BY id", (priority,)
        )

    def _delete(self, ids: Sequence[int]) -> list[tuple[int]]:
        out: list[tuple[int]] = []
        for k in range(0, len(ids), _ACK_CHUNK):
            chunk = ids[k : k + _ACK_CHUNK]
            marks = ",".join("?" * len(chunk))
            out += self._db.execute(
                f"DELETE FROM messages WHERE id IN ({marks}) RETURNING size", chunk
            ).fetchall()
        return out

    def pending(
        self, priority: int, after_id: int, limit: int, before_id: int | None = None
    ) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, priority, readings, created FROM messages "
                "WHERE priority = ? AND id > ? AND id < ? ORDER BY id LIMIT ?",
                (priority, after_id, before_id if before_id is not None else 2**63 - 1, limit),
            ).fetchall()
        return [Entry(i, t, bytes(p), pr, r, c) for i, t, p, pr, r, c in rows]

    def ack(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if not ids:
            return
        with self.transaction():
            gone = self._delete(ids)
            self._count -= len(gone)
            self._bytes -= sum(g[0] for g in gone)

    def last_seq(self, device: str) -> int | None:
        with self._lock:
            return self._seqs.get(device)

    def last_id(self) -> int:
        with self._lock:
            return self._last_id

    def stage_row(self, device: str, row: Sequence[Value]) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO staged (device, row) VALUES (?, ?)",
                (device, json.dumps(list(row), allow_nan=False)),
            )

    def staged_rows(self, device: str) -> list[tuple[Value, ...]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT row FROM staged WHERE device = ? ORDER BY id", (device,)
            ).fetchall()
        return [tuple(json.loads(r[0])) for r in rows]

    def stats(self) -> BufferStats:
        with self._lock:
            return BufferStats(
                self._count, self._bytes, self._dropped_messages, self._dropped_readings
            )

    def __len__(self) -> int:
        with self._lock:
            return self._count

    def close(self) -> None:
        """Close the file (a clean stop; a crash needs no close: the WAL is replayed on open)."""
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.close()
                self._db = None  # type: ignore[assignment]
