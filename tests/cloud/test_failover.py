"""Failover with real processes: ``qloop cloud run`` workers against a real Mosquitto, a
simulated fleet (``qloop simulate``) with a leaking batch, and SIGKILL.

- Two workers on disjoint partitions share a PostgreSQL ticket and checkpoint database; one is
  killed and a new worker on another journal (another host) takes its partitions: no reading is
  lost, no ticket is opened twice, and the moved units' learned detectors resume.
- One worker is killed while findings stream and restarted on its journal: the ticket database
  holds exactly the findings a replay of the journal gives, each once (no orphans).

Every wait is a bound, never a measurement. The fleet is paced (``--speed``), and paused
(SIGSTOP) from just before a kill until the next worker is ready, so that the takeover falls
mid-run, after the detectors have learned, however slowly a loaded machine starts a worker;
what the fleet published before the pause waits for the workers' persistent sessions.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.events import EventFindings
from cloud.ingest.catch_up import catch_up
from cloud.ingest.registry import Registry
from cloud.store.checkpoints import CHECKPOINTS
from cloud.store.journal import Journal
from cloud.ticketing.models import FindingRecord, Ticket
from contract import protocol
from tests import scenarios
from tests.helpers import Collector, wait_for
from tests.scenarios import batch, fault

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

HOUR = 3600.0
LEARN_S = 36 * HOUR  # the baseline-shift detectors' learning period (cloud/anomaly/shift.py)
SPEED = 25_000.0  # simulated seconds per wall second: 3.5 days in 12 s at the most
# the detectors judged here: the event-time ones (offline and clock findings follow the
# worker's wall clock, the event findings' hour window is not checkpointed)
UNITS = 24  # three batches of eight (_scenario)
DETECTOR_FAULTS = ("cooling_decline", "noise_rise", "vibration_rise", "sensor_stuck")


def _scenario() -> str:
    """Three batches of eight units of one model; most of B-LEAK loses 30 % capacity from
    between 42 and 54 h (after the detectors' 36 h of learning), over 12 h."""
    leak = fault("refrigerant_leak", 0.6, ["42h", "54h"], magnitude=0.3, ramp_s="12h")
    return scenarios.scenario(
        "failover",
        11,
        "3.5d",
        batch("B-GOOD-1", 8),
        batch("B-LEAK", 8, leak),
        batch("B-GOOD-2", 8),
        block_rows=60,
    )


class Rig:
    """Real processes of one test, their logs in the test's directory."""

    def __init__(self, broker: str, tmp: Path, db: str) -> None:
        self.broker, self.tmp, self.db = broker, tmp, db
        self.env = {**os.environ, "QLOOP_LOG_LEVEL": "INFO"}
        self.procs: list[subprocess.Popen] = []

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - the process keeps it
        proc = subprocess.Popen(
            [sys.executable, "-m", "qloop", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def worker(
        self, name: str, partitions: str, journal: str | None = None, **options: str
    ) -> subprocess.Popen:
        """``qloop cloud run`` on its journal (``journal``'s: another worker's), ready."""
        ready = self.tmp / f"{name}.ready"
        args = ["--broker", self.broker, "--partitions", partitions, "--db", self.db]
        args += ["--journal", str(self.journal(journal or name)), "--ready-file", str(ready)]
        options.setdefault("checkpoint_every_s", "1")
        for k, v in options.items():
            args += [f"--{k.replace('_', '-')}", v]
        proc = self._start(name, "cloud", "run", *args)
        wait_for(ready.exists, timeout=60, what=f"worker {name}'s subscriptions")
        return proc

    def journal(self, name: str) -> Path:
        return self.tmp / f"{name}-journal.db"

    def simulate(self) -> subprocess.Popen:
        (self.tmp / "scenario.toml").write_text(_scenario())
        return self._start(
            "simulate",
            "simulate",
            str(self.tmp / "scenario.toml"),
            "--broker",
            self.broker,
            "--speed",
            str(SPEED),
        )

    def kill(self, worker: subprocess.Popen, sim: subprocess.Popen) -> None:
        """Pause the fleet, then SIGKILL ``worker`` (:meth:`resume` the fleet after)."""
        sim.send_signal(signal.SIGSTOP)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)

    def resume(self, sim: subprocess.Popen) -> None:
        sim.send_signal(signal.SIGCONT)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)  # a paused fleet
                p.terminate()
        # a worker drains its queue before it stops (cloud/worker.py): on a loaded machine a
        # full queue takes a while, so the bound is generous (S14 saw more than 60 s)
        for p in self.procs:
            p.wait(300)


@pytest.fixture
def published(mosquitto) -> Iterator[Collector]:
    """Every message the fleet publishes, as the broker delivers it to a plain subscriber."""
    c = Collector(mosquitto.address, ["qloop/v1/+/+/#"], client_id="failover-collector")
    yield c
    c.close()


def _sent(c: Collector) -> set[tuple[str, int]]:
    """(device, seq) of every telemetry and event message published."""
    out = set()
    for m in c.messages:
        if m.topic.endswith(("/telemetry", "/event")):
            body = protocol.decode(m.topic, m.payload)
            out.add((body.device, body.seq))
    return out


def _journaled(*paths: Path) -> set[tuple[str, int]]:
    out: set[tuple[str, int]] = set()
    for p in paths:
        if p.exists():
            with sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True) as db:
                out.update(db.execute("SELECT device, seq FROM messages"))
    return out


