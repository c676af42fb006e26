"""Cloud ingest throughput: simulated devices publish through Mosquitto to real
``qloop cloud run`` worker processes (all detectors, the embedded journal, a SQLite ticket
database), against a bare paho subscriber that only counts the same messages.

Traffic is generated once, before anything is timed: the fleet simulator's units through their
own :class:`edge_agent.core.DeviceCore` (births, 60-row telemetry blocks of 10 fields, any
safety events), encoded and split over publisher processes, so publishing costs the consumer no
GIL. Each phase gets a fresh broker and fresh stores, and the same bytes:

1. bare subscriber: counts telemetry and event messages; readings/s from the first publish to the
   last message received — the ceiling of a Python MQTT consumer on this machine;
2. one worker on all 64 partitions, receiving in a child process (``--receiver process``), and
   again receiving on paho's thread in the worker's process (``--receiver thread``); births are
   published (and stored) first, untimed, then the telemetry; done when the journal holds every
   message (zero loss is that count, checked); the CPU time the worker's process and its
   receiver process used meanwhile is read from /proc (on this 2-core VM the broker, the
   publishers and the worker share the cores: a receiver process can only help while one idles);
3. two workers on partitions 0-31 and 32-63, each with its own journal and ticket database;
4. the same devices' readings in 12-row blocks (five times the messages): the bare subscriber and
   one worker (both receivers) again, for the per-message cost;
5. the worker's own path in-process, no broker: the same messages queued up front and taken by
   :meth:`cloud.worker.Worker.process_batch` (decode, journal, detectors, ticketing, commit) in
   full batches, at 60- and 12-row blocks. Against the bare subscriber it says how far the
   worker's processing alone is from what one Python MQTT consumer can take in; it is also the
   steadier figure on a shared machine (no broker or publisher processes competing).

The bare subscriber and the one worker receiving in a child process (1, the first of 2, and
their 12-row twins in 4) run in turn three times (:func:`paired_phases`), each worker phase set
against the bare phase just before it; the headline ratio is the median of the three. On the
shared VM the bare subscriber's rate alone moved by half between runs of the same code, so one
pair was mostly a measure of that.

``worker_phase(profile=...)`` and :func:`inprocess_phase` with ``profile`` write a cProfile of
the worker for the profile in BENCHMARKS.md.
"""

from __future__ import annotations

import cProfile
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    CountingSubscriber,
    Result,
    child_pids,
    collect_publishers,
    cpu_seconds,
    publish_in_processes,
    spawn_qloop,
    stop_process,
    wait_until,
)
from benchmarks.scale import TELEMETRY_AND_EVENTS, scale_scenario
from cloud.worker import Worker
from cloud.worker_settings import WorkerSettings
from contract import protocol
from contract.mqtt import BrokerAddress, InboundMessage
from contract.protocol import Telemetry
from edge_agent.core import DeviceCore, Identity
from qloop.broker import BrokerProcess, start_broker
from simulators.aircon import AIRCON_FIELDS
from simulators.fleet import Fleet

Item = tuple[str, bytes, bool]
PAIRS = 3  # bare subscriber / one worker pairs per block size (the ratio is their median's)


@dataclass
class Traffic:
    births: list[Item]
    messages: list[Item]  # telemetry blocks and events, in the order the devices sent them
    readings: int


def make_traffic(
    devices: int, blocks: int, sample_period_s: float = 10.0, block_rows: int = 60
) -> Traffic:
    """``devices`` simulated units, ``blocks`` full blocks of ``block_rows`` rows each, as MQTT
    publications."""
    sc = scale_scenario(devices, sample_period_s, blocks * block_rows * sample_period_s)
    fleet = Fleet(sc)
    cores = [
        DeviceCore(
            Identity(u.device, u.model, u.batch, u.serial, u.firmware, u.product, sample_period_s),
            AIRCON_FIELDS,
            block_rows=block_rows,
            block_max_age_s=float("inf"),
        )
        for u in fleet.units
    ]
    births = [
        (protocol.topic(c.identity.device, "birth"), protocol.encode(c.birth(sc.start_ts)), True)
        for c in cores
    ]
    messages: list[Item] = []
    readings = 0
    for step in range(blocks * block_rows):
        ts = sc.start_ts + step * sample_period_s
        rows, online = fleet.step(ts)
        values = rows.tolist()
        for i in online.nonzero()[0].tolist():
            for m in cores[i].sample(values[i], now=ts):
                messages.append(
                    (protocol.topic(m.device, protocol.kind_of(m)), protocol.encode(m), False)
                )
                if isinstance(m, Telemetry):
                    readings += len(m.rows)
    for c in cores:  # offline spells leave partial blocks open
        for m in c.flush():
            messages.append((protocol.topic(m.device, "telemetry"), protocol.encode(m), False))
            readings += len(m.rows)
    return Traffic(births, messages, readings)


