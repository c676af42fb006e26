"""The worker's embedded store: SQLite (the journal as it is) against DuckDB, for its write pattern.

The pattern (cloud/store/journal.py): one row per received message holding the raw payload,
keyed by (device, seq) with duplicates ignored, committed in transactions of ``--tx`` messages
(the worker's batch); and reading back one device's field over a week for the evidence charts
(select the device's blocks in the time range, decode them). Messages are telemetry blocks of
``--rows`` rows × 10 fields at a 10 s sample period, from ``--devices`` devices in turn, so each
device's ``messages / devices`` blocks span about a week at the defaults.

Stores, all fed the same payloads chunk by chunk in the same run (payload encoding is not timed):

* ``file``: the bodies appended to a plain file, flushed per chunk — the baseline for the bytes;
* ``sqlite``: :class:`cloud.store.journal.Journal` itself (WAL, synchronous=NORMAL), one
  ``add_message`` per message as the worker calls it; ``sqlite-full``: the same with
  ``durable=True`` (synchronous=FULL, an fsync per commit);
* ``duckdb``: the same table in DuckDB (``INSERT OR IGNORE`` per message, one transaction per
  chunk: the journal's call pattern); ``duckdb-multirow``: one multi-row ``INSERT`` per chunk,
  DuckDB's best case from Python without extra packages (it needs a different journal API).

Reported per store: write throughput (messages/s and readings/s), file size on disk, and the
median latency of reading one device's week of ``supply_c`` back (query + decode), over
``--reads`` devices. The DuckDB stores need ``pip install duckdb`` (not a qloop dependency): without
it they are left out and the report says so; the plain file and SQLite always run.
Usage: ``.venv/bin/python benchmarks/embedded_store.py [--messages N] [--json OUT]``, or
``qloop bench --only embedded_store`` (:func:`bench_embedded_store`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.common import Result, machine
from cloud.store.journal import Journal
from contract import protocol
from contract.protocol import Telemetry
from simulators.aircon import AIRCON_FIELDS

FIELDS = AIRCON_FIELDS
PERIOD_S = 10.0
T0 = 1_716_000_000.0
STORES = ("file", "sqlite", "sqlite-full", "duckdb", "duckdb-multirow")
DUCKDB_STORES = ("duckdb", "duckdb-multirow")

_DUCK_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    device VARCHAR NOT NULL, seq BIGINT NOT NULL, kind VARCHAR NOT NULL,
    t0 DOUBLE NOT NULL, t1 DOUBLE NOT NULL, received DOUBLE NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (device, seq));
"""
_SERIES_SQL = (
    "SELECT body FROM messages WHERE device = ? AND kind = 'telemetry'"
    " AND t1 >= ? AND t0 <= ? ORDER BY t0"
)


def block(rng: random.Random, device: int, seq: int, rows: int) -> Telemetry:
    """One realistic telemetry block: readings with one or two decimals, like a device's."""
    start = T0 + seq * rows * PERIOD_S
    out = []
    for i in range(rows):
        supply = round(16 + rng.gauss(0, 0.3), 2)
        out.append(
            (
                start + i * PERIOD_S,
                16.0,
                round(25 + rng.gauss(0, 0.3), 2),
                supply,
                round(31 + rng.gauss(0, 1), 1),
                1,
                2,
                round(4.2 + rng.gauss(0, 0.1), 2),
                round(41 + rng.gauss(0, 0.5), 1),
                round(abs(rng.gauss(0.03, 0.005)), 3),
            )
        )
    return Telemetry(f"ac-{device:06d}", seq, FIELDS, tuple(out))


Chunk = list[tuple[str, int, float, float, bytes]]  # device, seq, t0, t1, body


def decode_series(bodies: list[bytes], field: str, start: float, end: float) -> list[tuple]:
    """What Journal.series does with the selected blocks (shared so both stores pay the same)."""
    out = []
    for body in bodies:
        t = protocol.decode_telemetry(body)
        i, k = t.fields.index("ts"), t.fields.index(field)
        out.extend((r[i], r[k]) for r in t.rows if start <= r[i] <= end)
    out.sort(key=lambda p: p[0])
    return out


class FileStore:
    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "ab")  # noqa: SIM115 - closed in close()

    def write(self, chunk: Chunk, received: float) -> None:
        for _, _, _, _, body in chunk:
            self._f.write(body)
        self._f.flush()

    def read_week(self, device: str, start: float, end: float) -> int:
        return -1  # an append-only file has no index: not a read-back baseline

    def close(self) -> None:
        self._f.close()


