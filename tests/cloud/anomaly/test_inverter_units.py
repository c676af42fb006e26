"""Inverter units (``cloud/anomaly/speed.py``): a compressor whose speed follows the room runs for
hours at part load, its ΔT rising and falling with its speed. Judged as a fixed-speed unit, on
the conditions alone, a healthy one read as losing cooling whenever its compressor slowed (the
simulated ``inverter-healthy`` fleet: 60 false findings per 1,000 healthy device-days, S17). The
cooling detector now keeps, per unit, the model its learning showed: ΔT for a fixed-speed unit,
ΔT per ampere for one whose current varied beyond its conditions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cloud.anomaly import cooling
from cloud.anomaly.base import Block, Finding
from cloud.anomaly.columns import Batch, ShiftColumns, columns_for
from cloud.anomaly.cooling import CoolingDecline
from cloud.anomaly.prior import FeaturePrior
from simulators.aircon import AIRCON_FIELDS
from simulators.fleet import Fleet
from simulators.scenario import parse_scenario
from tests.scenarios import batch, fault, scenario

pytestmark = pytest.mark.slow  # days of simulated units

HOT = {"outdoor_mean_c": 31.0, "daily_amplitude_c": 5.0}
USERS = "[users]\nsetpoint_changes_per_day = 1.0\nsetpoint_range_c = [20.0, 28.0]\n"


def _blocks(text: str) -> tuple[Fleet, dict[str, list[Block]]]:
    """Each unit's hour-long blocks of 60-s readings over the whole scenario."""
    fleet = Fleet(parse_scenario(text))
    sc = fleet.scenario
    n = int(sc.duration_s / sc.sample_period_s)
    rows = np.stack([fleet.step(sc.start_ts + (i + 1) * 60.0)[0] for i in range(n)])
    out = {}
    for u, unit in enumerate(fleet.units):
        cols = {f: rows[:, u, j] for j, f in enumerate(AIRCON_FIELDS) if f != "ts"}
        ts = rows[:, u, 0]
        out[unit.device] = [
            Block(unit.device, ts[i : i + 60], {k: v[i : i + 60] for k, v in cols.items()})
            for i in range(0, n, 60)
        ]
    return fleet, out


def _found(blocks: list[Block]) -> tuple[CoolingDecline, list[Finding]]:
    det = CoolingDecline()
    return det, [f for b in blocks for f in det.update(b) if f.active]


def test_each_unit_keeps_the_model_its_learning_showed() -> None:
    text = scenario("mixed", 31, "3d", batch("I", 4, model="KFR-35GW/BP"), batch("F", 4),
                    climate=HOT) + USERS  # fmt: skip
    fleet, blocks = _blocks(text)
    for unit in fleet.units:
        det, _ = _found(blocks[unit.device])
        assert not det.learning
        b = det._baseline
        assert b.proportional == unit.model.endswith("/BP"), unit
        kept = [0, 1, 2, 3] if not b.proportional else [4, 5, 6, 7]
        assert np.all(b.beta[[j for j in range(8) if j not in kept]] == 0.0)
        assert np.any(b.beta[kept] != 0.0)