def split(items: list[Item], parts: int) -> list[list[Item]]:
    """Round-robin by device, so each device's messages stay in order in one publisher."""
    out: list[list[Item]] = [[] for _ in range(parts)]
    for item in items:
        out[protocol.partition(item[0].split("/")[3]) % parts].append(item)
    return [p for p in out if p]


def journal_count(path: Path, table: str) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
    except sqlite3.OperationalError:  # not created yet
        return 0


def _publish(
    broker: BrokerProcess, items: list[Item], workdir: Path, parts: int
) -> tuple[float, float]:
    """Publish ``items`` from ``parts`` processes at once; (first publish, last ack)."""
    go, procs, out = publish_in_processes(broker.host, broker.port, split(items, parts), workdir)
    go.set()
    return collect_publishers(procs, out)


def bare_phase(t: Traffic, workdir: Path, publishers: int) -> float:
    """Readings/s a bare paho subscriber receives (the Python consumer's ceiling)."""
    broker = start_broker(workdir / "broker-bare", persistence=False)
    try:
        counter = CountingSubscriber(
            broker.host, broker.port, TELEMETRY_AND_EVENTS, expected=len(t.messages)
        )
        t0, _ = _publish(broker, t.messages, workdir, publishers)
        n, _, last = counter.result()
    finally:
        broker.stop()
    if n != len(t.messages):
        raise RuntimeError(f"bare subscriber got {n} of {len(t.messages)} messages")
    return t.readings / (last - t0)