class SqliteStore:
    def __init__(self, path: Path, durable: bool) -> None:
        self.name = "sqlite-full" if durable else "sqlite"
        self.path = path
        self.journal = Journal(path, durable=durable)

    def write(self, chunk: Chunk, received: float) -> None:
        for device, seq, t0, t1, body in chunk:
            self.journal.add_message(device, seq, "telemetry", t0, t1, received, body)
        self.journal.commit()

    def read_week(self, device: str, start: float, end: float) -> int:
        return len(self.journal.series(device, "supply_c", start, end))

    def close(self) -> None:
        self.journal.close()


class DuckStore:
    def __init__(self, path: Path, multirow: bool) -> None:
        import duckdb

        self.name = "duckdb-multirow" if multirow else "duckdb"
        self.path = path
        self.multirow = multirow
        self.db = duckdb.connect(str(path))
        self.db.execute(_DUCK_SCHEMA)
        self.db.execute("CREATE INDEX IF NOT EXISTS messages_time ON messages (device, kind, t1)")

    def write(self, chunk: Chunk, received: float) -> None:
        insert = "INSERT OR IGNORE INTO messages VALUES "
        if self.multirow:
            values = [
                x for d, s, a, b, body in chunk for x in (d, s, "telemetry", a, b, received, body)
            ]
            self.db.execute(insert + ",".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(chunk)), values)
            return
        self.db.execute("BEGIN")
        for device, seq, t0, t1, body in chunk:
            self.db.execute(
                insert + "(?, ?, ?, ?, ?, ?, ?)",
                (device, seq, "telemetry", t0, t1, received, body),
            )
        self.db.execute("COMMIT")

    def read_week(self, device: str, start: float, end: float) -> int:
        rows = self.db.execute(_SERIES_SQL, (device, start, end)).fetchall()
        return len(decode_series([r[0] for r in rows], "supply_c", start, end))

    def close(self) -> None:
        self.db.execute("CHECKPOINT")  # fold the WAL into the file, so its size is the data's
        self.db.close()


def disk_bytes(path: Path) -> int:
    """The store's file plus its WAL/journal siblings."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def duckdb_available() -> bool:
    return importlib.util.find_spec("duckdb") is not None


def available_stores(stores: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the stores that can run here, the DuckDB ones left out because it is not installed)."""
    unknown = sorted(set(stores) - set(STORES))
    if unknown:
        raise ValueError(f"unknown stores {unknown}: choose from {', '.join(STORES)}")
    if duckdb_available():
        return list(stores), []
    return [s for s in stores if s not in DUCKDB_STORES], [s for s in stores if s in DUCKDB_STORES]