def _journaled_past_checkpoint(journal: Path) -> bool:
    """Whether ``journal`` holds a message received after its newest detector checkpoint (what
    a worker killed now must feed again from it)."""
    with sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True) as db:
        (found,) = db.execute(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE received >"
            " (SELECT MAX(updated) FROM checkpoints WHERE device NOT LIKE '#%'))"
        ).fetchone()
    return bool(found)


def _span(journal: Path, device: str) -> float:
    """Event time covered by ``device``'s messages in ``journal``."""
    with sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True) as db:
        lo, hi = db.execute(
            "SELECT min(t0), max(t1) FROM messages WHERE device = ?", (device,)
        ).fetchone()
    return 0.0 if lo is None else hi - lo


def _learned(device: str, state: bytes) -> bool:
    """Whether a checkpoint's cooling-decline detector has finished learning."""
    bank = DetectorBank()
    bank.restore(device, state)
    return not bank.detectors(device)[0].learning


def _checkpoints(engine, devices: set[str]) -> dict[str, tuple[bytes, float]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(CHECKPOINTS.c.device, CHECKPOINTS.c.state, CHECKPOINTS.c.updated)
        ).all()
    return {d: (s, u) for d, s, u in rows if d in devices}


def _replayed(path: Path) -> set[tuple]:
    """The detector findings of a journal's whole stream through fresh detectors (no kill),
    as (device, fault, ts, active): the reference a worker's findings are held to."""
    journal = Journal.open_readonly(path)
    registry = Registry()
    for body in journal.births():
        registry.apply_birth(protocol.decode_birth(body))
    replayed = catch_up(journal, DetectorBank(), EventFindings(), list(registry))
    journal.close()
    return {
        (f.device, f.fault, f.ts, f.active)
        for f, _ in replayed.findings
        if f.fault in DETECTOR_FAULTS
    }


def _merged(tmp: Path, *paths: Path) -> Path:
    """One journal with the messages and births of ``paths`` (each (device, seq) once): the
    whole stream of units whose partitions moved from one worker to another."""
    merged = Journal(tmp / "merged-journal.db")
    for p in paths:
        with sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True) as db:
            for row in db.execute("SELECT device, seq, kind, t0, t1, received, body FROM messages"):
                merged.add_message(*row)
            for device, body, received in db.execute("SELECT device, body, received FROM births"):
                merged.add_birth(device, body, received)
    merged.close()
    return tmp / "merged-journal.db"


def _stored_findings(engine, devices: set[str] | None = None) -> list[tuple]:
    """The ticket database's detector findings (of ``devices``), as :func:`_replayed` has them."""
    t = FindingRecord
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.device, t.fault, t.ts, t.active).where(t.fault.in_(DETECTOR_FAULTS))
        ).all()
    return [tuple(r) for r in rows if devices is None or r.device in devices]


def _assert_no_duplicate_ticket(engine) -> list[Ticket]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Ticket.scope, Ticket.model, Ticket.batch, Ticket.device, Ticket.fault, Ticket.status
            )
        ).all()
    batch_keys = [(r.model, r.batch, r.fault) for r in rows if r.scope == "batch"]
    assert len(batch_keys) == len(set(batch_keys)), f"a batch ticket twice: {batch_keys}"
    device_open = [
        (r.device, r.fault) for r in rows if r.scope == "device" and r.status != "closed"
    ]
    assert len(device_open) == len(set(device_open)), f"a device ticket twice: {device_open}"
    return rows


