"""The batch tests over a real detector bank (cloud/ingest/pooling.py): units fed as the
worker feeds them, rounds in event time, the batch whose units drift together found from their
shifts, the batch born short found from their learned levels; units without a birth are left
out."""

from __future__ import annotations

import math
import pickle

import numpy as np

from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.base import Block
from cloud.anomaly.peers import PeerFinding
from cloud.anomaly.pooled import BatchFinding
from cloud.ingest.pooling import BatchPooling
from cloud.ingest.registry import Registry
from cloud.store.journal import Journal
from contract.protocol import Birth

H = 3600.0
T0 = 1.75e9


def _block(rng: np.random.Generator, device: str, hour: int, loss: float) -> Block:
    """An hour of one-minute readings: a daily outdoor cycle, the compressor cycling, ΔT
    ``1 - loss`` of the unit's healthy one."""
    ts = T0 + hour * H + np.arange(60) * 60.0
    n = len(ts)
    day = 2 * math.pi * (ts - T0) / 86_400.0
    ambient = 30 + 4 * np.sin(day) + rng.normal(0, 0.3, n)
    comp = ((np.sin(ts / 700.0) + rng.normal(0, 0.1, n)) > -0.5).astype(float)
    ret = 25 + 0.2 * (ambient - 30) + rng.normal(0, 0.2, n)
    dt = (9 - 0.08 * (ambient - 30)) * (1 - loss) + rng.normal(0, 0.25, n)
    cols = {
        "compressor_on": comp,
        "return_c": ret,
        "supply_c": ret - dt,
        "ambient_c": ambient,
        "fan_speed": np.full(n, 2.0),
        "noise_db": 42 + rng.normal(0, 0.5, n),
        "vibration_g": 0.14 + rng.normal(0, 0.005, n),
    }
    return Block(device, ts, cols)


def test_a_drifting_batch_is_found_from_the_units_shifts() -> None:
    rng = np.random.default_rng(7)
    bank, registry = DetectorBank(generic=False), Registry()
    units = [(f"ac-{b}-{u:02d}", f"B{b}") for b in range(3) for u in range(15)]
    for device, batch in units:
        registry.apply_birth(Birth(device, "air_conditioner", "M", batch, "SN", "1", 60.0, T0))
    drifting = {units[u][0]: 60 + 8 * u for u in range(5)}  # a third of B0, onsets 8 h apart
    stranger = "ac-x-00"  # no birth: its batch is not known
    found: list[BatchFinding] = []
    alarmed: set[str] = set()  # units whose own cooling_decline alarm came
    pooling = BatchPooling(bank, registry, found.append)

    for hour in range(5 * 24):
        for device, _ in [*units, (stranger, "")]:
            onset = drifting.get(device, math.inf)
            loss = min(0.25, max(0.0, hour - onset) / 96 * 0.25)  # 25 % over four days
            bank.feed("air_conditioner", _block(rng, device, hour, loss))
        alarmed |= {f.device for f in bank.flush() if f.fault == "cooling_decline"}
        pooling.judged(d for d, _ in units)
        if found:
            break

    assert pooling.rounds > 0
    assert found, "the drifting batch was not found"
    first = found[0]
    assert (first.model, first.batch, first.fault) == ("M", "B0", "cooling_decline")
    assert set(first.shifts) <= set(drifting) and first.beyond >= 3
    assert first.units == 15 and first.reference_units == 30  # B1 and B2; the stranger is out
    assert len(alarmed) < first.beyond  # it stood out before its units had all alarmed
    assert bank.shifts()["cooling_decline"][0].count(stranger) == 1  # tracked, just not tested


