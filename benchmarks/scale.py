"""Fleet simulator scale: how many simulated units × samples per second the runner
drives through the real edge code (one :class:`edge_agent.core.DeviceCore` per unit, many units
per MQTT connection) into Mosquitto, with a bare subscriber counting every message.

Two benchmarks:

* ``scale``: the runner flat out (10,000 units, 10 s sample period, one simulated hour) →
  readings/s; same-run baseline: one Python process publishing the same number of pre-encoded
  blocks (the ceiling of a Python QoS 1 publisher, no physics and no edge code). Then a real-time
  check: 10,000 units at the shortest whole-second sample period the flat-out rate allows with
  25 % headroom, paced at wall-clock speed; the figure is how far the run fell behind.
* ``scale_day``: the acceptance run: 10,000 units at one reading per 10 s for one simulated day,
  flat out; errors (log records at WARNING or above, dropped messages, a short count at the
  subscriber) must be none.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common import CountingSubscriber, Result, collect_publishers, publish_in_processes
from contract import protocol
from contract.mqtt import BrokerAddress
from contract.protocol import Telemetry
from qloop.broker import start_broker
from simulators.aircon import AIRCON_FIELDS
from simulators.runner import FleetRunner
from simulators.scenario import Scenario, load_scenario

TELEMETRY_AND_EVENTS = ["qloop/v1/+/+/telemetry", "qloop/v1/+/+/event"]


def scale_scenario(
    units: int, sample_period_s: float, duration_s: float, speed: float = 0.0
) -> Scenario:
    """The built-in ``scale`` scenario (its batches, models and faults) resized to ``units``."""
    base = load_scenario("scale")
    n = min(units, len(base.batches))
    batches = tuple(
        replace(b, units=units // n + (1 if i < units % n else 0))
        for i, b in enumerate(base.batches[:n])
    )
    return replace(
        base, batches=batches, sample_period_s=sample_period_s, duration_s=duration_s, speed=speed
    )


class _Errors(logging.Handler):
    """Counts log records at WARNING or above while the runner runs (any is an error)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


def run_fleet(scenario: Scenario, workdir: Path, tag: str) -> dict[str, float]:
    """Run ``scenario`` into a fresh Mosquitto with a counting subscriber; the run's figures."""
    broker = start_broker(workdir / f"broker-{tag}", persistence=False)
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    try:
        counter = CountingSubscriber(broker.host, broker.port, TELEMETRY_AND_EVENTS)
        runner = FleetRunner(
            scenario, BrokerAddress(broker.host, broker.port), client_prefix=f"bench-{tag}"
        )
        t0 = time.monotonic()
        readings = runner.run()
        wall = time.monotonic() - t0
        published = sum(lk.publisher.published for lk in runner.links)
        acked = sum(lk.publisher.acknowledged for lk in runner.links)
        dropped = sum(lk.publisher.buffer.stats().dropped_readings for lk in runner.links)
        counter.expect(published)
        received, _, _ = counter.result()
    finally:
        logging.getLogger().removeHandler(errors)
        broker.stop()
    simulated = scenario.duration_s
    return {
        "units": len(runner.cores),
        "readings": readings,
        "wall_s": wall,
        "readings_per_s": readings / wall,
        "simulated_s": simulated,
        "lag_s": wall - simulated / scenario.speed if scenario.speed > 0 else math.nan,
        "published": published,
        "acknowledged": acked,
        "received": received,
        "dropped_readings": dropped,
        "errors": len(errors.records) + dropped + (published - received) + (published - acked),
        "error_samples": errors.records[:5],  # type: ignore[dict-item]
    }


def _bare_publish(host: str, port: int, blocks: int, workdir: Path) -> float:
    """Readings/s of one process publishing ``blocks`` pre-encoded 60-row blocks at QoS 1."""
    row = (1.7e9, 24.0, 25.1, 16.2, 31.0, 1.0, 2.0, 4.2, 41.3, 0.03)
    items = []
    for k in range(blocks):
        device = f"bare-{k % 2500:05d}"
        t = Telemetry(device, k, AIRCON_FIELDS, tuple(row for _ in range(60)))
        items.append((protocol.topic(device, "telemetry"), protocol.encode(t), False))
    go, procs, out = publish_in_processes(host, port, [items], workdir, window=1000)
    go.set()
    t0, t1 = collect_publishers(procs, out)
    return blocks * 60 / (t1 - t0)


