"""The pooled batch test (cloud/anomaly/pooled.py): a batch whose units drift together stands
out before its units alarm; fleet-wide shifts, heavy tails and many healthy batches do not."""

from __future__ import annotations

import numpy as np
import pytest

from cloud.anomaly.pooled import (
    PooledShift,
    describe_test,
    exceedance_p_value,
    holm_tarone,
)

HOUR = 3600.0
DAY = 24 * HOUR
FAULTS = ("cooling_decline", "noise_rise", "vibration_rise")


class Fleet:
    """Units of several (model, batch) pairs; their shifts per round: healthy noise (normal or
    heavy-tailed), a fleet-wide offset, and drifts added per unit."""

    def __init__(self, layout: dict[tuple[str, str], int], seed: int, *, tails: float = 0.0):
        self.rng = np.random.default_rng(seed)
        self.devices = [f"{m}/{b}/{u:03d}" for (m, b), n in layout.items() for u in range(n)]
        self.where = {d: tuple(d.split("/")[:2]) for d in self.devices}
        self.tails = tails  # degrees of freedom of a Student t; 0: normal
        self.drift: dict[str, tuple[float, float]] = {}  # device -> (onset, z per day)

    def shifts(self, ts: float, offset: float = 0.0) -> dict[str, tuple[list[str], np.ndarray]]:
        out = {}
        for fault in FAULTS:
            n = len(self.devices)
            noise = self.rng.standard_t(self.tails, n) if self.tails else self.rng.normal(size=n)
            z = 0.15 * noise + offset
            if fault == "cooling_decline":
                for i, d in enumerate(self.devices):
                    if d in self.drift:
                        onset, rate = self.drift[d]
                        z[i] += max(0.0, ts - onset) / DAY * rate
            out[fault] = (self.devices, z)
        return out

    def batch_of(self, device: str) -> tuple[str, str] | None:
        return self.where.get(device)  # type: ignore[return-value]


def run(fleet: Fleet, pooled: PooledShift, days: float, offset=lambda ts: 0.0) -> list:
    """Hourly rounds; each span's shifts drawn afresh (the same model for every span)."""
    found = []
    ts = 0.0
    while ts <= days * DAY:
        shifts = {span: fleet.shifts(ts, offset(ts)) for span in pooled.spans}
        found += pooled.update(ts, shifts, fleet.batch_of)
        ts += HOUR
    return found


def test_a_batch_with_30_percent_drifting_units_stands_out() -> None:
    layout = {("M", f"B{b}"): 20 for b in range(4)}
    fleet = Fleet(layout, seed=1)
    drifting = [f"M/B0/{u:03d}" for u in range(6)]  # 30 % of B0
    for k, d in enumerate(drifting):  # onsets spread over three days, then 1.5 z a day
        fleet.drift[d] = (3 * DAY + k * 12 * HOUR, 1.5)
    found = run(fleet, PooledShift(), days=8)

    assert found, "the drifting batch never stood out"
    assert {(f.model, f.batch, f.fault) for f in found} == {("M", "B0", "cooling_decline")}
    first = found[0]
    assert first.reference == "model"  # one model: its other batches, nothing else
    assert first.test == describe_test(round(first.span_s / (3 * HOUR)), "model")
    assert first.beyond >= 3 and first.p_adjusted < 0.01
    assert set(first.shifts) <= set(drifting)
    assert all(u > first.level for u in first.shifts.values())
    assert first.ts < 3 * DAY + 5 * 12 * HOUR  # before the sixth unit starts to drift
    # while it stands out, a finding again only for a unit not named before
    named: set[str] = set()
    for f in found:
        assert set(f.shifts) - named
        named |= set(f.shifts)


def test_a_single_batch_model_is_compared_with_the_rest_of_the_fleet() -> None:
    layout = {("ONE", "B0"): 20, ("M", "B1"): 20, ("M", "B2"): 20}
    fleet = Fleet(layout, seed=2)
    for k in range(6):
        fleet.drift[f"ONE/B0/{k:03d}"] = (3 * DAY + k * 8 * HOUR, 1.5)
    found = run(fleet, PooledShift(), days=7)

    assert {(f.model, f.batch) for f in found} == {("ONE", "B0")}
    assert found[0].reference == "fleet"
    assert found[0].reference_units == 40


def test_a_fleet_wide_shift_moves_no_batch_out() -> None:
    """Weather, season, setpoints: every unit moves, by several of its own sigmas."""
    layout = {("M", f"B{b}"): 20 for b in range(4)} | {("N", f"C{b}"): 15 for b in range(3)}
    fleet = Fleet(layout, seed=3)

    def heat_wave(ts: float) -> float:
        return 4.0 if 3 * DAY <= ts < 5 * DAY else 0.5 * np.sin(ts / DAY * 2 * np.pi)

    assert run(fleet, PooledShift(), days=8, offset=heat_wave) == []


def test_one_or_two_drifting_units_make_no_batch_finding() -> None:
    layout = {("M", f"B{b}"): 20 for b in range(3)}
    fleet = Fleet(layout, seed=4)
    fleet.drift["M/B0/000"] = (2 * DAY, 3.0)
    fleet.drift["M/B0/001"] = (2 * DAY, 3.0)
    assert run(fleet, PooledShift(), days=6) == []


@pytest.mark.parametrize("tails", [0.0, 3.0])
def test_many_healthy_batches_stay_below_alpha(tails: float) -> None:
    """120 healthy batches over 4 models and three faults, each round drawn afresh (more
    independent looks than real 24-h means give): the share of rounds with any batch finding,
    the family-wise error rate per round, stays below alpha, with normal and with heavy
    (Student t, 3 degrees of freedom) tails."""
    layout = {(f"M{m}", f"B{m}-{b}"): 10 + 3 * (b % 4) for m in range(4) for b in range(30)}
    fleet = Fleet(layout, seed=5, tails=tails)
    pooled = PooledShift()
    rounds = with_finding = 0
    ts = 0.0
    for _ in range(700):
        found = pooled.update(ts, {s: fleet.shifts(ts) for s in pooled.spans}, fleet.batch_of)
        rounds += 1
        with_finding += bool(found)
        ts += HOUR
    assert with_finding / rounds < pooled.alpha


def test_exceedance_p_value_is_the_conditional_poisson_test() -> None:
    # 3 now among 20 units, none in 120 unit-days of the reference: (20/140)^3
    assert exceedance_p_value(3, 20, 0, 120) == pytest.approx((20 / 140) ** 3)
    assert exceedance_p_value(3, 20, 5, 120) > exceedance_p_value(3, 20, 0, 120)
    assert exceedance_p_value(0, 20, 0, 120) == 1.0
    assert exceedance_p_value(3, 20, 0, 0) == 1.0


def test_holm_tarone_leaves_untestable_hypotheses_out() -> None:
    # the third cannot reach alpha / 2 at all: m = 2, not 3
    assert holm_tarone([0.004, 0.2, 0.5], [1e-6, 1e-4, 0.5], 0.01) == pytest.approx(
        [0.008, 0.2, 1.0]
    )
    # every hypothesis testable: plain Holm
    assert holm_tarone([0.001, 0.004], [1e-9, 1e-9], 0.01) == pytest.approx([0.002, 0.004])


def test_rounds_follow_event_time() -> None:
    pooled = PooledShift(every_s=HOUR)
    assert pooled.due(0.0)
    pooled.update(0.0, {}, lambda d: None)
    assert not pooled.due(HOUR - 1)
    assert pooled.due(HOUR)
    assert pooled.update(-HOUR, {}, lambda d: None) == []  # the past: nothing
