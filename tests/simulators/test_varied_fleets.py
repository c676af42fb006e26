"""Issue 15's scenarios: climate regions, users changing setpoints, compressor inrush, models of
different capacities, 5-minute and 1 Hz sampling. They parse and run, and each behaviour is
physically plausible and never labelled a fault."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from evaluation.fleet import evaluate
from simulators.aircon import FIELD_INDEX
from simulators.fleet import Fleet
from simulators.models import MODELS
from simulators.runner import safety_rules
from simulators.scenario import ScenarioError, load_scenario, parse_scenario
from tests.scenarios import batch, fault, scenario

FAMILIES = (
    "regions", "setpoints", "capacities", "fivemin", "onehz", "autumn", "evenings", "inverter",
)  # fmt: skip
NEW = tuple(n for f in FAMILIES for n in (f, f"{f}-healthy"))


def steps(fleet: Fleet, n: int) -> np.ndarray:
    """``n`` sample periods of readings, shape (n, units, fields)."""
    sc = fleet.scenario
    return np.array([fleet.step(sc.start_ts + k * sc.sample_period_s)[0] for k in range(1, n + 1)])


def col(rows: np.ndarray, name: str) -> np.ndarray:
    return rows[:, :, FIELD_INDEX[name]]


@pytest.mark.parametrize("name", NEW)
def test_new_scenarios_parse_and_their_healthy_variants_have_no_faults(name: str) -> None:
    sc = load_scenario(name)
    assert sc.units > 0
    if name.endswith("-healthy"):
        assert not any(b.faults for b in sc.batches)
        assert Fleet(sc).ground_truth == []


@pytest.mark.parametrize("name", FAMILIES)
def test_new_scenarios_run_through_eval(name: str) -> None:
    """A sliver of each (a unit per batch, 120 sample periods) through the edge, the ingest,
    the tickets and the static rule, in the scenario's own blocks."""
    sc = load_scenario(name)
    batches = tuple(replace(b, units=1) for b in sc.batches)
    short = replace(sc, duration_s=120 * sc.sample_period_s, batches=batches)
    report = evaluate(short)
    assert report.units == len(sc.batches) and report.static is not None
    assert report.rows and "Static rule" in report.table()


def test_blocks_follow_the_scenario() -> None:
    five = load_scenario("fivemin")
    assert five.sample_period_s == 300 and five.block_rows == 12  # an hour a block
    onehz = load_scenario("onehz")
    assert onehz.sample_period_s == 1 and onehz.block_rows == 60  # a minute a block


def test_regions_have_their_own_climate() -> None:
    sc = load_scenario("regions-healthy")
    fleet = Fleet(replace(sc, batches=tuple(replace(b, units=25) for b in sc.batches)))
    shares = np.bincount(fleet.region) / len(fleet.units)
    assert shares == pytest.approx([r.share for r in sc.regions], abs=0.01)
    outdoor = col(steps(fleet, 24 * 60), "ambient_c")  # a day
    means = [np.nanmean(outdoor[:, fleet.region == k]) for k in range(len(sc.regions))]
    south, north, basin = means
    assert north < south < basin
    swing = [np.nanmean(np.ptp(outdoor[:, fleet.region == k], axis=0)) for k in range(3)]
    assert swing[1] > swing[0]  # the north's days swing more


def test_setpoint_changes_move_the_room_and_supply_not_the_delta_t() -> None:
    base = parse_scenario(scenario("users", 3, "2d", batch("B", 20)))
    still = steps(Fleet(base), 2 * 1440)
    users = replace(base, users=replace(base.users, setpoint_changes_per_day=3.0))
    moved = steps(Fleet(users), 2 * 1440)
    setpoint = col(moved, "setpoint_c")
    changes = np.abs(np.diff(setpoint, axis=0)) > 0
    assert changes.sum() > 40 and (np.abs(np.diff(setpoint, axis=0))[changes] <= 3.0).all()
    assert np.nanmin(setpoint) >= 18.0 and np.nanmax(setpoint) <= 28.0
    # the thermostat follows: the room sits near the new setpoint a few hours later
    late = slice(-360, None)
    gap = np.nanmean(col(moved, "return_c")[late] - setpoint[late], axis=0)
    assert np.abs(gap).max() < 2.5

    def running_delta(rows: np.ndarray) -> float:
        on = col(rows, "compressor_on") > 0.5
        delta = col(rows, "return_c") - col(rows, "supply_c")
        return float(np.nanmedian(delta[on]))

    # a cooler room lowers capacity a little (and the supply with the room), no collapse
    assert abs(running_delta(moved) - running_delta(still)) < 1.0
    assert Fleet(users).ground_truth == []