def paired_phases(
    t: Traffic, workdir: Path, publishers: int, pairs: int
) -> tuple[float, dict[str, float], list[tuple[float, dict[str, float]]]]:
    """The bare subscriber and one worker (``--receiver process``), in turn, ``pairs`` times:
    the pair with the median ratio (its bare readings/s and worker phase), and every pair.
    On a shared machine the bare subscriber's rate alone moved by half between runs of the
    same code (BENCHMARKS.md, issue 17, fifth part): each worker phase is set against the
    bare phase just before it, and the ratio is the median of those."""
    runs = []
    for k in range(pairs):
        wd = workdir / f"pair-{k}"
        wd.mkdir()
        runs.append(
            (bare_phase(t, wd, publishers), worker_phase(t, wd, publishers, ["0-63"], "one"))
        )
    ranked = sorted(runs, key=lambda r: r[1]["readings_per_s"] / r[0])
    bare, one = ranked[len(ranked) // 2]
    return bare, one, runs


def _cpu(workers: list) -> list[tuple[float, float]]:
    """CPU seconds each worker process has used so far, and its child processes (the receiver)."""
    return [(cpu_seconds(w.pid), sum(map(cpu_seconds, child_pids(w.pid)))) for w in workers]


def worker_phase(
    t: Traffic,
    workdir: Path,
    publishers: int,
    partitions: list[str],
    tag: str,
    profile: Path | None = None,
    receiver: str = "process",
) -> dict[str, float]:
    """Readings/s through ``len(partitions)`` worker processes until every message is journaled
    (``receiver``: the workers' ``--receiver``)."""
    broker = start_broker(workdir / f"broker-{tag}", persistence=False)
    workers, journals = [], []
    try:
        for k, spec in enumerate(partitions):
            wd = workdir / f"{tag}-w{k}"
            wd.mkdir()
            journals.append(wd / "journal.db")
            workers.append(
                spawn_qloop(
                    [
                        "--log-level", "WARNING",
                        "cloud", "run",
                        "--broker", f"{broker.host}:{broker.port}",
                        "--partitions", spec,
                        "--db", f"sqlite:///{wd / 'tickets.db'}",
                        "--journal", str(journals[-1]),
                        "--client-id", f"bench-{tag}-{k}",
                        "--receiver", receiver,
                    ],
                    wd / "worker.log",
                    profile=profile,
                )
            )  # fmt: skip

        def total(table: str) -> int:
            return sum(journal_count(j, table) for j in journals)

        # births first, untimed: they also prove every worker is subscribed
        _publish(broker, t.births, workdir, 1)
        if not wait_until(lambda: total("births") >= len(t.births), 120, 0.1):
            raise RuntimeError(f"workers stored {total('births')} of {len(t.births)} births")
        cpu0 = _cpu(workers)
        t0, _ = _publish(broker, t.messages, workdir, publishers)
        last, since = -1, time.monotonic()
        # done when every message is stored or refused with a reason (a dead letter)
        while (n := total("messages") + total("dead_letters")) < len(t.messages):
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since > 30:
                break  # stalled: reported as loss below
            time.sleep(0.05)
        t1 = time.monotonic()
        cpu = [(a - a0, b - b0) for (a, b), (a0, b0) in zip(_cpu(workers), cpu0, strict=True)]
        stored = total("messages")
        dead = total("dead_letters")
    finally:
        for w in workers:
            stop_process(w)
        broker.stop()
    return {
        "readings_per_s": t.readings / (t1 - t0),
        "stored": stored,
        "published": len(t.messages),
        "lost": len(t.messages) - stored - dead,
        "dead_letters": dead,
        "seconds": t1 - t0,
        "cpu_s_worker": sum(c[0] for c in cpu),
        "cpu_s_receiver": sum(c[1] for c in cpu),
    }


def inprocess_phase(t: Traffic, workdir: Path, profile: Path | None = None) -> dict[str, float]:
    """Readings/s of one worker's processing alone: every message queued before the clock
    starts (births first, untimed), then :meth:`Worker.process_batch` until the queue is empty,
    with its journal and SQLite ticket database in ``workdir``; no broker (acks are no-ops)."""
    workdir.mkdir(parents=True, exist_ok=True)
    settings = WorkerSettings(
        broker=BrokerAddress("127.0.0.1", 1),  # never connected: the link is not started
        partitions=list(range(protocol.PARTITIONS)),
        db_url=f"sqlite:///{workdir / 'tickets.db'}",
        journal_path=str(workdir / "journal.db"),
        queue_size=len(t.births) + len(t.messages),  # all of it queued up front
    )
    worker = Worker(settings)

    def queue_up(items: list[Item]) -> None:
        for topic, payload, retain in items:
            worker._queue.put(InboundMessage(topic, payload, retain, False))

    try:
        queue_up(t.births)
        while worker.process_batch(timeout=0.0):
            pass
        queue_up(t.messages)
        prof = cProfile.Profile() if profile is not None else None
        t0, cpu0 = time.perf_counter(), time.process_time()
        if prof is not None:
            prof.enable()
        while worker.process_batch(timeout=0.0):
            pass
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        if prof is not None:
            prof.disable()
            prof.dump_stats(profile)
        stored = worker.journal.count("messages")
    finally:
        worker.journal.close()
    return {
        "readings_per_s": t.readings / seconds,
        "seconds": seconds,
        "cpu_s": cpu,
        "stored": stored,
        "published": len(t.messages),
    }


def bench_ingest(quick: bool = False) -> Result:
    res = Result("ingest")
    devices, blocks = (20, 2) if quick else (2000, 10)
    publishers = 2
    with tempfile.TemporaryDirectory(prefix="qloop-bench-ingest-") as tmp:
        workdir = Path(tmp)
        t = make_traffic(devices, blocks)
        pairs = 1 if quick else PAIRS
        bare, one, runs = paired_phases(t, workdir, publishers, pairs)
        threaded = worker_phase(t, workdir, publishers, ["0-63"], "thread", receiver="thread")
        two = worker_phase(t, workdir, publishers, ["0-31", "32-63"], "two")
        # the same readings in 12-row blocks (a unit sending every 2 minutes at 10 s): five
        # times the messages, so the per-message costs weigh five times as much
        small = make_traffic(devices, blocks * 5, block_rows=12)
        (workdir / "12").mkdir()
        bare12, one12, runs12 = paired_phases(small, workdir / "12", publishers, pairs)
        threaded12 = worker_phase(
            small, workdir / "12", publishers, ["0-63"], "thread", receiver="thread"
        )
        alone = inprocess_phase(t, workdir / "in-process")
        alone12 = inprocess_phase(small, workdir / "12" / "in-process")
    res.params = {
        "devices": devices,
        "blocks_per_device": blocks,
        "readings": t.readings,
        "messages": len(t.messages),
        "publisher_processes": publishers,
        "one_worker": one,
        "one_worker_thread_receiver": threaded,
        "two_workers": two,
        "bare_readings_per_s": bare,
        "messages_12_row_blocks": len(small.messages),
        "one_worker_12_row_blocks": one12,
        "one_worker_thread_receiver_12_row_blocks": threaded12,
        "bare_readings_per_s_12_row_blocks": bare12,
        "in_process": alone,
        "in_process_12_row_blocks": alone12,
        "pairs": runs,
        "pairs_12_row_blocks": runs12,
    }
    res.add(
        "one worker, all detectors + journal, zero loss",
        one["readings_per_s"],
        "readings/s",
        "bare paho subscriber (count only)",
        bare,
        target=">= 100,000 readings/s and >= 50 % of bare",
        met=one["readings_per_s"] >= 100_000 and one["readings_per_s"] >= 0.5 * bare,
        note=f"lost {one['lost']}",
    )
    for rows, phase, bare_rate in ((60, threaded, bare), (12, threaded12, bare12)):
        res.add(
            f"one worker receiving on a thread (--receiver thread), {rows}-row blocks",
            phase["readings_per_s"],
            "readings/s",
            f"bare paho subscriber, {rows}-row blocks",
            bare_rate,
            note=f"lost {phase['lost']}",
        )
    res.add(
        "two workers, partitions 0-31 / 32-63",
        two["readings_per_s"],
        "readings/s",
        "one worker (same run)",
        one["readings_per_s"],
        note=f"lost {two['lost']}",
    )
    res.add(
        "two workers, partitions 0-31 / 32-63",
        two["readings_per_s"],
        "readings/s",
        "bare paho subscriber (count only)",
        bare,
        note=f"lost {two['lost']}",
    )
    res.add(
        "one worker, 12-row blocks, zero loss",
        one12["readings_per_s"],
        "readings/s",
        "bare paho subscriber, 12-row blocks",
        bare12,
        note=f"lost {one12['lost']}",
    )
    for rows, phase, bare_rate in ((60, alone, bare), (12, alone12, bare12)):
        res.add(
            f"one worker's path in-process (no broker), {rows}-row blocks",
            phase["readings_per_s"],
            "readings/s",
            f"bare paho subscriber, {rows}-row blocks",
            bare_rate,
            note=f"stored {phase['stored']:,}/{phase['published']:,}",
        )
    for rows, phase, traffic in ((60, one, t), (12, one12, small)):
        res.add(
            f"one worker, time per {rows}-row message",
            phase["seconds"] / len(traffic.messages) * 1e6,
            "µs",
            f"bare subscriber, time per {rows}-row message",
            (traffic.readings / (bare if rows == 60 else bare12)) / len(traffic.messages) * 1e6,
        )
    for rows, phase, threaded_phase, traffic in (
        (60, one, threaded, t),
        (12, one12, threaded12, small),
    ):
        per = 1e6 / len(traffic.messages)
        res.add(
            f"one worker, CPU per {rows}-row message (worker + receiver process)",
            (phase["cpu_s_worker"] + phase["cpu_s_receiver"]) * per,
            "µs",
            "receiving on a thread (same run)",
            (threaded_phase["cpu_s_worker"] + threaded_phase["cpu_s_receiver"]) * per,
            note=f"receiver process {phase['cpu_s_receiver'] * per:,.0f} µs",
        )
    res.notes.append(
        f"{devices:,} devices × {blocks} blocks × 60 readings × 10 fields = {t.readings:,} "
        f"readings in {len(t.messages):,} messages from {publishers} publisher processes; "
        f"journal held {one['stored']:,}/{one['published']:,} (one worker) and "
        f"{two['stored']:,}/{two['published']:,} (two workers) messages. The same devices in "
        f"12-row blocks: {small.readings:,} readings in {len(small.messages):,} messages, "
        f"journal held {one12['stored']:,}/{one12['published']:,}."
    )
    for rows, pairs_run in ((60, runs), (12, runs12)):
        res.notes.append(
            f"{rows}-row blocks, bare subscriber and one worker run in turn, "
            f"{len(pairs_run)} times (the figures above are the pair with the median ratio): "
            + "; ".join(
                f"{b:,.0f} and {w['readings_per_s']:,.0f} readings/s, {w['readings_per_s'] / b:.3f}"
                for b, w in pairs_run
            )
        )
    every = [w for _, w in runs + runs12]
    if any(p["lost"] for p in (*every, threaded, two, threaded12)):
        res.notes.append("**messages were lost** — see the counts above")
    return res