def run(
    *,
    messages: int = 100_000,
    rows: int = 60,
    devices: int = 100,
    tx: int = 500,
    reads: int = 20,
    seed: int = 1,
    stores: Sequence[str] = STORES,
    workdir: str | None = None,
) -> dict:
    """Feed every store in ``stores`` that can run here the same messages; the report (a dict:
    ``machine``, ``params``, ``results`` per store, ``skipped`` stores)."""
    if min(messages, rows, devices, tx, reads) < 1:
        raise ValueError("messages, rows, devices, tx and reads must be >= 1")
    names, skipped = available_stores(stores)
    work = Path(tempfile.mkdtemp(prefix="qloop-embedded-", dir=workdir))
    makers: dict[str, Callable[[], object]] = {
        "file": lambda: FileStore(work / "messages.bin"),
        "sqlite": lambda: SqliteStore(work / "journal.db", durable=False),
        "sqlite-full": lambda: SqliteStore(work / "journal-full.db", durable=True),
        "duckdb": lambda: DuckStore(work / "journal.duckdb", multirow=False),
        "duckdb-multirow": lambda: DuckStore(work / "journal-multirow.duckdb", multirow=True),
    }
    opened = [makers[n]() for n in names]
    spent = {s.name: 0.0 for s in opened}
    rng = random.Random(seed)
    total_bytes = 0
    per_device = messages // devices
    n = 0
    try:
        while n < messages:
            chunk: Chunk = []
            for k in range(n, min(n + tx, messages)):
                device, seq = k % devices, k // devices
                t = block(rng, device, seq, rows)
                body = protocol.encode(t)
                chunk.append((t.device, seq, t.rows[0][0], t.rows[-1][0], body))
                total_bytes += len(body)
            n += len(chunk)
            for i in range(len(opened)):  # a different store goes first each chunk
                s = opened[(i + n // tx) % len(opened)]
                started = time.perf_counter()
                s.write(chunk, T0)
                spent[s.name] += time.perf_counter() - started
        for s in opened:  # commit-on-close work (DuckDB's checkpoint) counts as writing
            started = time.perf_counter()
            s.close()
            spent[s.name] += time.perf_counter() - started
        results = {}
        week = (T0, T0 + per_device * rows * PERIOD_S)
        sample = rng.sample(range(devices), min(reads, devices))
        for s in [makers[n]() for n in names]:  # reopened: reads come from disk/page cache
            lat, got = [], -1
            for d in sample:
                started = time.perf_counter()
                got = s.read_week(f"ac-{d:06d}", *week)
                lat.append(time.perf_counter() - started)
            results[s.name] = {
                "write_s": spent[s.name],
                "messages_per_s": messages / spent[s.name],
                "readings_per_s": messages * rows / spent[s.name],
                "bytes_on_disk": disk_bytes(s.path),
                "read_week_median_s": statistics.median(lat) if got >= 0 else None,
                "readings_read": got,
            }
            s.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    params = {"messages": messages, "rows": rows, "devices": devices, "tx": tx, "reads": reads}
    return {
        "machine": machine(),
        "params": {
            **params,
            "seed": seed,
            "stores": names,
            "payload_bytes": total_bytes,
            "messages_per_device": per_device,
        },
        "results": results,
        "skipped": skipped,
    }


def table(report: dict) -> str:
    p = report["params"]
    lines = [
        "| store | write (messages/s) | write (readings/s) | vs. plain file | size on disk (MB)"
        " | one device's week read back (median) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    base = report["results"]["file"]["messages_per_s"] if "file" in report["results"] else None
    for name, r in report["results"].items():
        read = r["read_week_median_s"]
        read_text = (
            "—" if read is None else f"{read * 1000:.0f} ms ({r['readings_read']:,} readings)"
        )
        ratio = f"{r['messages_per_s'] / base:.2f}×" if base else ""
        lines.append(
            f"| {name} | {r['messages_per_s']:,.0f} | {r['readings_per_s']:,.0f} | {ratio}"
            f" | {r['bytes_on_disk'] / 1e6:,.0f} | {read_text} |"
        )
    lines.append(
        f"\n{p['messages']:,} messages × {p['rows']} rows ({p['payload_bytes'] / 1e6:,.0f} MB of"
        f" JSON), {p['devices']} devices, transactions of {p['tx']}; {report['machine']}."
    )
    if report["skipped"]:
        lines.append(f"Not run (`import duckdb` failed): {', '.join(report['skipped'])}.")
    return "\n".join(lines)


def bench_embedded_store(quick: bool = False) -> Result:
    """Each store's writes and size beside the plain append-only file's, same payloads and run;
    DuckDB's read-back beside SQLite's. DuckDB rows only when it is installed."""
    size = {"messages": 400, "devices": 10, "tx": 100, "reads": 3} if quick else {}
    report = run(**size)
    res = Result("embedded_store")
    results = report["results"]
    base = results["file"]
    for name, r in results.items():
        if name == "file":
            continue
        res.add(
            f"{name}: write",
            r["messages_per_s"],
            "messages/s",
            "plain append-only file, same payloads",
            base["messages_per_s"],
        )
        res.add(
            f"{name}: size on disk",
            r["bytes_on_disk"] / 1e6,
            "MB",
            "plain append-only file",
            base["bytes_on_disk"] / 1e6,
        )
    for name in DUCKDB_STORES:
        if name in results and results[name]["read_week_median_s"] is not None:
            res.add(
                f"{name}: one device's week read back (median)",
                results[name]["read_week_median_s"] * 1000,
                "ms",
                "sqlite (`Journal.series`), same run",
                results["sqlite"]["read_week_median_s"] * 1000,
            )
    p = report["params"]
    res.params = p
    res.notes.append(
        f"{p['messages']:,} messages × {p['rows']} rows ({p['payload_bytes'] / 1e6:,.1f} MB of "
        f"JSON), {p['devices']} devices, transactions of {p['tx']}; stores: "
        f"{', '.join(p['stores'])}."
    )
    if report["skipped"]:
        res.notes.append(
            f"DuckDB not installed (`import duckdb` failed): {', '.join(report['skipped'])} not "
            "run; `pip install duckdb` to include them (not a qloop dependency)."
        )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=60)
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--tx", type=int, default=500, help="messages per transaction")
    ap.add_argument("--reads", type=int, default=20, help="devices whose week is read back")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", default=None, help="where the stores are written (a temp dir)")
    ap.add_argument("--stores", nargs="+", choices=STORES, default=list(STORES))
    ap.add_argument("--json", default=None, help="also write the report as JSON here")
    args = ap.parse_args()
    report = run(
        messages=args.messages,
        rows=args.rows,
        devices=args.devices,
        tx=args.tx,
        reads=args.reads,
        seed=args.seed,
        stores=args.stores,
        workdir=args.dir,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print(table(report))


if __name__ == "__main__":
    main()
