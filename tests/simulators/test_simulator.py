"""The fleet simulator: physics looks like real split units, faults show as injected, runs repeat.

Plausibility ranges asserted for a healthy KFR-35GW (3.5 kW) over a summer week, samples every
60 s, "cooling" = compressor on for at least 5 minutes (the coil is cold by then):

* supply air 8-18 °C and return-supply ΔT 6-14 °C while cooling;
* current 2.5-7 A with the compressor on (rated ~5 A at 35 °C outdoors), 0.05-0.6 A with it off
  (fan and board);
* noise 25-48 dB(A), vibration 0.002-0.06 g;
* the room is held near the setpoint and the compressor cycles.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.aircon import AIRCON_FIELDS, FIELD_INDEX
from simulators.fleet import Fleet
from simulators.scenario import (
    BUILTIN_SCENARIOS,
    FAULT_KINDS,
    BatchSpec,
    FaultSpec,
    Scenario,
    ScenarioError,
    duration_s,
    load_scenario,
    parse_scenario,
)
from tests import scenarios as toml

pytestmark = pytest.mark.slow  # days of simulated physics per case

DAY = 86400.0
START = 1719763200.0  # 2024-07-01T00:00:00+08:00
F = FIELD_INDEX


def scenario(*batches: BatchSpec, days: float = 7.0, seed: int = 3) -> Scenario:
    return Scenario("test", seed, START, days * DAY, 60.0, tuple(batches))


def run(fleet: Fleet, days: float, period: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Readings of shape (steps, units, fields) and online masks of shape (steps, units)."""
    steps = int(days * DAY / period)
    rows = np.empty((steps, len(fleet.units), len(AIRCON_FIELDS)))
    online = np.empty((steps, len(fleet.units)), dtype=bool)
    for k in range(steps):
        rows[k], online[k] = fleet.step(fleet.scenario.start_ts + k * period)
    return rows, online


def run_age(on: np.ndarray) -> np.ndarray:
    """Samples since the compressor started (0 when off), per unit."""
    age = np.zeros_like(on)
    for k in range(1, len(on)):
        age[k] = np.where(on[k] > 0, age[k - 1] + 1, 0)
    return age


def delta_t(rows: np.ndarray) -> np.ndarray:
    return rows[..., F["return_c"]] - rows[..., F["supply_c"]]


@pytest.fixture(scope="module")
def healthy_week() -> tuple[Fleet, np.ndarray]:
    fleet = Fleet(scenario(BatchSpec("B1", "KFR-35GW", 16), BatchSpec("B2", "KFR-35GW", 8)))
    rows, online = run(fleet, 7.0)
    assert online.all()
    return fleet, rows


def test_fields_follow_the_contract() -> None:
    assert AIRCON_FIELDS == (
        "ts", "setpoint_c", "return_c", "supply_c", "ambient_c", "compressor_on",
        "fan_speed", "current_a", "noise_db", "vibration_g",
    )  # fmt: skip


