"""The baseline-shift detectors at sampling periods other than the 60 s their settings were
chosen at: a window's minimum of valid rows is a span of steady readings, not a row count."""

from __future__ import annotations

import numpy as np

from cloud.anomaly.base import Block
from cloud.anomaly.cooling import CoolingDecline

H = 3600.0
FIELDS = ("compressor_on", "return_c", "supply_c", "ambient_c", "fan_speed")


def test_a_window_needs_five_minutes_of_readings_and_at_least_two_rows() -> None:
    d = CoolingDecline()
    assert d.min_count == 5
    for period, rows in ((1.0, 300), (10.0, 30), (60.0, 5), (300.0, 2), (3600.0, 2)):
        assert d.min_rows(np.arange(12) * period) == rows, period
    assert d.min_rows(np.array([0.0])) == 5, "no period seen: the count as stated"
    assert d.min_rows(np.array([0.0, np.nan, 600.0, 900.0])) == 2


def sparse_unit(days: float, onset_h: float, loss: float, seed: int) -> list[Block]:
    """A lightly loaded unit sampled every 5 minutes in hour blocks: its compressor runs once
    per 3 h window for 20 minutes, so 3 readings a window are steady (5 minutes into a run)."""
    rng = np.random.default_rng(seed)
    ts = np.arange(0.0, days * 24 * H, 300.0)
    on = ((ts % (3 * H)) >= H) & ((ts % (3 * H)) < H + 1200.0)
    ambient = 30.0 + 4.0 * np.sin(2 * np.pi * ts / (24 * H)) + rng.normal(0, 0.2, len(ts))
    ret = 25.0 + rng.normal(0, 0.1, len(ts))
    dt = 10.0 - 0.1 * (ambient - 30.0) + rng.normal(0, 0.1, len(ts))
    dt = np.where(ts >= onset_h * H, dt * (1.0 - loss), dt)
    sup = np.where(on, ret - dt, ret - 0.3)
    cols = np.column_stack([on.astype(float), ret, sup, ambient, np.full(len(ts), 2.0)])
    return [
        Block("ac-1", ts[a : a + 12], {n: cols[a : a + 12, j] for j, n in enumerate(FIELDS)})
        for a in range(0, len(ts), 12)
    ]


def test_sparse_steady_readings_at_5_minutes_still_learn_and_find_a_leak() -> None:
    d = CoolingDecline()
    findings, learned_at = [], None
    for block in sparse_unit(days=5, onset_h=60.0, loss=0.15, seed=4):
        findings += [f for f in d.update(block) if f.active]
        if learned_at is None and not d.learning:
            learned_at = block.ts[-1] / H
    assert learned_at is not None and learned_at < 40.0, "learning ends near its 36 h"
    (first,) = findings[:1]
    assert 60.0 <= first.ts / H <= 60.0 + 48.0
    assert first.evidence["readings"] < 5, "judged on windows of a few steady readings"
    healthy = CoolingDecline()
    assert not [f for b in sparse_unit(5, 1e9, 0.0, seed=5) for f in healthy.update(b)]
