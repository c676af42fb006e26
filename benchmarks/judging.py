"""Judging a fleet past learning: what the worker's detector bank costs per block once its units
have learned their baselines, the state a worker spends its life in.

The ingest benchmark (``ingest.py``) feeds units in their first hour and a half, all of it
learning; a worker that has run for more than a day and a half judges every block against a
learned baseline, closes a window every few blocks and extends ranges as the weather moves.
Here ``devices`` simulated units send 60-row blocks at a 60-s period for ``blocks`` hours; the
blocks go through one :class:`~cloud.anomaly.bank.DetectorBank` a round at a time (every unit's
k-th block, as a worker's micro-batch holds them), and the CPU time of each round's ``flush`` is
summed over the learning rounds and over the rounds from ``steady_from`` hours on.

Same-run baseline: the same blocks through the per-device reference objects (the detector
classes themselves, one object per unit and kind: what the bank did before its columns), over
the same rounds.

Then the batch tests' hourly round (``cloud/ingest/pooling.py``: the pooled shift test over
``DetectorBank.shifts`` and the peer level test over ``DetectorBank.learned``) over the learned
bank, against the same run's hour of judging (one round of every unit's block): each is a pass
over every unit, once an hour of event time.
"""

from __future__ import annotations

import time
from collections import defaultdict

from benchmarks.common import Result
from benchmarks.ingest import make_traffic
from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.base import Block
from cloud.ingest.decode import decode_readings
from cloud.ingest.pooling import BatchPooling
from cloud.ingest.registry import Registry
from contract import protocol

Round = list[tuple[str, int, Block]]  # (product, seq, block) of every unit that sent one


def _rounds(devices: int, blocks: int) -> tuple[list[Round], Registry]:
    traffic = make_traffic(devices, blocks, sample_period_s=60.0)
    product = {}
    registry = Registry()
    for _topic, payload, _retain in traffic.births:
        b = protocol.decode_birth(payload)
        product[b.device] = b.product
        registry.apply_birth(b)
    sent: dict[str, int] = defaultdict(int)
    rounds: list[Round] = [[] for _ in range(blocks + 1)]
    for topic, payload, _retain in traffic.messages:
        if topic.endswith("/telemetry"):
            r = decode_readings(payload)
            k = sent[r.device]
            sent[r.device] += 1
            rounds[k].append((product[r.device], r.seq, r.block()))
    return [r for r in rounds if r], registry


def _bank_cpu(rounds: list[Round], steady_from: int) -> tuple[float, float, DetectorBank]:
    bank = DetectorBank()
    cpu = [0.0, 0.0]
    for k, items in enumerate(rounds):
        t0 = time.process_time()
        for product, seq, block in items:
            bank.feed(product, block, seq)
        bank.flush()
        cpu[k >= steady_from] += time.process_time() - t0
    return cpu[0], cpu[1], bank


def _batch_tests_cpu(bank: DetectorBank, registry: Registry, repeat: int = 5) -> float:
    """CPU seconds of one round of both batch tests over ``bank`` (the least of ``repeat``:
    each round on a fresh :class:`BatchPooling`, so both tests are due)."""
    devices = [i.device for i in registry]
    best = float("inf")
    for _ in range(repeat):
        pooling = BatchPooling(bank, registry, lambda _f: None)
        t0 = time.process_time()
        pooling.judged(devices)
        best = min(best, time.process_time() - t0)
    return best


def _reference_cpu(rounds: list[Round], steady_from: int) -> tuple[float, float]:
    bank = DetectorBank()  # only for its detector factories: the per-device objects are ours
    objects: dict[str, list] = {}
    cpu = [0.0, 0.0]
    for k, items in enumerate(rounds):
        t0 = time.process_time()
        for product, _seq, block in items:
            dets = objects.get(block.device)
            if dets is None:
                dets = objects[block.device] = [make() for make in bank.makers(product)]
            for d in dets:
                d.update(block)
        cpu[k >= steady_from] += time.process_time() - t0
    return cpu[0], cpu[1]


def bench_judging(quick: bool = False) -> Result:
    res = Result("judging")
    devices, blocks, steady_from = (20, 44, 40) if quick else (500, 60, 40)
    rounds, registry = _rounds(devices, blocks)
    n_learning = sum(len(r) for r in rounds[:steady_from])
    n_steady = sum(len(r) for r in rounds[steady_from:])
    bank_learning, bank_steady, bank = _bank_cpu(rounds, steady_from)
    batch_round = _batch_tests_cpu(bank, registry)
    ref_learning, ref_steady = _reference_cpu(rounds, steady_from)
    res.add(
        "detector bank, CPU per block past learning",
        bank_steady / n_steady * 1e6,
        "µs",
        "per-device detector objects, same blocks",
        ref_steady / n_steady * 1e6,
    )
    res.add(
        "detector bank, CPU per block while learning",
        bank_learning / n_learning * 1e6,
        "µs",
        "per-device detector objects, same blocks",
        ref_learning / n_learning * 1e6,
    )
    res.add(
        "batch tests, CPU per hourly round",
        batch_round * 1e3,
        "ms",
        "detector bank, CPU per hour of judging (one round)",
        bank_steady / (len(rounds) - steady_from) * 1e3,
    )
    res.params = {"devices": devices, "hours": blocks, "steady_from_h": steady_from}
    res.notes.append(
        f"{devices} simulated units (the `scale` scenario's fleet), 60-row blocks at a 60-s"
        f" period; rounds of every unit's k-th block; hours 0-{steady_from - 1}: learning"
        f" ({n_learning} blocks), from hour {steady_from}: past learning ({n_steady} blocks)."
    )
    return res