def test_a_batch_born_short_is_found_from_the_units_levels_while_they_learn() -> None:
    """B1's units leak 15 % from their first reading: each learns it as its normal, no unit's
    detector and no shift says anything; B1 against B0 and B2 does, already while the units
    learn (provisional fits of their sums so far). The named units then end their learning
    (their level comes from their peers) and have their baselines moved up to their peers', and
    each unit's own detector finds its shortfall within a few windows, long before its 36 h of
    learning would have ended; no unit of B0 or B2 is named or alarms."""
    rng = np.random.default_rng(9)
    bank, registry = DetectorBank(generic=False), Registry()
    units = [(f"ac-{b}-{u:02d}", f"B{b}") for b in range(3) for u in range(12)]
    for device, batch in units:
        registry.apply_birth(Birth(device, "air_conditioner", "M", batch, "SN", "1", 60.0, T0))
    found: list[BatchFinding | PeerFinding] = []
    alarmed: dict[str, float] = {}  # unit -> its first cooling_decline alarm
    peer_move: dict[str, float] = {}  # unit -> the move its alarm's evidence carries
    pooling = BatchPooling(bank, registry, found.append)
    for hour in range(3 * 24):
        for device, batch in units:
            bank.feed("air_conditioner", _block(rng, device, hour, 0.15 if batch == "B1" else 0))
        for f in map(pooling.annotate, bank.flush()):  # as the worker hands them on
            if f.fault == "cooling_decline" and f.active:
                alarmed.setdefault(f.device, f.ts)
                peer_move.setdefault(f.device, f.evidence.get("peer_move", math.nan))
        pooling.judged(d for d, _ in units)
    # the peer test first; the moved units then shift, which the pooled test may add to
    assert (type(found[0]), found[0].batch) == (PeerFinding, "B1")
    assert {f.batch for f in found} == {"B1"}
    peer = [f for f in found if isinstance(f, PeerFinding)]
    first = peer[0]
    assert first.ts < T0 + 12 * H  # 3 learning windows of 3 h
    assert first.short >= 10 and first.units == 12 and first.reference_units == 24
    assert first.waiting == set(first.shifts) and first.moves() == {}  # nothing to move yet
    assert 0.1 < 1 - first.batch_level / first.reference_level < 0.2
    # each named unit ends its learning once it has the 6 windows a learning end needs, and the
    # next round names it again and moves it: long before learn_s (36 h)
    moved_by = {d: f.ts for f in peer[1:] for d in f.moves()}
    assert set(moved_by) == set(first.shifts)
    assert all(first.ts < ts < T0 + 24 * H for ts in moved_by.values())
    # the named units, and only they, alarm of their own, after their move, within 12 h
    assert set(alarmed) == set(first.shifts)
    assert all(moved_by[d] < ts <= moved_by[d] + 12 * H for d, ts in alarmed.items())
    # each alarm says its baseline was moved up to its peers', and by how much (ΔT, K)
    moves = {d: m for f in peer[1:] for d, m in f.moves().items()}
    assert peer_move == moves and all(0.5 < m < 3.0 for m in moves.values())
    assert pooling.peers.state()["moved"].keys() == {("cooling_decline", d) for d in first.shifts}
    assert pooling.peers.waiting() == []
    # what the worker's metrics count (qloop_worker_peer_moves_total, ..._early_ends_total)
    assert pooling.moved == pooling.ended_early == len(first.shifts)


def test_a_restored_test_goes_on_as_the_one_that_was_never_stopped(tmp_path, caplog) -> None:
    """The pooled test's state survives a checkpoint: a test restored halfway through the drift
    (from the journal, as a restarted worker does) gives the findings the original gives."""
    rng = np.random.default_rng(11)
    bank, registry = DetectorBank(generic=False), Registry()
    units = [(f"ac-{b}-{u:02d}", f"B{b}") for b in range(3) for u in range(15)]
    for device, batch in units:
        registry.apply_birth(Birth(device, "air_conditioner", "M", batch, "SN", "1", 60.0, T0))
    drifting = {units[u][0]: 60 + 8 * u for u in range(5)}
    original: list[BatchFinding] = []
    restored: list[BatchFinding] = []
    a = BatchPooling(bank, registry, original.append)
    b: BatchPooling | None = None
    journal = Journal(tmp_path / "journal.db")
    for hour in range(6 * 24):
        for device, _ in units:
            loss = min(0.25, max(0.0, hour - drifting.get(device, math.inf)) / 96 * 0.25)
            bank.feed("air_conditioner", _block(rng, device, hour, loss))
        bank.flush()
        a.judged(d for d, _ in units)
        if b is not None:
            b.judged(d for d, _ in units)
        if hour == 80:  # learned history, drift under way, nothing found yet
            assert a.rounds > 24 and not original
            a.save(journal, now=0.0)
            journal.commit()
            b = BatchPooling(bank, registry, restored.append)
            assert b.load(Journal(tmp_path / "journal.db"))
            assert b.pooled.state() == a.pooled.state()
    assert original, "the drifting batch was not found"
    assert restored == original

    fresh = BatchPooling(bank, registry, restored.append)
    assert fresh.restore(b"not a checkpoint") is False  # dropped, relearned
    assert "checkpoint not restored" in caplog.text
    assert fresh.pooled.state()["history"] == {}
    # a checkpoint of the format before the peer test (the pooled test's state alone)
    older = pickle.dumps((1, a.pooled.state()))
    assert fresh.restore(older) and fresh.pooled.state() == a.pooled.state()
    assert fresh.peers.state()["standing"] == {}


def test_the_worker_checkpoints_the_test_and_a_restarted_one_resumes_it(tmp_path) -> None:
    from cloud.anomaly.pooled import _History
    from cloud.worker import Worker
    from cloud.worker_settings import WorkerSettings
    from contract.mqtt import BrokerAddress

    settings = WorkerSettings(
        broker=BrokerAddress(),  # never connected
        partitions=tuple(range(64)),
        db_url=f"sqlite:///{tmp_path / 'tickets.db'}",
        journal_path=str(tmp_path / "journal.db"),
        queue_size=10,
    )
    first = Worker(settings)
    assert first.pooling is not None
    first.pooling.pooled._history[("cooling_decline", 8, "M", "B1")] = _History(120.0, 2.0)
    first.pooling.pooled._standing.last_ts = T0
    first.checkpoint()
    first.journal.close()

    again = Worker(settings)
    assert again.pooling is not None and again.pooling.pooled.state()["history"] == {}
    again._restore()
    try:
        assert again.pooling.pooled.state() == first.pooling.pooled.state()
    finally:
        again.journal.close()
