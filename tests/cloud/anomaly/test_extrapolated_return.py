"""Rows outside the learned range of return-air temperature (``CoolingDecline.extrapolated``).

Above: a unit that loses capacity cannot hold its room, so its return air warms past anything it
saw while learning, and before S10 those rows were never judged (a 15 % leak in a held-out fleet
went unjudged for 39 h). They are judged against the baseline at the top of the trusted range
extrapolated with the smaller of the unit's and the fleet's slope (at the top alone without a
fleet); a healthy unit whose room warms (its ΔT rises with the return temperature, as a coil's
does) stays quiet.

Below: a user sets a lower setpoint than any the unit learned at (a 15 % leak in a held-out fleet
went 96 h unjudged while its user kept 18 °C). Those rows are judged within a fleet, against the
baseline at the bottom extrapolated with the steeper of the two slopes; a unit alone is not
judged there.
"""

from __future__ import annotations

import numpy as np
import pytest

from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.base import Block, Finding
from cloud.anomaly.columns import Batch, columns_for
from cloud.anomaly.cooling import CoolingDecline
from cloud.anomaly.extrapolate import range_slopes
from cloud.anomaly.prior import FeaturePrior

H = 3600.0
T0 = 1.75e9


def _blocks(
    seed: int, loss: float, warm_c: float, hours: float = 72.0, device: str = "ac-1"
) -> list[Block]:
    """60-s readings, compressor running: 40 h at return 24-25 °C, then the room ``warm_c``
    warmer and the unit's capacity down by ``loss``; ΔT rises 0.4 K per K of return air."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(0.0, hours * H, 60.0)
    n = len(ts)
    after = ts - T0 >= 40 * H
    ret = 24.5 + 0.3 * np.sin(2 * np.pi * (ts - T0) / 86400.0) + rng.normal(0, 0.1, n)
    ret = ret + warm_c * after
    dt = (10.0 + 0.4 * (ret - 25.0)) * (1.0 - loss * after) + rng.normal(0, 0.1, n)
    cols = {
        "compressor_on": np.ones(n),
        "return_c": ret,
        "supply_c": ret - dt,
        "ambient_c": 30.0 + rng.normal(0, 0.3, n),
        "fan_speed": np.full(n, 2.0),
    }
    return [
        Block(device, ts[i : i + 60], {k: v[i : i + 60] for k, v in cols.items()})
        for i in range(0, n, 60)
    ]


def _reference(blocks: list[Block]) -> list[Finding]:
    det = CoolingDecline()
    return [f for b in blocks for f in det.update(b)]


def _columns(blocks: list[Block]) -> list[Finding]:
    columns = columns_for(CoolingDecline)
    row = columns.add()
    return [f for b in blocks for found in columns.update_many([row], Batch.of([b])) for f in found]


def test_a_loss_that_warms_the_room_is_judged_above_the_learned_range() -> None:
    for seed in (1, 2, 3):
        found = [f for f in _reference(_blocks(seed, loss=0.15, warm_c=1.5)) if f.active]
        assert found, seed
        assert found[0].ts - (T0 + 40 * H) <= 9 * H  # the windows after the onset, not later
        assert found[0].evidence["change_fraction"] < -0.08


def test_without_the_cap_those_rows_are_not_judged() -> None:
    class Uncapped(CoolingDecline):
        __slots__ = ()
        extrapolated = ()

    det = Uncapped()
    assert not [f for b in _blocks(1, loss=0.15, warm_c=1.5) for f in det.update(b)]


def test_a_healthy_unit_in_a_warmer_room_stays_quiet() -> None:
    for seed in (1, 2, 3):
        assert _reference(_blocks(seed, loss=0.0, warm_c=3.0)) == []


def test_the_column_path_judges_the_capped_rows_as_the_reference_does() -> None:
    blocks = _blocks(4, loss=0.15, warm_c=2.0)
    expected, got = _reference(blocks), _columns(blocks)
    assert expected
    assert [(f.ts, f.onset_ts, f.active) for f in got] == [
        (f.ts, f.onset_ts, f.active) for f in expected
    ]
    for a, b in zip(got, expected, strict=True):
        assert a.evidence["change"] == b.evidence["change"]


def _fleet(loss: float, warm_c: float) -> list[list[Block]]:
    """Twelve units; the first one's room warms by ``warm_c`` after learning, with its capacity
    down by ``loss``; the others healthy."""
    return [
        _blocks(10 + k, loss if k == 0 else 0.0, warm_c if k == 0 else 0.0, device=f"ac-{k}")
        for k in range(12)
    ]


def _pooled(fleet: list[list[Block]], kind: type[CoolingDecline] = CoolingDecline) -> list[Finding]:
    """The first unit's findings, each unit's reference sharing one fleet prior."""
    prior, dets = FeaturePrior(CoolingDecline.n_features), [kind() for _ in fleet]
    out = []
    for k in range(len(fleet[0])):
        for i, (det, blocks) in enumerate(zip(dets, fleet, strict=True)):
            found = det.update_pooled(blocks[k], prior)
            out += found if i == 0 else []
        prior.commit()
    return out


def test_the_fleet_slope_extrapolates_above_the_range() -> None:
    # the room 3 K warmer: ΔT 1.2 K higher at the healthy unit's own slope, which the cap at
    # the range's top alone would read as a rise, hiding a 10 % loss (1.0 K)
    assert not [f for f in _pooled(_fleet(0.0, 3.0)) if f.active]
    found = [f for f in _pooled(_fleet(0.10, 3.0)) if f.active]
    assert found and found[0].ts - (T0 + 40 * H) <= 12 * H
    det = CoolingDecline()  # alone: no fleet slope, the prediction stays at the top
    assert not [f for b in _fleet(0.10, 3.0)[0] for f in det.update(b) if f.active]


def test_a_restored_worker_has_the_fleet_slope_again() -> None:
    """The fleet prior is in memory only: units restored past learning hand their coefficients
    to it again, so a restarted worker judges a warm room as the one that never stopped."""
    fleet = _fleet(0.10, 3.0)
    half = 45  # blocks (hours): every unit past learning, the loss not yet begun
    a = DetectorBank()
    for k in range(half):
        for blocks in fleet:
            a.update("air_conditioner", blocks[k], k)
    b = DetectorBank()
    for blocks in fleet:
        state = a.snapshot(blocks[0].device)
        assert state is not None
        b.restore(blocks[0].device, state)
    found = {"kept": [], "restored": []}
    for k in range(half, len(fleet[0])):
        for blocks in fleet:
            for name, bank in (("kept", a), ("restored", b)):
                found[name] += [
                    (f.ts, f.fault)
                    for f in bank.update("air_conditioner", blocks[k], k)
                    if f.active and f.fault == "cooling_decline"
                ]
    assert found["kept"] and found["restored"] == found["kept"]


def test_below_the_range_the_fleet_slope_judges_a_lower_setpoint() -> None:
    # the room 3 K cooler (a lower setpoint): ΔT 1.2 K lower at the healthy unit's own slope,
    # which the baseline at the bottom alone would read as a 12 % loss
    assert not [f for f in _pooled(_fleet(0.0, -3.0)) if f.active]
    found = [f for f in _pooled(_fleet(0.10, -3.0)) if f.active]
    assert found and found[0].ts - (T0 + 40 * H) <= 12 * H
    assert found[0].evidence["change_fraction"] < -0.05


def test_below_the_range_a_unit_alone_is_not_judged() -> None:
    """Without a fleet slope its own could be an underestimate, which reads as the fault."""
    det = CoolingDecline()
    assert not [f for b in _fleet(0.15, -3.0)[0] for f in det.update(b)]


@pytest.mark.parametrize("case", ["cooler room", "slower fan"])
def test_the_column_path_judges_below_the_range_as_the_references_do(case: str) -> None:
    if case == "cooler room":
        fleet = _fleet(0.10, -3.0)
    else:
        fleet = [_fan_blocks(20 + k, 0.10 if k == 0 else 0.0, f"ac-{k}") for k in range(12)]
    prior, dets = FeaturePrior(CoolingDecline.n_features), [CoolingDecline() for _ in fleet]
    columns = columns_for(CoolingDecline)
    rows = [columns.add() for _ in fleet]
    expected, got = [], []
    for k in range(len(fleet[0])):
        blocks = [units[k] for units in fleet]
        for det, block in zip(dets, blocks, strict=True):
            expected += det.update_pooled(block, prior)
        prior.commit()
        got += [f for found in columns.update_many(rows, Batch.of(blocks)) for f in found]
    assert [f for f in expected if f.active]
    assert [(f.device, f.ts, f.active) for f in got] == [
        (f.device, f.ts, f.active) for f in expected
    ]


def test_the_slopes_err_away_from_the_fault() -> None:
    """Return air (rising): the gentler slope above the range, the steeper below it (ΔT 10 K:
    the fleet's 0.03 per K is 0.3 K per K), and below nothing without a fleet value or a rising
    slope. Fan speed (falling): the sides swapped, the signs too."""
    beta, level, rising = np.array([[0.5], [0.1], [-0.2]]), np.full(3, 10.0), np.array([1.0])
    below, above = range_slopes(beta, level, np.array([0.03]), rising)
    assert np.allclose(above[:, 0], [0.3, 0.1, 0.0])
    assert np.allclose(below[:, 0], [0.5, 0.3, 0.3])
    below, above = range_slopes(beta, level, np.array([np.nan]), rising)
    assert np.isnan(below).all() and (above == 0.0).all()
    below, _ = range_slopes(beta, level, np.array([-0.01]), rising)
    assert np.allclose(below[:, 0], [0.5, 0.1, np.nan], equal_nan=True)
    below, above = range_slopes(-beta, level, np.array([-0.03]), -rising)  # falling
    assert np.allclose(below[:, 0], [-0.3, -0.1, 0.0])
    assert np.allclose(above[:, 0], [-0.5, -0.3, -0.3])
    below, above = range_slopes(-beta, level, np.array([np.nan]), -rising)
    assert (below == 0.0).all() and np.isnan(above).all()


def _fan_blocks(seed: int, loss: float, device: str, hours: float = 72.0) -> list[Block]:
    """60-s readings, compressor running: 40 h alternating fan speeds 2 and 3 every 2 h, then
    speed 1 with the capacity down by ``loss``; ΔT falls 8 % per speed step."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(0.0, hours * H, 60.0)
    n = len(ts)
    after = ts - T0 >= 40 * H
    fan = np.where(after, 1.0, 2.0 + (((ts - T0) // (2 * H)) % 2))
    ret = 24.5 + 0.3 * np.sin(2 * np.pi * (ts - T0) / 86400.0) + rng.normal(0, 0.1, n)
    dt = (10.0 + 0.4 * (ret - 25.0)) * (1.0 - 0.08 * (fan - 2.0)) * (1.0 - loss * after)
    dt = dt + rng.normal(0, 0.1, n)
    cols = {
        "compressor_on": np.ones(n),
        "return_c": ret,
        "supply_c": ret - dt,
        "ambient_c": 30.0 + rng.normal(0, 0.3, n),
        "fan_speed": fan,
    }
    return [
        Block(device, ts[i : i + 60], {k: v[i : i + 60] for k, v in cols.items()})
        for i in range(0, n, 60)
    ]


def test_a_fan_speed_the_unit_did_not_learn_at_is_judged_within_a_fleet() -> None:
    # speed 1 after learning at 2 and 3: ΔT 8 % higher when healthy, which the baseline at
    # speed 2 alone would miss a 10 % loss under (it would read -2.8 %)
    def fleet(loss: float) -> list[list[Block]]:
        return [_fan_blocks(20 + k, loss if k == 0 else 0.0, f"ac-{k}") for k in range(12)]

    assert not [f for f in _pooled(fleet(0.0)) if f.active]
    found = [f for f in _pooled(fleet(0.10)) if f.active]
    assert found and found[0].ts - (T0 + 40 * H) <= 12 * H

    class Unextrapolated(CoolingDecline):
        __slots__ = ()
        extrapolated = ((3, 1.0),)  # return air alone, as before

    assert not [f for f in _pooled(fleet(0.10), Unextrapolated) if f.active]
