"""Inverter units (``simulators/inverter.py``): the compressor's speed follows the room, so a unit
runs long at part load with its ΔT and current following the speed, and a leak still lowers its
ΔT at a like speed. Fleets of fixed-speed models read as before."""

from __future__ import annotations

import numpy as np

from simulators import inverter
from simulators.aircon import FIELD_INDEX
from simulators.fleet import Fleet
from simulators.scenario import parse_scenario
from tests.scenarios import batch, fault, scenario

HOT = {"outdoor_mean_c": 31.0, "daily_amplitude_c": 5.0}


def run(text: str, minutes: int) -> tuple[Fleet, np.ndarray, np.ndarray]:
    """The fleet, its readings (minutes × units × fields) and its compressors' speeds."""
    fleet = Fleet(parse_scenario(text))
    sc = fleet.scenario
    rows, loads = [], []
    for k in range(1, minutes + 1):
        rows.append(fleet.step(sc.start_ts + k * sc.sample_period_s)[0])
        loads.append(fleet._state.load)
    return fleet, np.array(rows), np.array(loads)


def col(rows: np.ndarray, name: str) -> np.ndarray:
    return rows[:, :, FIELD_INDEX[name]]


def test_the_speed_follows_the_room_within_its_range() -> None:
    err = np.array([-5.0, 0.0, 0.6, 10.0])
    np.testing.assert_allclose(inverter.target_load(err), [0.3, 0.5, 0.8, 1.3])
    on, inv = np.array([True, True, False, True]), np.array([True, True, True, False])
    load = inverter.relax(np.full(4, 0.5), np.full(4, 10.0), on, inv, 1e6)
    np.testing.assert_allclose(load, [1.3, 1.3, inverter.LOAD_MIN, 1.0])  # stopped; fixed


def test_inverter_units_run_long_at_part_load_and_their_dt_follows_the_speed() -> None:
    text = scenario("inv", 5, "2d", batch("I", 8, model="KFR-35GW/BP"),
                    batch("F", 8, model="KFR-35GW"), climate=HOT)  # fmt: skip
    fleet, rows, loads = run(text, 2 * 1440)
    inv = np.array([u.model.endswith("/BP") for u in fleet.units])
    on = col(rows, "compressor_on") > 0.5
    starts = (np.diff(on.astype(int), axis=0) == 1).sum(axis=0)
    assert starts[inv].mean() * 3 < starts[~inv].mean()  # cycles far less
    assert (loads[:, ~inv] == 1.0).all()
    running = on[:, inv] & (np.arange(len(on))[:, None] > 10)
    assert np.median(loads[:, inv][running]) < 0.9  # mostly part load
    dt = col(rows, "return_c")[:, inv] - col(rows, "supply_c")[:, inv]
    amps = col(rows, "current_a")[:, inv]
    fast, slow = running & (loads[:, inv] > 0.7), running & (loads[:, inv] < 0.4)
    assert np.nanmean(dt[fast]) > np.nanmean(dt[slow]) + 2.0
    assert np.nanmean(amps[fast]) > 1.5 * np.nanmean(amps[slow])
    assert np.nanmean(dt[slow]) > 2.0  # still cooling at its lowest speed


def test_a_leak_lowers_an_inverter_units_dt_per_speed() -> None:
    leak = fault("refrigerant_leak", 0.5, "1d", magnitude=0.3, ramp_s="1h")
    text = scenario("inv", 6, "3d", batch("I", 10, leak, model="KFR-26GW/BP"), climate=HOT)
    fleet, rows, loads = run(text, 3 * 1440)
    leaked = np.isin([u.device for u in fleet.units], [f.device for f in fleet.ground_truth])
    assert leaked.sum() == 5
    on = col(rows, "compressor_on") > 0.5
    dt = col(rows, "return_c") - col(rows, "supply_c")
    per_speed = dt / loads  # ΔT is about proportional to the speed: capacity per unit of speed
    steady = on & (loads > 0.4)
    minute = np.arange(len(rows))[:, None]
    before, after = steady & (minute > 120) & (minute < 1440), steady & (minute > 1440 + 180)
    ratio = np.array([np.nanmean(per_speed[after[:, u], u]) / np.nanmean(per_speed[before[:, u], u])
                      for u in range(10)])  # fmt: skip
    assert (ratio[leaked] < 0.85).all() and (ratio[~leaked] > 0.9).all()


def test_fixed_speed_fleets_have_no_speed_state() -> None:
    fleet, _, loads = run(scenario("fixed", 7, "1h", batch("F", 3), climate=HOT), 5)
    assert fleet._params.inverter is None and (loads == None).all()  # noqa: E711