def test_heat_pumps_switch_to_heating_as_the_weather_cools() -> None:
    """Users heat once the last day felt cooler than their threshold: supply air then lies well
    above the return air, the room sits near the heating setpoint, and ``setpoint_c`` reports
    it; earlier, in warm weather, the same units cooled."""
    cooling_down = {"outdoor_mean_c": 24.0, "trend_c_per_day": -2.0, "daily_amplitude_c": 3.0}
    text = scenario("autumn", 5, "6d", batch("B", 20), climate=cooling_down)
    text += "[users]\nheating_below_c = 17.0\n"
    fleet = Fleet(parse_scenario(text))
    rows = steps(fleet, 6 * 1440)
    on = col(rows, "compressor_on") > 0.5
    rise = col(rows, "supply_c") - col(rows, "return_c")
    first, last = slice(0, 1440), slice(-1440, None)
    assert np.nanmedian(rise[first][on[first]]) < -5.0  # cooling on the first day
    assert np.nanmedian(rise[last][on[last]]) > 8.0  # heating on the last
    assert fleet._state.heating is not None and fleet._state.heating.mean() >= 0.8
    heating = fleet._state.heating
    now = col(rows, "setpoint_c")[-1, heating]
    assert np.nanmin(now) >= 19.0 and np.nanmax(now) <= 23.0
    hours = slice(-360, None)
    setpoint = col(rows, "setpoint_c")[hours][:, heating]
    gap = np.nanmean(col(rows, "return_c")[hours][:, heating] - setpoint, axis=0)
    assert np.median(np.abs(gap)) < 1.0  # held near it (a unit that just switched warms up)
    assert fleet.ground_truth == []


def test_a_leak_lowers_heating_too() -> None:
    cold = {"outdoor_mean_c": 8.0, "daily_amplitude_c": 3.0}
    leak = fault("refrigerant_leak", 1.0, "0s", magnitude=0.3, ramp_s="1s")
    heating = "[users]\nheating_below_c = 17.0\n"
    sound = scenario("cold", 6, "1d", batch("B", 10), climate=cold) + heating
    leaking = scenario("cold", 6, "1d", batch("B", 10, leak), climate=cold) + heating

    def rise(text: str) -> float:
        rows = steps(Fleet(parse_scenario(text)), 1440)
        on = col(rows, "compressor_on") > 0.5
        return float(np.nanmedian((col(rows, "supply_c") - col(rows, "return_c"))[on]))

    assert rise(leaking) < 0.85 * rise(sound)


def test_a_fleet_that_never_heats_reads_as_one_without_heat_pumps() -> None:
    text = scenario("warm", 7, "1d", batch("B", 10))
    plain = steps(Fleet(parse_scenario(text)), 600)
    never = steps(Fleet(parse_scenario(text + "[users]\nheating_below_c = -10.0\n")), 600)
    np.testing.assert_array_equal(plain, never)


def test_users_run_their_units_by_the_clock() -> None:
    """``use_hours``: outside a user's hours the unit is switched off (fan and compressor off,
    still reporting) and its room warms; within them it runs and pulls the room down; a span
    whose off hour comes first runs past midnight. A fleet without the key reads as before."""
    hot = {"outdoor_mean_c": 32.0, "daily_amplitude_c": 4.0}
    text = scenario("clock", 3, "2d", batch("B", 12), climate=hot)
    plain = steps(Fleet(parse_scenario(text)), 600)
    np.testing.assert_array_equal(plain, steps(Fleet(parse_scenario(text + "[users]\n")), 600))
    fleet = Fleet(parse_scenario(text + "[users]\nuse_hours = [[18.0, 23.0], [22.0, 6.0]]\n"))
    assert fleet._use is not None
    on_h, off_h = fleet._use[:, 0], fleet._use[:, 1]
    night = on_h > off_h
    assert night.any() and (~night).any()  # both habits drawn
    rows = steps(fleet, 2 * 1440)
    hour = (np.arange(1, 2 * 1440 + 1) / 60.0) % 24.0  # local time: the run starts at midnight
    within = np.where(night, (hour[:, None] >= on_h) | (hour[:, None] < off_h),
                      (hour[:, None] >= on_h) & (hour[:, None] < off_h))  # fmt: skip
    fan, comp = col(rows, "fan_speed"), col(rows, "compressor_on")
    seen = ~np.isnan(fan)
    assert (fan[~within & seen] == 0).all() and (comp[~within & ~np.isnan(comp)] == 0).all()
    assert (fan[within & seen] >= 1).mean() > 0.99  # on (a reading may fall on the switch)
    ret = col(rows, "return_c")
    assert np.nanmean(ret[~within]) > np.nanmean(ret[within]) + 2.0  # the room warms while off
    assert fleet.ground_truth == []


