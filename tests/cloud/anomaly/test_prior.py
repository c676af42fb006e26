"""The fleet's coefficient of a feature a unit never varied (cloud/anomaly/prior.py).

Synthetic air conditioners whose ΔT falls by 12 % of its value per fan step: a fleet of units
that ran at every fan speed while learning, and units that learned at speed 1 only and then run
at speed 3 for good. Without the fleet such a unit is never judged again (its fan range has zero
width); with it, a 15 % loss at speed 3 is found and a healthy unit at speed 3 stays silent. The
columnar form with its fleet finds what the reference objects find with the same fleet.
"""

from __future__ import annotations

import numpy as np
import pytest

from cloud.anomaly.base import Block, Finding
from cloud.anomaly.baseline import LinearBaseline
from cloud.anomaly.columns import Batch, ShiftColumns
from cloud.anomaly.cooling import CoolingDecline
from cloud.anomaly.level import NoiseRise
from cloud.anomaly.prior import FeaturePrior

DAY = 86400.0
FAN = 2  # CoolingDecline's fan-speed feature


def _unit(
    device: str,
    days: float,
    *,
    seed: int,
    fan_from_day: float | None = None,
    drop_from_day: float = np.inf,
    drop: float = 0.15,
    size: float = 1.0,
    visits_from_day: float | None = None,
) -> list[Block]:
    """1-min readings in 1-h blocks, compressor always on. ``fan_from_day`` None: the fan
    cycles through speeds 1-3 every hour; else speed 1 until that day and speed 3 afterwards.
    ΔT = size · (10 K − 0.1 K per K outdoor above 30 °C) · 0.88^(speed − 1), times (1 − drop)
    from ``drop_from_day``. ``visits_from_day``: from that day on, speed 3 for two hours every
    afternoon (14-16 h)."""
    rng = np.random.default_rng(seed)
    ts = 60.0 * np.arange(1, int(days * 1440) + 1)
    amb = 28.0 + 4.0 * np.cos(2 * np.pi * (ts / DAY - 0.6)) + rng.normal(0.0, 0.2, len(ts))
    if fan_from_day is None:
        fan = 1.0 + (ts // 3600.0) % 3
    else:
        fan = np.where(ts < fan_from_day * DAY, 1.0, 3.0)
    if visits_from_day is not None:
        hour = (ts % DAY) / 3600.0
        fan = np.where((ts >= visits_from_day * DAY) & (hour >= 14) & (hour < 16), 3.0, fan)
    dt = size * (10.0 - 0.1 * (amb - 30.0)) * 0.88 ** (fan - 1.0)
    dt *= np.where(ts >= drop_from_day * DAY, 1.0 - drop, 1.0)
    ret = 25.0 + rng.normal(0.0, 0.2, len(ts))
    cols = {
        "compressor_on": np.ones(len(ts)),
        "fan_speed": fan,
        "ambient_c": amb,
        "return_c": ret,
        "supply_c": ret - dt + rng.normal(0.0, 0.15, len(ts)),
    }
    return [
        Block(device, ts[a : a + 60], {k: v[a : a + 60] for k, v in cols.items()})
        for a in range(0, len(ts), 60)
    ]


def _fleet(days: float, n: int = 12) -> dict[str, list[Block]]:
    # units of three sizes: the prior is relative to each unit's level
    return {
        f"fleet-{k}": _unit(f"fleet-{k}", days, seed=100 + k, size=(0.7, 1.0, 1.4)[k % 3])
        for k in range(n)
    }


def _fleet_of_one_speed(days: float, n: int = 12) -> dict[str, list[Block]]:
    """Units that learned at speed 1 only, then visit speed 3 for two hours a day."""
    return {
        f"fleet-{k}": _unit(
            f"fleet-{k}",
            days,
            seed=200 + k,
            size=(0.7, 1.0, 1.4)[k % 3],
            fan_from_day=np.inf,
            visits_from_day=2.0,
        )
        for k in range(n)
    }


def _run_pooled(streams: dict[str, list[Block]]) -> tuple[list[Finding], dict]:
    """Reference objects sharing one fleet prior, fed round by round (committed per round)."""
    prior = FeaturePrior(CoolingDecline.n_features)
    dets = {d: CoolingDecline() for d in streams}
    found: list[Finding] = []
    for k in range(max(map(len, streams.values()))):
        for d, blocks in streams.items():
            if k < len(blocks):
                found.extend(dets[d].update_pooled(blocks[k], prior))
        prior.commit()
    return found, dets


def _active(found: list[Finding], device: str) -> list[Finding]:
    return [f for f in found if f.device == device and f.active]


def test_the_fleet_value_is_the_median_of_units_that_varied_the_feature() -> None:
    prior = FeaturePrior(2, min_units=3)
    for k, slope in enumerate([0.1, 0.2, 0.3, 5.0]):  # one odd unit
        b = LinearBaseline(2)
        x = np.column_stack([np.ones(10), np.arange(10.0) + k])
        b.add(x, 10.0 + slope * x[:, 1])
        for w in range(3):
            b.add_window(float(w), 1, x[w], float(10.0 + slope * x[w, 1]))
        b.fit()
        prior.learn(f"u{k}", b)
        assert prior.available()[1] == (k >= 3)  # counted from the next commit only
        prior.commit()
    assert prior.available().tolist() == [False, True]  # no unit varies the constant column
    assert prior.get(0) is None
    got = prior.get(1)
    assert got is not None
    ratio, spread, lo, hi = got
    levels = [10.0 + s * (1 + k) for k, s in enumerate([0.1, 0.2, 0.3, 5.0])]
    ratios = sorted(s / lv for s, lv in zip([0.1, 0.2, 0.3, 5.0], levels, strict=True))
    assert ratio == pytest.approx((ratios[1] + ratios[2]) / 2, rel=1e-2)  # ridge
    assert spread > 0.0
    assert (lo, hi) == (0.0, 12.0)


def test_an_extra_slot_takes_offers_and_is_never_a_feature() -> None:
    """A detector kind's effect that is no feature's coefficient (the cooling detector's
    setpoint effect) lives after the features: offered, read, never pinned or seen."""
    prior = FeaturePrior(2, extra=1, min_units=3, per_unit=1)
    for k, ratio in enumerate([0.01, 0.02, 0.03, -0.5]):  # one odd unit
        assert prior.wants(f"u{k}", 2)
        prior.offer(f"u{k}", 2, ratio, 0.0, 1.0 + k)
        assert not prior.wants(f"u{k}", 2)  # ``per_unit`` readings given
        prior.commit()
    assert prior.available().tolist() == [False, False]  # the features only
    prior.see(np.array([0.0, -1.0]), np.array([1.0, 1.0]))
    got = prior.get(2)
    assert got is not None
    ratio, _, lo, hi = got
    assert ratio == pytest.approx(0.015)  # the median: the odd unit does not move it far
    assert (lo, hi) == (0.0, 4.0)
    assert FeaturePrior(2).get(2) is None  # a prior without the slot: no value


def test_pinning_fixes_a_coefficient_the_rows_cannot_identify_and_keeps_predictions() -> None:
    b = LinearBaseline(3)
    rng = np.random.default_rng(0)
    amb = rng.normal(0.0, 2.0, 500)
    x = np.column_stack([np.ones(500), amb, np.full(500, -1.0)])  # feature 2 never varies
    y = 8.0 - 0.1 * amb + rng.normal(0.0, 0.05, 500)
    b.add(x, y)
    for w in range(5):
        sl = slice(100 * w, 100 * (w + 1))
        b.add_window(float(w), 100, x[sl].sum(axis=0), float(y[sl].sum()))
    b.fit()
    before = float(x[0] @ b.beta)
    b.pin(2, -0.9, -1.0, 1.0)
    assert b.beta is not None and b.beta[2] == pytest.approx(-0.9, rel=1e-2)
    assert float(x[0] @ b.beta) == pytest.approx(before, abs=1e-3)  # same at learned speed
    assert (b.lo[2], b.hi[2]) == (-1.0, 1.0)


@pytest.mark.slow
def test_a_unit_that_learned_one_fan_speed_is_judged_at_another_with_the_fleet() -> None:
    days = 9.0
    streams = _fleet(days)
    streams["leaky"] = _unit("leaky", days, seed=1, fan_from_day=3.0, drop_from_day=3.2)
    streams["healthy"] = _unit("healthy", days, seed=2, fan_from_day=3.0)
    streams["big-leaky"] = _unit(
        "big-leaky", days, seed=3, fan_from_day=3.0, drop_from_day=3.2, size=1.4
    )
    found, dets = _run_pooled(streams)
    assert [f for f in found if f.active and f.device.startswith("fleet")] == []
    assert _active(found, "healthy") == []
    for d in ("leaky", "big-leaky"):
        (f,) = _active(found, d)
        assert 3.2 * DAY <= f.ts <= 5.2 * DAY  # found within two days of the loss
        assert f.evidence["change_fraction"] == pytest.approx(-0.15, abs=0.05)
        beta = dets[d]._baseline.beta
        assert beta[FAN] < 0.0  # the fleet's (relative) fan effect, at the unit's scale
    # alone, the same unit is never judged at speed 3: the loss goes unseen
    alone = CoolingDecline()
    assert [f for b in streams["leaky"] for f in alone.update(b) if f.active] == []


def _columns_against_the_reference(streams: dict[str, list[Block]]) -> list[tuple]:
    """Run ``streams`` through the fleet-wide columns and through the reference objects with
    their fleet prior; assert the same findings (the leak among them) and give each unit's
    exported column state beside its reference object, for the caller's state checks."""
    expected, dets = _run_pooled(streams)
    columns = ShiftColumns(CoolingDecline)
    rows = {d: columns.add() for d in streams}
    got: list[Finding] = []
    for k in range(max(map(len, streams.values()))):
        live = [d for d, bs in streams.items() if k < len(bs)]
        batch = Batch.of([streams[d][k] for d in live])
        for found in columns.update_many([rows[d] for d in live], batch):
            got.extend(found)
    assert _active(expected, "leaky"), "the leak should be found to compare"
    assert [(f.device, f.ts, f.onset_ts, f.active) for f in got] == [
        (f.device, f.ts, f.onset_ts, f.active) for f in expected
    ]
    return [(columns.export(rows[d]), det) for d, det in dets.items()]


@pytest.mark.slow
def test_the_columns_with_their_fleet_find_what_the_reference_finds() -> None:
    days = 6.0
    streams = _fleet(days)
    streams["leaky"] = _unit("leaky", days, seed=1, fan_from_day=2.5, drop_from_day=3.0)
    streams["healthy"] = _unit("healthy", days, seed=2, fan_from_day=2.5)
    for exported, det in _columns_against_the_reference(streams):
        assert exported._baseline.beta == pytest.approx(det._baseline.beta, rel=1e-6, abs=1e-9)
        assert exported._cusum.sigma == pytest.approx(det._cusum.sigma, rel=1e-9)


@pytest.mark.slow
def test_a_fleet_that_learned_one_speed_reads_the_effect_off_its_visits_to_another() -> None:
    days = 9.0
    streams = _fleet_of_one_speed(days)
    streams["leaky"] = _unit("leaky", days, seed=1, fan_from_day=4.0, drop_from_day=4.2)
    streams["healthy"] = _unit("healthy", days, seed=2, fan_from_day=4.0)
    found, dets = _run_pooled(streams)
    assert [f for f in found if f.active and f.device != "leaky"] == []
    (f,) = _active(found, "leaky")
    assert 4.2 * DAY <= f.ts <= 6.2 * DAY
    assert f.evidence["change_fraction"] == pytest.approx(-0.15, abs=0.05)
    for d in ("leaky", "healthy"):
        lo, hi = dets[d]._baseline.lo[FAN], dets[d]._baseline.hi[FAN]
        assert (lo, hi) == (-1.0, 1.0)  # speeds 1-3: the range the fleet's visits covered
    # the fleet's relative effect per speed step, read from speed 1 to 3 at speed 1's level
    beta, level = dets["healthy"]._baseline.beta, dets["healthy"]._baseline.level
    assert beta[FAN] / level == pytest.approx((0.88**2 - 1) / 2, abs=0.01)


@pytest.mark.slow
def test_the_columns_take_the_fleet_readings_the_reference_takes() -> None:
    days = 6.0
    streams = _fleet_of_one_speed(days)
    streams["leaky"] = _unit("leaky", days, seed=1, fan_from_day=3.5, drop_from_day=3.8)
    for exported, det in _columns_against_the_reference(streams):
        assert exported._baseline.beta == pytest.approx(det._baseline.beta, rel=1e-6, abs=1e-9)


def test_detectors_whose_features_do_not_carry_across_units_take_nothing_from_the_fleet() -> None:
    # noise in dB with fan speed as speed and speed²: two coefficients that only hold as a pair
    prior = FeaturePrior(NoiseRise.n_features, min_units=1)
    det = NoiseRise(learn_s=3 * 3600.0, window_s=3600.0, min_learn_windows=2)
    blocks = _unit("n", 1.0, seed=5, visits_from_day=0.0)
    for b in blocks:
        cols = dict(b.columns)
        cols["noise_db"] = 40.0 + 2.0 * cols["fan_speed"]
        det.update_pooled(Block("n", b.ts, cols), prior)
        prior.commit()
    assert not det.learning
    assert not prior.available().any() and prior.pinned("n") == set()