def test_healthy_units_stay_plausible_over_a_week(healthy_week: tuple[Fleet, np.ndarray]) -> None:
    _, rows = healthy_week
    on = rows[..., F["compressor_on"]]
    age = run_age(on)
    cooling = (on > 0) & (age >= 5)
    assert cooling.sum() > 0.1 * on.size
    supply = rows[..., F["supply_c"]][cooling]
    assert supply.min() >= 8.0 and supply.max() <= 18.0
    dt = delta_t(rows)[cooling]
    assert dt.min() >= 6.0 and dt.max() <= 14.0

    current = rows[..., F["current_a"]]
    assert current[(on > 0) & (age >= 1)].min() >= 2.5
    assert current[on > 0].max() <= 7.0
    assert current[on == 0].min() >= 0.05 and current[on == 0].max() <= 0.6
    noise, vibration = rows[..., F["noise_db"]], rows[..., F["vibration_g"]]
    assert noise.min() >= 25.0 and noise.max() <= 48.0
    assert vibration.min() >= 0.002 and vibration.max() <= 0.06
    assert not np.isnan(rows).any()

    # The thermostat holds the room near the setpoint, cycling the compressor.
    error = rows[..., F["return_c"]] - rows[..., F["setpoint_c"]]
    assert np.abs(np.median(error, axis=0)).max() < 1.5
    starts = (np.diff(on, axis=0) > 0).sum(axis=0)
    assert (starts >= 7).all()  # at least one cycle a day
    duty = on.mean(axis=0)
    assert duty.min() > 0.15 and duty.max() <= 1.0

    # Outdoors has a day-night cycle, and it drives the load: more cooling in the afternoon.
    hours = ((rows[:, 0, 0] + 8 * 3600) % DAY) / 3600
    ambient = rows[..., F["ambient_c"]].mean(axis=1)
    afternoon, night = (hours >= 13) & (hours < 17), (hours >= 2) & (hours < 6)
    assert ambient[afternoon].mean() - ambient[night].mean() > 5.0
    assert on[afternoon].mean() > on[night].mean() + 0.1


def test_healthy_units_differ_from_each_other(healthy_week: tuple[Fleet, np.ndarray]) -> None:
    _, rows = healthy_week
    low_fan = rows[..., F["fan_speed"]] == 1
    per_unit_noise = [np.median(rows[:, u, F["noise_db"]][low_fan[:, u]]) for u in range(24)]
    assert np.std(per_unit_noise) > 0.3
    assert len(set(rows[0, :, F["setpoint_c"]])) > 3


def test_supply_follows_return_while_the_compressor_rests(
    healthy_week: tuple[Fleet, np.ndarray],
) -> None:
    _, rows = healthy_week
    on = rows[..., F["compressor_on"]]
    off_age = run_age(1 - on)
    resting = (on == 0) & (off_age >= 5)
    assert np.abs(np.median(delta_t(rows)[resting]) + 0.2) < 0.3  # fan heat only
    assert np.percentile(np.abs(delta_t(rows)[resting]), 99) < 1.5


