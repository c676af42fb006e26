"""One contract suite over every per-device detector (and the fleet-level offline watch).

Every detector in ``cloud/anomaly`` promises the same things (STYLE.md, river's check suite):

- silent on healthy simulated units (several seeds, eight simulated days);
- fires on its own fault, from the simulator's fault kinds, within the delay bound stated in
  :data:`CASES` (after onset, never before it), with numeric evidence and a score in 0..1;
- never raises on NaN, inf, gaps, empty blocks, missing columns or out-of-order timestamps,
  and still works afterwards;
- a pickle round trip in mid-stream gives identical later findings (workers checkpoint state);
- constructor arguments are stored under the same names.

Delay bounds (from the onset of the injected fault to the finding, in event time):

| detector | fault (simulator kind) | bound |
| --- | --- | --- |
| CoolingDecline | refrigerant_leak, 25 % over 1 h | 24 h |
| NoiseRise | loose_panel, 5 dB step | 12 h |
| VibrationRise | fan_bearing_wear, 8 dB / 0.064 g over 12 h | 24 h |
| SensorStuck | stuck_sensor, return_c | 6 h |
| UnivariateAnomaly | a field no domain detector knows (a daily cycle 50-60) jumps by 50 | 1 h |
| OfflineWatch | offline, 8 h outage (blocks of 1 h) | 6 h |
"""

from __future__ import annotations

import functools
import inspect
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from cloud.anomaly.bank import COVERED_FIELDS, DetectorBank
from cloud.anomaly.base import Block, Detector, Finding
from cloud.anomaly.cooling import CoolingDecline
from cloud.anomaly.level import NoiseRise, VibrationRise
from cloud.anomaly.offline import OfflineWatch
from cloud.anomaly.shift import BaselineShift
from cloud.anomaly.stuck import SensorStuck
from cloud.anomaly.trend import RecentWindows
from cloud.anomaly.univariate import UnivariateAnomaly
from simulators.fleet import Fleet, InjectedFault
from simulators.scenario import parse_scenario
from tests import scenarios
from tests.scenarios import batch, fault, scenario

pytestmark = pytest.mark.slow  # days of simulated units per case

H = 3600.0
DAY = 86400.0
BLOCK_ROWS = 60
START = "2024-07-01T00:00:00+08:00"
ONSET_S = 2 * DAY  # after every detector's learning period
EXTRA_FIELD = "humidity_pct"  # a field no air-conditioner detector knows


def _scenario(seed: int, days: int, units: int, fault: str = "", prefix: str = "ac") -> str:
    model = ("KFR-35GW", "KFR-26GW", "KFR-50GW")[seed % 3]
    return scenario(
        "contract",
        seed,
        f"{days}d",
        batch("B1", units, fault, model=model),
        device_prefix=prefix,
        sensor_dropout=0.0005,
    )


@dataclass(frozen=True)
class Stream:
    """Per-device blocks of a simulated fleet, as the edge would send them."""

    start_ts: float
    blocks: dict[str, list[Block]]
    truth: tuple[InjectedFault, ...]


@functools.cache
def simulate(text: str) -> Stream:
    scenario = parse_scenario(text)
    fleet = Fleet(scenario)
    n = int(scenario.duration_s / scenario.sample_period_s)
    rows = np.stack([fleet.step(scenario.start_ts + (i + 1) * 60.0)[0] for i in range(n)])
    # the extra field: a slow daily cycle with sensor noise, like a humidity sensor
    rng = np.random.default_rng(scenario.seed)
    ts = rows[:, 0, 0]
    extra = 55.0 + 5.0 * np.sin(2 * np.pi * ts / DAY)[:, None] + rng.normal(0, 0.3, rows.shape[:2])
    blocks: dict[str, list[Block]] = {}
    for u, unit in enumerate(fleet.units):
        online = ~np.isnan(rows[:, u, 2]) | ~np.isnan(rows[:, u, 5])
        out = []
        for a in range(0, n, BLOCK_ROWS):
            sel = np.arange(a, min(a + BLOCK_ROWS, n))
            sel = sel[online[sel]]
            if len(sel) == 0:
                continue
            cols = {name: rows[sel, u, j] for j, name in enumerate(fleet.fields) if j}
            cols[EXTRA_FIELD] = np.round(extra[sel, u], 1)
            out.append(Block(unit.device, rows[sel, u, 0], cols))
        blocks[unit.device] = out
    return Stream(scenario.start_ts, blocks, tuple(fleet.ground_truth))


