"""Detector cost: µs per reading for each detector the worker runs on an air
conditioner, fed simulated 60-row blocks in event-time order (a fresh detector per kind, so the
figure includes learning its baseline). Same-run baseline: what the worker pays for the same
readings before any detector runs — decoding the payload and building the block
(``protocol.decode_telemetry`` + ``Block.from_rows``).
"""

from __future__ import annotations

import time

from benchmarks.common import Result
from benchmarks.ingest import make_traffic
from cloud.anomaly.bank import DEFAULT_DETECTORS
from cloud.anomaly.base import Block
from contract import protocol


def bench_detectors(quick: bool = False) -> Result:
    res = Result("detectors")
    devices, blocks = (2, 6) if quick else (20, 48)  # 48 blocks of 10 s rows = 8 h per unit
    traffic = make_traffic(devices, blocks)
    payloads = [p for topic, p, _ in traffic.messages if topic.endswith("/telemetry")]
    decoded = [protocol.decode_telemetry(p) for p in payloads]
    readings = sum(len(t.rows) for t in decoded)

    t0 = time.perf_counter()
    for p in payloads:
        t = protocol.decode_telemetry(p)
        Block.from_rows(t.device, t.fields, t.rows)
    base_us = (time.perf_counter() - t0) / readings * 1e6
    blocks_ = [Block.from_rows(t.device, t.fields, t.rows) for t in decoded]

    for factory in DEFAULT_DETECTORS["air_conditioner"]:
        detectors: dict[str, object] = {}
        spent = 0.0
        for b in blocks_:
            d = detectors.get(b.device)
            if d is None:
                d = detectors[b.device] = factory()
            t0 = time.perf_counter()
            d.update(b)  # type: ignore[attr-defined]
            spent += time.perf_counter() - t0
        res.add(
            f"{getattr(factory, '__name__', str(factory))}.update",
            spent / readings * 1e6,
            "µs/reading",
            "decode + Block.from_rows",
            base_us,
        )
    res.params = {"devices": devices, "blocks": len(blocks_), "readings": readings}
    res.notes.append(
        f"{len(blocks_)} blocks of 60 rows from {devices} simulated units "
        f"({blocks * 10} simulated minutes each)."
    )
    return res
