"""Memory per tracked device: what the worker keeps per device — detector state
(``DetectorBank``), the registry, the de-duplication tracker and the offline watch.

One simulated unit is fed two days of readings at 10 s so its detectors have learned their
baselines; its state is pickled, and every tracked device gets its own unpickled copy (the same
structure and array sizes a learned device has, without simulating 100,000 units for two days).
Each measurement runs in a fresh process: RSS after building minus RSS before, per device.
Same-run baseline: a dict holding an empty dict per device id (the floor of "something per
device" in Python). The pickled size is the checkpoint the worker writes per device.
"""

from __future__ import annotations

import pickle
import tracemalloc
from typing import Any

from benchmarks.common import CTX, Result, rss_bytes
from benchmarks.scale import scale_scenario
from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.base import Block
from cloud.anomaly.offline import OfflineWatch
from cloud.ingest.dedup import SeqTracker
from cloud.ingest.registry import Registry
from contract.protocol import Birth
from simulators.aircon import AIRCON_FIELDS
from simulators.fleet import Fleet


def learned_state(hours: float) -> bytes:
    """The pickled detector state of one unit after ``hours`` of 10 s readings."""
    fleet = Fleet(scale_scenario(1, 10.0, hours * 3600))
    bank = DetectorBank()
    device = fleet.units[0].device
    rows: list[list[float]] = []
    for step in range(int(hours * 360)):
        r, _ = fleet.step(fleet.scenario.start_ts + step * 10.0)
        rows.append(r[0].tolist())
        if len(rows) == 60:
            bank.update("air_conditioner", Block.from_rows(device, AIRCON_FIELDS, rows))
            rows = []
    state = bank.snapshot(device)
    assert state is not None
    return state


def _build(kind: str, n: int, state: bytes, out: Any) -> None:
    """Child process: RSS before and after tracking ``n`` devices."""
    ids = [f"ac-{k:07d}" for k in range(n)]  # the ids exist either way (they arrive in messages)
    before = rss_bytes()
    keep: Any
    if kind == "baseline":
        keep = {d: {} for d in ids}
    else:
        bank, registry, offline = DetectorBank(), Registry(), OfflineWatch()
        seen: dict[str, SeqTracker] = {}
        for k, d in enumerate(ids):
            bank.restore(d, state)
            registry.apply_birth(
                Birth(d, "air_conditioner", "KFR-35GW", "B20240517", f"SN-{k}", "2.3.0", 10.0, 0.0)
            )
            registry.saw(d, 0.0, 590.0)
            tracker = seen[d] = SeqTracker()
            tracker.add(0)
            offline.seen(d, 590.0, 590.0)
        keep = (bank, registry, offline, seen)
    after = rss_bytes()
    out.put((after - before) / n)
    del keep


def _measure(kind: str, n: int, state: bytes) -> float:
    out = CTX.Queue()
    p = CTX.Process(target=_build, args=(kind, n, state, out))
    p.start()
    per_device = out.get(timeout=600)
    p.join(30)
    return per_device


def top_allocations(state: bytes, n: int = 2000, top: int = 6) -> list[str]:
    """Where the bytes of ``n`` restored detector states go (tracemalloc, by line)."""
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    bank = DetectorBank()
    for k in range(n):
        bank.restore(f"ac-{k:07d}", state)
    stats = tracemalloc.take_snapshot().compare_to(snap0, "lineno")
    tracemalloc.stop()
    return [f"{s.size_diff / n:,.0f} B/device at {s.traceback[0]}" for s in stats[:top]]


def bench_memory(quick: bool = False) -> Result:
    res = Result("memory")
    state = learned_state(2.0 if quick else 48.0)
    # quick: still enough devices that an empty dict each shows in RSS (a few hundred fit in the
    # heap the interpreter already has, and the baseline would read 0)
    sizes = (10_000, 20_000) if quick else (10_000, 100_000)
    for n in sizes:
        per = _measure("tracked", n, state)
        base = _measure("baseline", n, state)
        res.add(
            f"RSS per tracked device at {n:,} devices (detectors, registry, dedup, offline)",
            per,
            "B",
            "an empty dict per device id",
            base,
            target="<= 4,096 B",
            met=per <= 4096,
        )
    obj = pickle.loads(state)  # noqa: S301 - our own state
    res.params = {
        "pickled_state_bytes": len(state),
        "detectors": list(obj.kinds),  # the checkpoint's rows name their detector classes
    }
    res.notes.append(f"pickled (checkpointed) detector state per device: {len(state):,} B")
    res.notes.append(
        "largest allocations per restored state: "
        + "; ".join(top_allocations(state, 200 if quick else 2000))
    )
    return res