def test_healthy_inverter_units_are_not_read_as_losing_cooling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Healthy inverter units whose users change setpoints: nothing found with the model each
    keeps; forced to the fixed-speed model, as before S17, the same units are found."""
    text = scenario("inv", 32, "7d", batch("I", 8, model="KFR-26GW/BP"), climate=HOT) + USERS
    _, blocks = _blocks(text)
    assert all(_found(b)[1] == [] for b in blocks.values())
    monkeypatch.setattr(
        CoolingDecline, "unused_features", lambda self, sums, prior=None: cooling._UNUSED_FIXED
    )
    assert sum(len(_found(b)[1]) for b in blocks.values()) > 0


def _in_fleet(
    blocks: dict[str, list[Block]], prior: FeaturePrior | None = None
) -> tuple[ShiftColumns, dict[str, int], list[Finding]]:
    """The units' blocks judged together, as the bank does: the columns, with the fleet's
    prior (``prior.py``; ``prior`` instead of the columns' own). Returns the columns, each
    unit's row and the active findings."""
    columns = columns_for(CoolingDecline)
    assert isinstance(columns, ShiftColumns)
    if prior is not None:
        columns.prior = prior
    rows = {d: columns.add() for d in blocks}
    got: list[Finding] = []
    for k in range(len(next(iter(blocks.values())))):
        batch_blocks = [b[k] for b in blocks.values()]
        for found in columns.update_many(list(rows.values()), Batch.of(batch_blocks)):
            got.extend(f for f in found if f.active)
    return columns, rows, got


def test_inverter_units_leaks_are_found_within_two_days() -> None:
    """Most of them, judged within their fleet: on the ``inverter`` fleets 78 of 90 (S17).
    Here at least 5 of 6, and no healthy unit: seeds 33, 35 and 36 gave 5, 6 and 5 (6, 6 and 6
    before the setpoint correction, S18; seed 36 also finds a healthy unit, before and after).
    Judged alone, a unit has no fleet's slope for its rows at setpoints below those it learned
    at (``CoolingDecline.corrected``), and those rows are not judged."""
    leak = fault("refrigerant_leak", 0.5, "3d", magnitude=0.15, ramp_s="1h")
    text = scenario("leak", 33, "6d", batch("I", 12, leak, model="KFR-35GW/BP"), climate=HOT)
    fleet, blocks = _blocks(text + USERS)
    onset = {f.device: f.onset_ts for f in fleet.ground_truth}
    assert len(onset) == 6
    first: dict[str, float] = {}
    for f in sorted(_in_fleet(blocks)[2], key=lambda f: f.ts):
        assert f.device in onset, f
        first.setdefault(f.device, f.ts)
    assert all(first[d] > onset[d] for d in first)
    assert sum(first[d] <= onset[d] + 48 * 3600.0 for d in first) >= 5


def test_the_columns_judge_inverter_units_as_the_reference_does() -> None:
    leak = fault("refrigerant_leak", 0.5, "3d", magnitude=0.15, ramp_s="1h")
    text = scenario("cols", 34, "5d", batch("I", 4, leak, model="KFR-50GW/BP"), batch("F", 2),
                    climate=HOT) + USERS  # fmt: skip
    _, blocks = _blocks(text)
    columns, rows, got = _in_fleet(blocks)
    expected = [f for b in blocks.values() for f in _found(b)[1]]
    assert expected, "the leaks should be found"
    key = sorted((f.device, f.ts, f.onset_ts) for f in got)
    assert key == sorted((f.device, f.ts, f.onset_ts) for f in expected)
    for device, row in rows.items():
        assert columns.export(row)._baseline.proportional == (device <= "ac-000004")


def _steady(setpoints: np.ndarray, t0: float = 0.0) -> Block:
    """An inverter unit's hour of settled cooling rows at ``setpoints``, the room 0.3 K above."""
    n = len(setpoints)
    cols = {
        "compressor_on": np.ones(n), "fan_speed": np.full(n, 2.0), "ambient_c": np.full(n, 32.0),
        "setpoint_c": setpoints, "return_c": setpoints + 0.3, "supply_c": setpoints - 6.0,
        "current_a": np.linspace(2.0, 4.0, n),
    }  # fmt: skip
    return Block("ac-1", t0 + 60.0 * np.arange(n), cols)


def test_rows_past_learning_take_the_return_air_back_to_the_learned_setpoints() -> None:
    """An inverter holds its room at the user's setpoint: after a setpoint beyond those the unit
    learned at, its per-ampere return-air feature reads as at the nearest learned one, and the
    plain feature keeps the true return air (``CoolingDecline.corrected`` reads the move)."""
    det = CoolingDecline(settle_s=0.0)
    det._rows(_steady(np.array([24.0, 25.0] * 30)))  # learning: setpoints 24-25
    det._learning = False
    _, x, _ = det._rows(_steady(np.array([22.0, 24.5, 28.0] * 20)))
    ret, per_amp = x[:, 3], x[:, 7] / x[:, 4]
    assert np.allclose(ret[:3], [-2.7, -0.2, 3.3])
    assert np.allclose(per_amp[:3], [-0.7, -0.2, 0.3])


@pytest.mark.parametrize(
    ("fleet", "effect", "expected"),
    [
        (None, None, [10.0, 10.0, np.nan]),
        (0.01, None, [10.0, 10.0, 10.0 + 3.0 * 0.3 * 2.0]),
        (0.01, 0.001, [10.0 - 3.0 * 0.03 * 2.0, 10.0, 10.0 + 3.0 * 0.3 * 2.0]),
        (0.01, 0.01, [10.0 - 3.0 * 0.05 * 2.0, 10.0, 10.0 + 3.0 * 0.3 * 2.0]),
    ],
)
def test_moved_rows_are_judged_along_the_slope_that_errs_away_from_a_loss(
    fleet: float | None, effect: float | None, expected: list[float]
) -> None:
    """Above the learned setpoints, along the gentler of the unit's per-ampere return-air slope
    and the setpoint's effect its fleet's units show (not moved without the fleet's: a warmer
    room raises ΔT, and the unit's slope is mostly the load's, S19); below, along the steeper
    of the unit's and the fleet's return-air slope, and not judged without the fleet's."""

    class Prior:
        def get(self, j: int) -> tuple[float, float, float, float] | None:
            assert j == 7
            return None if fleet is None else (fleet, 0.0, -5.0, 5.0)

        def quantile(self, j: int, q: float) -> float:
            assert j == 8
            return math.nan if effect is None else effect

    det = CoolingDecline()
    beta = np.array([0, 0, 0, 0, 1.0, 0, 0, 0.05])  # 0.05 K per A and K of return air
    amps = np.full(3, 2.0)
    ret = np.array([2.0, 0.0, -3.0])  # plain return air; moved by +3, 0 and -3 K
    per_amp = np.array([-1.0, 0.0, 0.0])
    x = np.column_stack([np.ones(3), np.zeros(3), np.zeros(3), ret, amps, 0 * amps, 0 * amps,
                         per_amp * amps])  # fmt: skip
    y = np.full(3, 10.0)
    got = det.corrected(x, y, beta, 30.0, True, Prior())  # type: ignore[arg-type]
    assert np.allclose(got, expected, equal_nan=True)
    assert det.corrected(x, y, beta, 30.0, False, Prior()) is y  # type: ignore[arg-type]


def test_a_unit_in_doubt_takes_the_model_most_of_its_fleet_chose() -> None:
    """A current that varied 2.5-5 % beyond the conditions: an inverter unit that seldom
    changed its speed while it learned, or a fixed-speed one whose current stepped with a leak.
    The fleet decides (``speed.DOUBT``); while it has no word, the unit waits for it."""
    rng = np.random.default_rng(5)
    amb = rng.uniform(25.0, 35.0, 500)
    amps = (3.0 + 0.05 * (amb - 30.0)) * (1.0 + 0.035 * rng.standard_normal(500))
    x = cooling.features(amb, np.full(500, 2.0), np.full(500, 25.0), amps, np.zeros(500))
    sums = x.T @ x
    assert cooling.speed.DOUBT < float(cooling.speed.spread(sums, 4)) < cooling.speed.SPREAD
    det = CoolingDecline()
    det._baseline.xtx[:] = sums

    def fleet(variable: int, fixed: int) -> FeaturePrior:
        prior = FeaturePrior(8)
        beta, lo, hi = np.ones(8), np.zeros(8), np.ones(8)
        for i in range(variable + fixed):
            out = cooling._UNUSED_VARIABLE if i < variable else cooling._UNUSED_FIXED
            prior.learn_values(f"u{i}", beta, 5.0, np.where(out, -1e9, lo), np.where(out, 1e9, hi))
        prior.commit()
        return prior

    assert det.waits(fleet(5, 4)) and not det.waits(None)  # nine units: no word yet
    assert not det.waits(fleet(9, 1))
    assert np.array_equal(det.unused_features(sums), cooling._UNUSED_FIXED)
    assert np.array_equal(det.unused_features(sums, fleet(9, 1)), cooling._UNUSED_VARIABLE)
    assert np.array_equal(det.unused_features(sums, fleet(3, 7)), cooling._UNUSED_FIXED)
    assert fleet(9, 1).left_out(0) == 0.9 and np.isnan(fleet(5, 4).left_out(0))


def test_blocks_without_a_setpoint_are_judged_as_the_reference_does() -> None:
    """The contract's blocks list the fields they carry: a firmware that sends no setpoint.
    The columns send such a block through the reference object (``optional``), whose rows are
    never moved (``cooling.beyond``: 0 where the setpoint is missing)."""
    leak = fault("refrigerant_leak", 0.5, "3d", magnitude=0.15, ramp_s="1h")
    text = scenario("nosp", 34, "5d", batch("I", 4, leak, model="KFR-50GW/BP"), batch("F", 2),
                    climate=HOT) + USERS  # fmt: skip
    _, blocks = _blocks(text)
    bare = {
        d: [Block(b.device, b.ts, {k: v for k, v in b.columns.items() if k != "setpoint_c"})
            for b in unit]
        for d, unit in blocks.items()
    }  # fmt: skip
    _, _, got = _in_fleet(bare)
    expected = [f for b in bare.values() for f in _found(b)[1]]
    assert expected, "the leaks should be found"
    key = sorted((f.device, f.ts, f.onset_ts) for f in got)
    assert key == sorted((f.device, f.ts, f.onset_ts) for f in expected)


def _hour(setpoint: float, gain: float, t0: float) -> Block:
    """An hour of an inverter unit's settled cooling at ``setpoint``: ΔT ``gain`` K per ampere."""
    block = _steady(np.full(60, setpoint), t0)
    cols = dict(block.columns)
    cols["supply_c"] = cols["return_c"] - gain * cols["current_a"]
    return Block(block.device, block.ts, cols)


def test_a_unit_offers_its_fleet_the_setpoint_effect_it_shows_past_learning() -> None:
    """Past learning, an inverter unit's rows at a setpoint above those it learned at, read
    against its baseline once moved back, say how ΔT per ampere moves with the setpoint: the
    fleet takes each unit's first readings (``CoolingDecline.offer_effects``), and the rows
    above are corrected by a low quantile of them (``EFFECT_Q``)."""
    prior = FeaturePrior(8, extra=1, min_units=1)
    det = CoolingDecline(settle_s=0.0)
    for h in range(40):  # learning at setpoints 24 and 25, ΔT 2 K per ampere
        det.update_pooled(_hour(24.0 + h % 2, 2.0, 3600.0 * h), prior)
        prior.commit()
    assert not det.learning and det._baseline.proportional
    level = det._baseline.level
    assert prior.get(8) is None
    # 2 K above the learned setpoints, 3 % more ΔT per ampere and kelvin of excess
    det.update_pooled(_hour(27.0, 2.0 * (1.0 + 0.03 * 2.0), 3600.0 * 40), prior)
    prior.commit()
    got = prior.get(8)
    assert got is not None
    assert got[0] == pytest.approx(2.0 * 0.03 / level, rel=0.05)
    assert prior.quantile(8, cooling.EFFECT_Q) == pytest.approx(got[0])
    # a unit that was not moved offers nothing
    still = FeaturePrior(8, extra=1, min_units=1)
    det.update_pooled(_hour(24.0, 2.0, 3600.0 * 41), still)
    still.commit()
    assert still.get(8) is None


def test_the_columns_offer_and_take_the_setpoint_effect_as_the_reference_does() -> None:
    """The columns send a block that may offer the fleet a setpoint effect through the
    reference (``ShiftColumns._pooling``), and correct rows above the learned setpoints with
    it in their own path: the same readings, the same findings, as units judged one by one
    with a shared prior (a fleet of 12: the prior takes its value from 3 units here)."""
    leak = fault("refrigerant_leak", 0.5, "3d", magnitude=0.15, ramp_s="1h")
    text = scenario("leak", 33, "6d", batch("I", 12, leak, model="KFR-35GW/BP"), climate=HOT)
    _, blocks = _blocks(text + USERS)
    columns, _, got = _in_fleet(blocks, FeaturePrior(8, extra=1, min_units=3))
    prior = FeaturePrior(8, extra=1, min_units=3)
    dets = {d: CoolingDecline() for d in blocks}
    expected: list[Finding] = []
    for k in range(len(next(iter(blocks.values())))):
        for d, det in dets.items():
            expected.extend(f for f in det.update_pooled(blocks[d][k], prior) if f.active)
        prior.commit()
    assert prior.get(8) is not None, "the units should have offered the setpoint effect"
    assert columns.prior._ratios[8] == pytest.approx(prior._ratios[8], rel=1e-9)
    key = sorted((f.device, f.ts, f.onset_ts) for f in got)
    assert key == sorted((f.device, f.ts, f.onset_ts) for f in expected)
    assert expected


def test_an_inverter_unit_is_not_judged_below_the_current_it_learned_at() -> None:
    """Its model has no constant, so at a current below the least it drew while learning (the
    compressor's lowest speeds, where the board's and fans' share of the current grows) it
    expects more ΔT than a healthy unit gives; a loss moves the current up, not down. Rows
    there are not judged, within the range's margin or not (``CoolingDecline.floor``)."""
    det = CoolingDecline(settle_s=0.0)
    for h in range(40):  # currents 2-4 A
        det.update(_hour(24.0 + h % 2, 2.0, 3600.0 * h))
    assert not det.learning and det._baseline.proportional
    block = _hour(24.0, 2.0, 3600.0 * 40)
    cols = dict(block.columns)
    cols["current_a"] = np.linspace(1.7, 3.0, 60)  # 1.7 A: inside the 20 % margin (1.6 A)
    _, x, _ = det._rows(Block(block.device, block.ts, cols))
    assert det._baseline.within(x, det.range_margin).all()
    assert det.trusted(x).tolist() == (cols["current_a"] >= 2.0).tolist()