def bench_scale(quick: bool = False) -> Result:
    res = Result("scale")
    units = 200 if quick else 10_000
    duration = 600.0 if quick else 3600.0
    with tempfile.TemporaryDirectory(prefix="qloop-bench-scale-") as tmp:
        workdir = Path(tmp)
        r = run_fleet(scale_scenario(units, 10.0, duration), workdir, "flat")
        broker = start_broker(workdir / "broker-bare", persistence=False)
        try:
            blocks = max(1, int(r["published"]))
            bare = _bare_publish(broker.host, broker.port, min(blocks, 20_000), workdir)
        finally:
            broker.stop()
        res.add(
            f"runner flat out, {units:,} units, 10 s period, {duration / 3600:g} h simulated",
            r["readings_per_s"],
            "readings/s",
            "bare Python QoS 1 publisher of pre-encoded blocks",
            bare,
            note=f"{r['readings']:,} readings, {r['received']:,}/{r['published']:,} messages "
            f"at the subscriber, errors {r['errors']}",
        )
        # real time: the shortest whole-second period for 10,000 units with 25 % headroom
        rt_units = 50 if quick else 10_000
        period = max(1.0, math.ceil(1.25 * rt_units / r["readings_per_s"]))
        steps = 3 if quick else 30
        rt = run_fleet(
            scale_scenario(rt_units, period, steps * period, speed=1.0), workdir, "realtime"
        )
        res.add(
            f"real time: {rt_units:,} units × 1 reading / {period:g} s, "
            f"{steps * period:g} s — wall time",
            rt["wall_s"],
            "s",
            "simulated duration",
            rt["simulated_s"],
            target="ratio ≈ 1 (keeps up)",
            met=rt["lag_s"] <= period and rt["errors"] == 0,
            note=f"behind by {rt['lag_s']:.2f} s at the end, errors {rt['errors']}",
        )
        res.params = {"flat": r, "realtime": rt, "bare_readings_per_s": bare}
        res.notes.append(
            f"largest fleet × rate sustained (flat-out rate): about {r['readings_per_s']:,.0f} "
            f"readings/s, i.e. {r['readings_per_s'] * 10:,.0f} units at 1 reading / 10 s or "
            f"10,000 units at 1 reading / {10_000 / r['readings_per_s']:.2f} s; checked in real "
            f"time at 10,000 units × 1 / {period:g} s (behind by {rt['lag_s']:.2f} s)."
        )
    return res


def bench_scale_day(quick: bool = False) -> Result:
    res = Result("scale_day")
    units = 100 if quick else 10_000
    duration = 3600.0 if quick else 86_400.0
    with tempfile.TemporaryDirectory(prefix="qloop-bench-day-") as tmp:
        r = run_fleet(scale_scenario(units, 10.0, duration), Path(tmp), "day")
    res.add(
        f"{units:,} units × 1 reading / 10 s, {duration / 3600:g} h simulated — wall time",
        r["wall_s"],
        "s",
        "simulated duration",
        duration,
        target="no errors",
        met=r["errors"] == 0,
        note=f"{r['readings']:,} readings at {r['readings_per_s']:,.0f}/s",
    )
    res.params = r
    res.notes.append(
        f"{units:,} units for {duration / 3600:g} simulated hours: {r['readings']:,} readings, "
        f"{r['published']:,} messages published, {r['received']:,} received by the counting "
        f"subscriber, {r['dropped_readings']} readings dropped, {r['errors']} errors, "
        f"{r['wall_s'] / 60:.1f} min wall time ({r['readings_per_s']:,.0f} readings/s)."
    )
    return res


if __name__ == "__main__":
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("which", choices=["scale", "scale_day"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="write the result here")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    result = (bench_scale if a.which == "scale" else bench_scale_day)(a.quick)
    text = json.dumps(result.to_json(), indent=2, default=str)
    if a.json:
        Path(a.json).write_text(text)
    print(text)