def _with_step(blocks: list[Block], at: float, step: float) -> list[Block]:
    """The extra field jumps by ``step`` from event time ``at`` on."""
    out = []
    for b in blocks:
        cols = dict(b.columns)
        cols[EXTRA_FIELD] = cols[EXTRA_FIELD] + np.where(b.ts >= at, step, 0.0)
        out.append(Block(b.device, b.ts, cols))
    return out


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[], Detector]
    fault: str  # the simulator's fault spec (TOML) that this detector must find
    bound_s: float

    def faulty(self) -> tuple[Stream, dict[str, list[Block]], list[float]]:
        """A fleet with the fault in every unit: (stream, blocks per device, onset per unit)."""
        if self.fault:
            s = simulate(_scenario(11, 4, 3, self.fault))
            return s, s.blocks, [t.onset_ts for t in s.truth]
        s = simulate(_scenario(11, 4, 3))
        at = s.start_ts + ONSET_S
        return s, {d: _with_step(b, at, 50.0) for d, b in s.blocks.items()}, [at] * 3


def _fault(kind: str, **kw: object) -> str:
    return fault(kind, 1.0, f"{ONSET_S / DAY:g}d", **kw)


CASES = [
    Case(
        "cooling_decline",
        CoolingDecline,
        _fault("refrigerant_leak", magnitude=0.25, ramp_s="1h"),
        24 * H,
    ),
    Case("noise_rise", NoiseRise, _fault("loose_panel", magnitude=5.0), 12 * H),
    Case(
        "vibration_rise",
        VibrationRise,
        _fault("fan_bearing_wear", magnitude=8.0, ramp_s="12h"),
        24 * H,
    ),
    Case("sensor_stuck", SensorStuck, _fault("stuck_sensor", sensor="return_c"), 6 * H),
    Case(
        "anomaly",
        functools.partial(UnivariateAnomaly, exclude=COVERED_FIELDS["air_conditioner"]),
        "",
        1 * H,
    ),
]
# units whose users switch them on and off by the clock: every day a room that warmed while the
# unit was off, and hours with the fan stopped (Users.use_hours)
CLOCKED = "[users]\nuse_hours = [[18.0, 24.0], [21.0, 7.0], [8.0, 18.0]]\n"
HEALTHY = [_scenario(seed, 8, 4) for seed in (1, 2, 3)] + [_scenario(4, 8, 6) + CLOCKED]


def _run(det: Detector, blocks: list[Block]) -> list[Finding]:
    out: list[Finding] = []
    for b in blocks:
        found = det.update(b)
        assert isinstance(found, list)
        out.extend(found)
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("scenario", HEALTHY, ids=["seed1", "seed2", "seed3", "clocked"])
def test_silent_on_healthy_units(case: Case, scenario: str) -> None:
    for device, blocks in simulate(scenario).blocks.items():
        found = [f for f in _run(case.make(), blocks) if f.active]
        assert found == [], f"{case.id} fired on healthy {device}: {found[:2]}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_fires_on_its_fault_within_the_bound(case: Case) -> None:
    _, blocks, onsets = case.faulty()
    for (device, stream), onset in zip(blocks.items(), onsets, strict=True):
        found = [f for f in _run(case.make(), stream) if f.active]
        assert found, f"{case.id} missed the fault of {device}"
        first = found[0]
        assert first.fault == case.id and first.device == device
        assert onset <= first.ts <= onset + case.bound_s, (device, (first.ts - onset) / H)
        assert math.isfinite(first.onset_ts) and first.onset_ts <= first.ts
        assert 0.0 < first.score <= 1.0
        assert first.evidence and all(isinstance(v, float) for v in first.evidence.values())