def matched_dt_ratio(rows: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per unit, ΔT after / before while cooling, matched by outdoor-temperature bin and fan."""
    on = rows[..., F["compressor_on"]]
    cooling = (on > 0) & (run_age(on) >= 5)
    dt = delta_t(rows)
    key = np.floor(rows[..., F["ambient_c"]]) * 10 + rows[..., F["fan_speed"]]
    ratios = []
    for u in range(rows.shape[1]):
        num = den = 0.0
        for k in np.unique(key[:, u][cooling[:, u]]):
            sel = cooling[:, u] & (key[:, u] == k)
            b, a = dt[:, u][sel & before], dt[:, u][sel & after]
            if len(b) >= 5 and len(a) >= 5:
                weight = min(len(a), len(b))
                num, den = num + weight * np.median(a), den + weight * np.median(b)
        assert den > 0, "no matched conditions"
        ratios.append(num / den)
    return np.array(ratios)


def test_leak_of_20_percent_shows_as_20_percent_less_dt() -> None:
    leak = FaultSpec("refrigerant_leak", 1.0, (2 * DAY, 2 * DAY), 0.2, 10 * DAY)
    fleet = Fleet(scenario(BatchSpec("B1", "KFR-35GW", 6, (leak,)), days=14.0))
    rows, _ = run(fleet, 14.0)
    t = rows[:, 0, 0] - START
    ratio = matched_dt_ratio(rows, t < 2 * DAY, t >= 12 * DAY)
    loss = 1.0 - ratio
    assert np.all(np.abs(loss - 0.2) < 0.05), loss
    assert abs(loss.mean() - 0.2) < 0.03, loss


def test_repair_restores_dt() -> None:
    leak = FaultSpec("refrigerant_leak", 1.0, (1 * DAY, 1 * DAY), 0.3, 0.5 * DAY)
    fleet = Fleet(scenario(BatchSpec("B1", "KFR-35GW", 4, (leak,)), days=5.0))
    steps = int(5 * DAY / 60)
    rows = np.empty((steps, 4, len(AIRCON_FIELDS)))
    for k in range(steps):
        ts = START + 60 * k
        if ts == START + 3 * DAY:
            fleet.repair([u.device for u in fleet.units], ts)
        rows[k], _ = fleet.step(ts)
    t = rows[:, 0, 0] - START
    leaking = matched_dt_ratio(rows, t < DAY, (t >= 1.5 * DAY) & (t < 3 * DAY))
    repaired = matched_dt_ratio(rows, t < DAY, t >= 3 * DAY + 3600)
    assert np.all(leaking < 0.8)
    assert np.all(np.abs(repaired - 1.0) < 0.05), repaired
    assert all(g.repair_ts == START + 3 * DAY for g in fleet.ground_truth)


def test_same_seed_same_readings_other_seed_differs() -> None:
    faults = (FaultSpec("compressor_overcurrent", 0.5, (0.0, 3600.0), 12.0),)
    spec = scenario(BatchSpec("B1", "KFR-35GW", 6, faults), days=0.25)
    a, _ = run(Fleet(spec), 0.25)
    b, _ = run(Fleet(spec), 0.25)
    c, _ = run(Fleet(replace(spec, seed=spec.seed + 1)), 0.25)
    d, _ = run(Fleet(spec, np.random.default_rng(99)), 0.25)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_ground_truth_matches_what_was_injected(tmp_path) -> None:
    spec = load_scenario("week")
    fleet = Fleet(spec)
    truth = fleet.ground_truth
    devices = {u.device: u for u in fleet.units}
    for batch in spec.batches:
        for fault in batch.faults:
            mine = [g for g in truth if g.batch == batch.batch and g.kind == fault.kind]
            assert len(mine) == round(fault.share * batch.units)
            lo, hi = (spec.start_ts + s for s in fault.onset_after_s)
            assert all(lo <= g.onset_ts <= hi for g in mine)
            assert all(g.expected_fault == FAULT_KINDS[fault.kind].expected_faults[0] for g in mine)
            assert all(devices[g.device].batch == batch.batch for g in mine)
            if fault.kind == "offline":
                assert all(g.repair_ts == g.onset_ts + fault.magnitude for g in mine)
            elif fault.repair_after_s is not None:
                assert all(g.repair_ts == spec.start_ts + fault.repair_after_s for g in mine)
    expected = {g.kind: g.expected_fault for g in truth}
    assert expected == {
        "refrigerant_leak": "cooling_decline", "clogged_filter": "cooling_decline",
        "fan_bearing_wear": "noise_rise", "loose_panel": "noise_rise",
        "compressor_overcurrent": "overcurrent", "stuck_sensor": "sensor_stuck",
        "offline": "device_offline",
    }  # fmt: skip

    fleet.write_ground_truth(tmp_path / "truth.json")
    doc = json.loads((tmp_path / "truth.json").read_text())
    assert len(doc["faults"]) == len(truth) and doc["faults"][0]["device"] == truth[0].device
    fleet.write_ground_truth(tmp_path / "truth.csv")
    lines = (tmp_path / "truth.csv").read_text().splitlines()
    assert lines[0].startswith("device,batch,model,kind,expected_fault,onset_ts")
    assert len(lines) == len(truth) + 1


def test_identities_follow_the_contract() -> None:
    fleet = Fleet(load_scenario("demo"))
    assert fleet.units[0].device == "ac-000001" and fleet.units[0].serial == "SN-000001"
    pattern = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
    assert all(pattern.match(u.device) for u in fleet.units)
    assert len({u.device for u in fleet.units}) == len(fleet.units)


def one_fault(
    fault: FaultSpec, days: float = 2.0, units: int = 3
) -> tuple[Fleet, np.ndarray, np.ndarray]:
    fleet = Fleet(scenario(BatchSpec("B1", "KFR-35GW", units, (fault,)), days=days))
    rows, online = run(fleet, days)
    return fleet, rows, online


def test_bearing_wear_raises_noise_and_vibration() -> None:
    _, rows, _ = one_fault(FaultSpec("fan_bearing_wear", 1.0, (0.5 * DAY, 0.5 * DAY), 6.0, DAY))
    t = rows[:, 0, 0] - START
    # Same fan speed and compressor state: the compressor's own noise would blur the difference.
    low = (rows[..., F["fan_speed"]] == 1) & (rows[..., F["compressor_on"]] == 0)
    for u in range(3):
        before, after = low[:, u] & (t < 0.5 * DAY), low[:, u] & (t >= 1.5 * DAY)
        noise = rows[:, u, F["noise_db"]]
        assert np.median(noise[after]) - np.median(noise[before]) == pytest.approx(6.0, abs=1.0)
        vib = rows[:, u, F["vibration_g"]]
        assert np.median(vib[after]) - np.median(vib[before]) > 0.03


def test_loose_panel_is_a_noise_step_without_vibration() -> None:
    _, rows, _ = one_fault(FaultSpec("loose_panel", 1.0, (DAY, DAY), 4.0))
    t = rows[:, 0, 0] - START
    low = (rows[..., F["fan_speed"]] == 1) & (rows[..., F["compressor_on"]] == 0)
    for u in range(3):
        before, after = low[:, u] & (t < DAY), low[:, u] & (t >= DAY)
        noise, vib = rows[:, u, F["noise_db"]], rows[:, u, F["vibration_g"]]
        assert np.median(noise[after]) - np.median(noise[before]) == pytest.approx(4.0, abs=0.5)
        assert abs(np.median(vib[after]) - np.median(vib[before])) < 0.003


def test_overcurrent_spikes_only_after_onset_and_with_the_compressor() -> None:
    _, rows, _ = one_fault(FaultSpec("compressor_overcurrent", 1.0, (DAY, DAY), 12.0))
    t = rows[:, 0, 0] - START
    current, on = rows[..., F["current_a"]], rows[..., F["compressor_on"]]
    spikes = current > 10.0
    assert not spikes[t < DAY].any()
    assert spikes[t >= DAY].sum() > 20
    assert (on[spikes] == 1).all()


def test_clogged_filter_lowers_dt_and_lengthens_runs() -> None:
    fleet, rows, _ = one_fault(
        FaultSpec("clogged_filter", 1.0, (DAY, DAY), 0.35, 0.5 * DAY), days=4.0
    )
    t = rows[:, 0, 0] - START
    on = rows[..., F["compressor_on"]]
    # Not matched by fan speed: a choked unit cannot keep up and runs its fan faster.
    cooling = (on > 0) & (run_age(on) >= 5)
    dt = delta_t(rows)
    for u in range(3):
        before = np.median(dt[:, u][cooling[:, u] & (t < DAY)])
        after = np.median(dt[:, u][cooling[:, u] & (t >= 2 * DAY)])
        assert after < 0.92 * before
    assert on[t >= 2 * DAY].mean() > on[t < DAY].mean() + 0.1


def test_stuck_sensor_repeats_one_value_while_the_room_moves() -> None:
    fault = FaultSpec("stuck_sensor", 1.0, (DAY, DAY), 0.0, sensor="supply_c")
    fleet, rows, _ = one_fault(fault)
    t = rows[:, 0, 0] - START
    assert all(g.detail == "supply_c" for g in fleet.ground_truth)
    for u in range(3):
        stuck = rows[t >= DAY, u, F["supply_c"]]
        assert np.all(stuck == stuck[0])
        assert stuck[0] == rows[t < DAY, u, F["supply_c"]][-1]  # its last value before
        assert np.ptp(rows[t >= DAY, u, F["return_c"]]) > 1.0
        assert np.ptp(rows[t < DAY, u, F["supply_c"]]) > 3.0


def test_offline_units_give_no_readings_for_the_outage() -> None:
    fleet, rows, online = one_fault(FaultSpec("offline", 1.0, (DAY, DAY), 6 * 3600.0), days=1.5)
    t = rows[:, 0, 0] - START
    outage = (t >= DAY) & (t < DAY + 6 * 3600)
    assert not online[outage].any() and online[~outage].all()
    assert np.isnan(rows[outage][..., 1:]).all()
    assert not np.isnan(rows[outage][..., 0]).any()
    assert not np.isnan(rows[~outage]).any()
    assert all(g.repair_ts == START + DAY + 6 * 3600 for g in fleet.ground_truth)


def test_repair_leaves_faults_that_have_not_begun() -> None:
    fleet = Fleet(scenario(BatchSpec("B1", "KFR-35GW", 2, (
        FaultSpec("loose_panel", 1.0, (DAY, DAY), 4.0),
    )), days=2.0))  # fmt: skip
    fleet.step(START + 3600)
    fleet.repair([fleet.units[0].device], START + 3600)
    assert all(g.repair_ts is None for g in fleet.ground_truth)
    with pytest.raises(KeyError):
        fleet.repair(["ac-999999"], START + 3600)


def test_sensor_dropout_gives_nan_only_in_sensor_fields() -> None:
    spec = replace(scenario(BatchSpec("B1", "KFR-35GW", 10), days=0.5), sensor_dropout=0.05)
    rows, _ = run(Fleet(spec), 0.5)
    lost = np.isnan(rows)
    assert 0.02 < lost[..., F["return_c"]].mean() < 0.08
    for name in ("ts", "setpoint_c", "compressor_on", "fan_speed"):
        assert not lost[..., F[name]].any()


def test_uneven_steps_stay_plausible_and_time_only_runs_forward() -> None:
    fleet = Fleet(scenario(BatchSpec("B1", "KFR-35GW", 5), days=2.0))
    rng = np.random.default_rng(0)
    ts = START
    for _ in range(300):
        ts += float(rng.choice([1.0, 7.5, 60.0, 600.0, 3600.0]))
        rows, _ = fleet.step(ts)
        assert np.all(np.abs(rows[:, F["return_c"]] - rows[:, F["setpoint_c"]]) < 4.0)
        assert np.all(rows[:, F["supply_c"]] > 5.0)
    with pytest.raises(ValueError):
        fleet.step(ts - 1.0)


def test_ten_thousand_units_step_in_one_call() -> None:
    fleet = Fleet(load_scenario("scale"))
    rows, online = fleet.step(fleet.scenario.start_ts)
    rows, online = fleet.step(fleet.scenario.start_ts + 60.0)
    assert rows.shape == (10_000, len(AIRCON_FIELDS)) and rows.dtype == np.float64
    assert online.shape == (10_000,) and online.all()
    assert not np.isnan(rows).any()


# --- scenarios --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTIN_SCENARIOS)
def test_builtin_scenarios_load(name: str) -> None:
    spec = load_scenario(name)
    assert spec.name == name and spec.units > 0 and spec.duration_s > 0


def test_demo_scenario_has_a_leaking_batch_and_one_born_short() -> None:
    spec = load_scenario("demo")
    assert 60 <= spec.units <= 120 and 4 <= len(spec.batches) <= 5
    assert spec.sample_period_s == 60 and spec.speed == 0
    faulty = {b.batch: b for b in spec.batches if b.faults}
    assert sorted(faulty) == ["B20240517", "B20240605"]
    (leak,) = faulty["B20240517"].faults
    assert leak.kind == "refrigerant_leak" and 0.4 <= leak.share <= 0.6
    assert 0.2 <= leak.magnitude <= 0.3 and leak.onset_after_s == (DAY, 3 * DAY)
    (short,) = faulty["B20240605"].faults
    assert short.kind == "refrigerant_leak" and short.share == 1.0
    assert short.onset_after_s == (0.0, 0.0) and short.magnitude == 0.15
    # the peer level test needs the model's other batches as its reference
    model = faulty["B20240605"].model
    others = [b for b in spec.batches if b.model == model and b.batch != "B20240605"]
    assert sum(b.units for b in others if not b.faults) >= 10


def test_load_scenario_from_a_file(tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    spec = load_scenario(str(path))
    assert spec.start_ts == START and spec.duration_s == 1.5 * DAY
    assert spec.batches[0].faults[0].onset_after_s == (3600.0, 7200.0)
    assert spec.climate.outdoor_mean_c == 33.0


GOOD = toml.scenario(
    "mine",
    5,
    "1d12h",
    toml.batch(
        "B1", 4, toml.fault("refrigerant_leak", 0.5, ["1h", "2h"], magnitude=0.2, ramp_s="1d")
    ),
    climate={"outdoor_mean_c": 33.0},
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("units = 4", "units = 0"), "batches[0].units"),
        (("share = 0.5", "share = 1.5"), "faults[0].share"),
        (('kind = "refrigerant_leak"', 'kind = "gremlins"'), "unknown kind"),
        (('model = "KFR-35GW"', 'model = "XYZ"'), "unknown model"),
        (('["1h", "2h"]', '["2h", "1h"]'), "earliest after latest"),
        (('ramp_s = "1d"', 'ramp_s = "1 fortnight"'), "cannot read duration"),
        (("seed = 5", "seed = 5\ncolour = 1"), "unknown key"),
        (("magnitude = 0.2", "magnitude = 2.0"), "faults[0].magnitude"),
        (("00+08:00", "00"), "offset"),
        (
            ("units = 4", 'units = 4\n[[batches]]\nbatch = "B1"\nmodel = "KFR-35GW"\nunits = 1'),
            "unique",
        ),
        (('name = "mine"\n', ""), "missing"),
        (("seed = 5", "seed = = 5"), "not valid TOML"),
        (("outdoor_mean_c = 33.0", "trend_c_per_day = 3.0"), "climate.trend_c_per_day"),
    ],
)
def test_bad_scenarios_are_refused_clearly(change: tuple[str, str], message: str) -> None:
    assert change[0] in GOOD
    with pytest.raises(ScenarioError, match=re.escape(message)):
        parse_scenario(GOOD.replace(change[0], change[1], 1), source="mine.toml")


def test_the_season_trend_moves_the_outdoor_mean_and_nothing_else() -> None:
    """``trend_c_per_day`` shifts the outdoor temperature by that much a day from the start; at
    0 (the default) the same seed gives the same weather as before the option existed."""
    flat = parse_scenario(GOOD.replace("outdoor_mean_c = 33.0", "weather_sigma_c = 0.0"))
    warm = parse_scenario(
        GOOD.replace("outdoor_mean_c = 33.0", "weather_sigma_c = 0.0\ntrend_c_per_day = 0.5")
    )
    assert flat.climate.trend_c_per_day == 0.0 and warm.climate.trend_c_per_day == 0.5
    a, b = Fleet(flat), Fleet(warm)
    col = FIELD_INDEX["ambient_c"]
    for t in (0.25 * DAY, DAY, 1.5 * DAY):
        ra, rb = a.step(flat.start_ts + t)[0], b.step(flat.start_ts + t)[0]
        # sensor noise (0.2 °C) and 0.1 °C resolution, averaged over the units
        assert np.mean(rb[:, col] - ra[:, col]) == pytest.approx(0.5 * t / DAY, abs=0.25)


def test_unknown_scenario_names_and_missing_files() -> None:
    with pytest.raises(ScenarioError, match="demo"):
        load_scenario("nope")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario("/nonexistent/x.toml")


@given(st.integers(0, 30), st.integers(0, 23), st.integers(0, 59))
def test_durations_read_like_people_write_them(d: int, h: int, m: int) -> None:
    assert duration_s(f"{d}d{h}h{m}m") == d * DAY + h * 3600 + m * 60
    assert duration_s(d * DAY) == d * DAY