def test_a_killed_workers_partitions_move_to_a_new_worker(mosquitto, pg_url, tmp_path, published):
    rig = Rig(mosquitto.address, tmp_path, pg_url)
    engine = create_engine(pg_url)
    try:
        rig.worker("a", "0-31", checkpoint_db=pg_url)
        rig.worker("b", "32-63", checkpoint_db=pg_url)
        sim = rig.simulate()
        wait_for(lambda: len(published.on("/birth")) == UNITS, 30, "the fleet's births")
        births = [protocol.decode(m.topic, m.payload) for m in published.on("/birth")]
        moved = {b.device for b in births if protocol.partition(b.device) < 32}
        assert moved and len(moved) < len(births), "both workers have units"

        # kill worker a once the detectors of some of its units have learned and are checkpointed
        def learned_by_a() -> set[str]:
            cps = _checkpoints(engine, moved)
            return {d for d, (state, _) in cps.items() if _learned(d, state)}

        wait_for(learned_by_a, 60, "learned detectors in a's checkpoints")
        assert sim.poll() is None, "the kill falls mid-run"
        rig.kill(rig.procs[0], sim)
        learned = learned_by_a()

        # worker c takes a's partitions on a journal of its own, as on another host
        with engine.connect() as conn:
            taken_over = conn.execute(select(func.max(CHECKPOINTS.c.updated))).scalar_one()
        rig.worker("c", "0-31", checkpoint_db=pg_url)
        rig.resume(sim)

        def resumed() -> str | None:
            """A unit learned before the kill whose checkpoint, written by c, is learned while
            c has seen less of it than learning takes: c resumed, it did not relearn."""
            for d, (state, updated) in _checkpoints(engine, learned).items():
                if (
                    updated > taken_over
                    and _learned(d, state)
                    and _span(rig.journal("c"), d) < LEARN_S
                ):
                    return d
            return None

        wait_for(resumed, 60, "a moved unit's detectors resumed on worker c")

        assert sim.wait(120) == 0, rig.log("simulate")[-2000:]
        sent = _sent(published)
        journals = [rig.journal(n) for n in ("a", "b", "c")]
        wait_for(lambda: sent <= _journaled(*journals), 60, "every reading in a journal")
    finally:
        rig.stop()
    # no reading lost: every published message is in a journal, every unit's seqs without a gap
    stored = _journaled(*journals)
    assert sent <= stored and len(sent) > 500
    for device in {d for d, _ in stored}:
        seqs = sorted(s for d, s in stored if d == device)
        assert seqs == list(range(seqs[-1] + 1)), f"a gap in {device}'s seqs"
    # no duplicate ticket, and the leaking batch has its one
    tickets = _assert_no_duplicate_ticket(engine)
    leak = [t for t in tickets if t.scope == "batch" and t.batch == "B-LEAK"]
    assert [t.fault for t in leak] == ["cooling_decline"]
    # worker b was never killed: its units' findings are exactly its journal's, each once
    stayed = {b.device for b in births} - moved
    got = _stored_findings(engine, stayed)
    assert len(got) == len(set(got)) and set(got) == _replayed(rig.journal("b"))
    # the moved units' findings are exactly those of their whole stream (a's journal, then
    # c's): c resumed from the checkpoints and the broker gave it what they had not seen
    got = _stored_findings(engine, moved)
    assert got, "the moved units' findings reached the database"
    whole = {f for f in _replayed(_merged(tmp_path, *journals[::2])) if f[0] in moved}
    assert len(got) == len(set(got)) and set(got) == whole
    engine.dispose()


def test_a_restarted_worker_leaves_exactly_the_replayed_findings(mosquitto, tmp_path, published):
    db = f"sqlite:///{tmp_path / 'tickets.db'}"
    rig = Rig(mosquitto.address, tmp_path, db)
    engine = create_engine(db)

    def findings() -> int:
        with engine.connect() as conn:
            return conn.execute(
                select(func.count())
                .select_from(FindingRecord)
                .where(FindingRecord.fault == "cooling_decline")
            ).scalar_one()

    try:
        rig.worker("w", "0-63")
        sim = rig.simulate()
        # killed while the leak's findings stream in, at most a second after a checkpoint and
        # with messages journaled since it (else the kill can fall right after a checkpoint
        # that covers every journaled message, and there is nothing to catch up)
        wait_for(lambda: findings() >= 3, 90, "the leak's first findings")
        wait_for(lambda: _journaled_past_checkpoint(rig.journal("w")), 30, "messages past it")
        assert sim.poll() is None, "the kill falls mid-run"
        rig.kill(rig.procs[0], sim)
        rig.worker("w2", "0-63", journal="w")
        rig.resume(sim)
        assert sim.wait(120) == 0, rig.log("simulate")[-2000:]
        sent = _sent(published)
        wait_for(lambda: sent <= _journaled(rig.journal("w")), 60, "every reading journaled")
    finally:
        rig.stop()
    assert "fed again" in rig.log("w2"), "the restart caught up from the journal"
    expected = _replayed(rig.journal("w"))
    got = _stored_findings(engine)
    assert len(got) == len(set(got)), "a finding twice"
    assert any(f[1] == "cooling_decline" for f in expected)
    assert set(got) - expected == set(), "findings the journal's stream does not give (orphans)"
    assert expected - set(got) == set(), "findings of the journal's stream never handed on"
    _assert_no_duplicate_ticket(engine)
    engine.dispose()