def test_a_unit_switched_off_is_not_heard_or_felt() -> None:
    """While its user has it off (fan stopped) the unit makes no operating noise or vibration:
    the microphone hears the room, the accelerometer whatever shakes the wall. Those readings are
    neither learned nor judged: a room that grows loud (or a wall that shakes) while the unit is
    off, from day 3 on, is no rise of the unit's. Before S16 they were learned and judged with
    the running ones."""
    stream = simulate(_scenario(4, 5, 3) + CLOCKED)
    for device, blocks in stream.blocks.items():
        loud = []
        for b in blocks:
            off = (b.columns["fan_speed"] == 0) & (b.ts >= stream.start_ts + 3 * DAY)
            cols = dict(b.columns)
            cols["noise_db"] = np.where(off, cols["noise_db"] + 15.0, cols["noise_db"])
            cols["vibration_g"] = np.where(off, cols["vibration_g"] + 0.05, cols["vibration_g"])
            loud.append(Block(b.device, b.ts, cols))
        assert any((b.columns["fan_speed"] == 0).any() for b in loud), device  # it was off
        for make in (NoiseRise, VibrationRise):
            assert [f for f in _run(make(), loud) if f.active] == [], (make.__name__, device)
        bank = DetectorBank()  # the columns the worker runs
        found = [f for b in loud for f in bank.update("air_conditioner", b) if f.active]
        assert [f for f in found if f.fault in ("noise_rise", "vibration_rise")] == [], device


def test_a_switched_off_unit_is_not_a_stuck_sensor() -> None:
    """While its user has it off the unit drives none of its own signals: its vibration sensor
    may read 0 and its current meter the board's draw for hours while the room warms. That is
    no frozen sensor (``stuck.OFF_QUIET``), through the reference object and the bank."""
    stream = simulate(_scenario(4, 5, 3) + CLOCKED)
    for device, blocks in stream.blocks.items():
        floor = []
        for b in blocks:
            off = b.columns["fan_speed"] == 0
            cols = dict(b.columns)
            cols["vibration_g"] = np.where(off, 0.0, cols["vibration_g"])
            cols["current_a"] = np.where(off, 0.06, cols["current_a"])
            floor.append(Block(b.device, b.ts, cols))
        assert [f for f in _run(SensorStuck(), floor) if f.active] == [], device
        bank = DetectorBank()
        found = [f for b in floor for f in bank.update("air_conditioner", b) if f.active]
        assert [f for f in found if f.fault == "sensor_stuck"] == [], device