def test_inrush_is_one_short_spike_at_each_compressor_start() -> None:
    sc = replace(load_scenario("onehz-healthy"), duration_s=3600.0)
    with_inrush = steps(Fleet(sc), 3600)
    without = steps(Fleet(replace(sc, inrush=False)), 3600)
    # the same fleet otherwise: only the current differs
    diff = (with_inrush != without) & ~(np.isnan(with_inrush) & np.isnan(without))
    assert not diff[:, :, [i for n, i in FIELD_INDEX.items() if n != "current_a"]].any()
    on = col(with_inrush, "compressor_on") > 0.5
    started = on & ~np.vstack([np.zeros_like(on[:1]), on[:-1]])  # the units start at rest
    just_after = np.vstack([np.zeros_like(on[:1]), started[:-1]])  # one second after a start
    rise = np.nan_to_num(col(with_inrush, "current_a") - col(without, "current_a"))
    assert (rise >= 0).all()
    spike = rise > 0.05  # the tail two seconds after a start is a hundredth of an amp
    assert spike.any() and not (spike & ~just_after).any()
    # one reading per start (less the odd reading a sensor dropped), well above running current
    assert started.sum() >= 4 and started.sum() - 3 <= spike.sum() <= started.sum()
    assert (rise[spike] > 0.5 * col(without, "current_a")[spike]).all()


def test_models_of_different_capacities_each_have_their_protection() -> None:
    assert MODELS["KFR-72LW"].rated_capacity_w > 2.5 * MODELS["KFR-26GW"].rated_capacity_w
    (over, _heat) = safety_rules("KFR-72LW")
    assert (over.kind, over.limit) == ("overcurrent", 16.0)
    assert safety_rules("KFR-35GW")[0].limit == 10.0
    sc = load_scenario("capacities-healthy")
    fleet = Fleet(replace(sc, batches=tuple(replace(b, units=3) for b in sc.batches)))
    rows = steps(fleet, 12 * 60)
    model = np.array([u.model for u in fleet.units])
    current = col(rows, "current_a")
    big, small = current[:, model == "KFR-72LW"], current[:, model == "KFR-26GW"]
    assert np.nanmax(big) > 2 * np.nanmax(small) and np.nanmax(big) < 16.0


def test_bad_new_keys_are_clear_errors() -> None:
    text = scenario("bad", 1, "1d", batch("B", 2))
    with pytest.raises(ScenarioError, match="add up to 1"):
        parse_scenario(
            text + '[[regions]]\nname = "a"\nshare = 0.5\n[[regions]]\nname = "b"\nshare = 0.2\n'
        )
    with pytest.raises(ScenarioError, match="block_rows"):
        parse_scenario(text.replace('name = "bad"', 'name = "bad"\nblock_rows = 0'))
    with pytest.raises(ScenarioError, match="compressor.inrush"):
        parse_scenario(text + '[compressor]\ninrush = "yes"\n')
    with pytest.raises(ScenarioError, match="users.heating_below_c"):
        parse_scenario(text + "[users]\nheating_below_c = 40.0\n")
    with pytest.raises(ScenarioError, match="users.heat_setpoint_range_c"):
        parse_scenario(text + "[users]\nheat_setpoint_range_c = [22.0]\n")
    with pytest.raises(ScenarioError, match=r"users.use_hours\[0\]"):
        parse_scenario(text + "[users]\nuse_hours = [[18.0]]\n")
    with pytest.raises(ScenarioError, match="same hour"):
        parse_scenario(text + "[users]\nuse_hours = [[0.0, 24.0]]\n")
    with pytest.raises(ScenarioError, match=r"users.use_hours\[0\]\[1\]"):
        parse_scenario(text + "[users]\nuse_hours = [[18.0, 25.0]]\n")
    with pytest.raises(ScenarioError, match="utc_offset_h"):
        parse_scenario(text + '[[regions]]\nname = "a"\nshare = 1.0\nutc_offset_h = 3\n')