def _bad_blocks(device: str, t: float) -> list[Block]:
    ts = t + 60.0 * np.arange(1, 31)
    n = len(ts)
    nan = np.full(n, np.nan)
    full = {
        "setpoint_c": np.full(n, 24.0),
        "return_c": np.linspace(25, 24, n),
        "supply_c": np.linspace(15, 16, n),
        "ambient_c": np.full(n, 31.0),
        "compressor_on": np.ones(n),
        "fan_speed": np.full(n, 2.0),
        "current_a": np.full(n, 4.5),
        "noise_db": np.full(n, 40.0),
        "vibration_g": np.full(n, 0.02),
        EXTRA_FIELD: np.full(n, 55.0),
    }
    later = ts + 30 * DAY  # a gap of a month
    return [
        Block(device, ts[:0], {k: v[:0] for k, v in full.items()}),  # empty
        Block(device, ts, {k: nan for k in full}),  # every value missing
        Block(device, ts, {k: np.full(n, np.inf) for k in full}),
        Block(device, ts, {}),  # no columns at all
        Block(device, ts, {"return_c": full["return_c"]}),  # most columns missing
        *(Block(device, ts, {k: v for k, v in full.items() if k != gone}) for gone in full),
        Block(device, ts[::-1], full),  # out of order
        Block(device, np.full(n, ts[0]), full),  # all at one instant
        Block(device, later, full),  # after a long gap
        Block(device, later - DAY, full),  # back in time
        Block(
            device,
            later + 3600,
            {k: np.where(np.arange(n) % 2, v, np.nan) for k, v in full.items()},
        ),
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_never_raises_on_bad_input(case: Case) -> None:
    _, blocks, _ = case.faulty()
    device, stream = next(iter(blocks.items()))
    det = case.make()
    _run(det, [b for b in stream if b.ts[-1] < stream[0].ts[0] + 1.8 * DAY])  # learned by now
    for b in _bad_blocks(device, stream[0].ts[0] + 1.8 * DAY):
        for f in det.update(b):
            assert isinstance(f, Finding) and 0.0 <= f.score <= 1.0
    fresh = case.make()  # also before learning anything
    for b in _bad_blocks(device, stream[0].ts[0]):
        fresh.update(b)
    pickle.loads(pickle.dumps(det))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_pickle_round_trip_mid_stream_gives_identical_findings(case: Case) -> None:
    _, blocks, onsets = case.faulty()
    stream = next(iter(blocks.values()))
    cut = next(i for i, b in enumerate(stream) if b.ts[0] >= onsets[0] - 6 * H)
    det = case.make()
    _run(det, stream[:cut])
    clone = pickle.loads(pickle.dumps(det))
    assert type(clone) is type(det)
    later, cloned = _run(det, stream[cut:]), _run(clone, stream[cut:])
    assert later, "nothing to compare: the fault should have been found after the cut"
    assert repr(later) == repr(cloned)


def _stored_arguments(make: Callable[[], object]) -> None:
    obj = make()
    cls = type(obj)
    params = [
        p
        for c in cls.__mro__
        if "__init__" in c.__dict__ and c is not object
        for p in inspect.signature(c.__init__).parameters.values()
        if p.name != "self" and p.kind is not p.VAR_KEYWORD
    ]
    assert params, f"{cls.__name__} takes no configuration?"
    for p in params:
        assert hasattr(obj, p.name), f"{cls.__name__}.{p.name} is not stored under its name"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_constructor_arguments_are_stored_under_their_names(case: Case) -> None:
    _stored_arguments(case.make)
    det = case.make()
    assert isinstance(det.fault, str) and det.fault == case.id


def test_baseline_detectors_pass_configuration_through() -> None:
    d = CoolingDecline(min_drop=0.12, learn_s=DAY, window_s=2 * H)
    assert (d.min_drop, d.min_shift_fraction, d.learn_s, d.window_s) == (0.12, 0.12, DAY, 2 * H)
    assert isinstance(d, BaselineShift) and d.learning


# --- the fleet-level offline watch ------------------------------------------------------------

OFFLINE = _fault("offline", magnitude="8h")


def _watch(streams: dict[str, list[Block]], watch: OfflineWatch | None = None) -> list[Finding]:
    """Blocks of all devices in event-time order through the watch, checked after each, as a
    live stream delivers them (each received at its last reading's time)."""
    watch = OfflineWatch() if watch is None else watch
    merged = sorted(
        ((b.ts[-1], d, b) for d, bs in streams.items() for b in bs), key=lambda x: x[:2]
    )
    out: list[Finding] = []
    for _, device, b in merged:
        now = float(b.ts[-1])
        out.extend(watch.seen(device, now, float(b.ts[-1] - b.ts[0]), arrived=now))
        out.extend(watch.check(now=now))
    return out


@pytest.mark.parametrize("scenario", HEALTHY, ids=["seed1", "seed2", "seed3", "clocked"])
def test_offline_watch_silent_on_healthy_fleet(scenario: str) -> None:
    assert [f for f in _watch(simulate(scenario).blocks) if f.active] == []


def test_offline_watch_fires_within_bound_and_clears() -> None:
    healthy = simulate(_scenario(11, 4, 3)).blocks
    offline = simulate(_scenario(12, 4, 2, OFFLINE, prefix="off"))
    found = _watch({**healthy, **offline.blocks})
    for t in offline.truth:
        mine = [f for f in found if f.device == t.device]
        active = [f for f in mine if f.active]
        assert active and t.onset_ts <= active[0].ts <= t.onset_ts + 6 * H
        assert active[0].onset_ts <= t.onset_ts  # the last reading before the silence
        assert any(not f.active and f.ts >= t.repair_ts for f in mine)  # spoke again
    assert not [f for f in found if f.device in healthy]


def test_offline_watch_never_raises_and_pickles() -> None:
    w = OfflineWatch(min_silence_s=100.0)
    for ts in (0.0, math.nan, math.inf, -math.inf, 50.0, 10.0):
        w.seen("a", ts)
        w.check()
    w.seen("b", 60.0)
    clone = pickle.loads(pickle.dumps(w))
    assert repr(w.seen("b", 500.0) + w.check()) == repr(clone.seen("b", 500.0) + clone.check())
    _stored_arguments(OfflineWatch)


def test_restore_refuses_state_in_another_format() -> None:
    """A checkpoint the detectors cannot read is an error naming the device, never a silent
    mis-restore (the worker then discards it and the device relearns)."""
    bank = DetectorBank()
    for stale in (pickle.dumps(("qloop-detector-state-0", {})), pickle.dumps({"x": 1})):
        with pytest.raises(ValueError, match="ac-1"):
            bank.restore("ac-1", stale)
    assert "ac-1" not in bank


def test_a_stuck_supply_sensor_is_not_taken_for_a_cooling_decline() -> None:
    """Once sensor_stuck stands on a field, the other detectors see that field as missing: a
    frozen supply-air sensor must not make the unit's ΔT look like lost capacity."""
    from evaluation.fleet import run_fleet
    from simulators.scenario import parse_scenario

    stuck = fault("stuck_sensor", 1.0, ["2d", "3d"], sensor="supply_c")
    scenario = parse_scenario(scenarios.scenario("stuck", 5, "6d", batch("B1", 6, stuck)))
    run = run_fleet(scenario)
    faults = {(f.device, f.fault) for f in run.findings if f.active}
    stuck = {d for d, fault in faults if fault == "sensor_stuck"}
    assert stuck == set(run.devices), "every unit's frozen sensor is found"
    assert not {d for d, fault in faults if fault == "cooling_decline"}


# --- the trend test in the baseline detectors' evidence ----------------------------------------
def test_recent_windows_trend_slope_and_significance() -> None:
    w = RecentWindows(size=8, window_s=H)
    assert all(math.isnan(x) for x in w.trend())  # nothing yet
    for i in range(3):
        w.add(i * H, 5.0 - 0.5 * i)
    assert all(math.isnan(x) for x in w.trend())  # fewer than 4 levels: no test
    w.add(5 * H, 2.5)  # two windows had too few readings: their places stay empty
    w.add(4 * H, 99.0)  # out of order: ignored
    slope, p = w.trend()
    assert slope == pytest.approx(-12.0) and p == pytest.approx(1 / 12)  # exact for n = 4
    w.add(6 * H, 2.0)
    slope, p = w.trend()
    assert slope == pytest.approx(-12.0) and p < 0.05
    again = pickle.loads(pickle.dumps(w))
    assert again.trend() == (slope, p)
    for i in range(8):
        w.add((20 + i) * H, 1.0)  # a flat level: no trend at all
    assert w.trend() == (0.0, 1.0)
    w.add(100 * H, 3.0)  # far later: the old windows are gone
    assert all(math.isnan(x) for x in w.trend())


@pytest.mark.parametrize(("ramp", "steady"), [("2d", True), ("1h", False)])
def test_a_cooling_finding_tells_a_steady_decline_from_a_step(ramp: str, steady: bool) -> None:
    """A leak that ramps over two days is found with a significant falling trend over the last
    48 h; a sudden loss is found within a few windows of its step, before any trend shows."""
    s = simulate(_scenario(11, 4, 3, _fault("refrigerant_leak", magnitude=0.3, ramp_s=ramp)))
    for device, blocks in s.blocks.items():
        first = next(f for f in _run(CoolingDecline(), blocks) if f.active)
        slope, p = first.evidence["trend_per_day"], first.evidence["trend_p"]
        if steady:
            assert slope < -0.1 and p < 0.05, (device, slope, p)  # K/day, and not by chance
        else:
            assert p > 0.05 and abs(slope) < 0.1, (device, slope, p)
