"""A fleet of simulated air conditioners built from a scenario, with labelled injected faults.

``Fleet`` owns the clock-free simulation state: the caller moves it to an event time with
:meth:`Fleet.step` and gets one row of readings per unit back, plus which units are online. It
keeps the ground truth of every injected fault (which unit, which kind, when, how strong, and the
fault name the cloud should report for it) so an evaluation can score the detectors against it.

How a fault kind acts on the physics (``p`` is the fault's progress, 0 → 1 linearly over
``ramp_s`` from its onset, back to 0 from its repair):

* ``refrigerant_leak``: capacity × (1 − magnitude·p).
* ``clogged_filter``: airflow × (1 − magnitude·p); capacity follows (``aircon.FOULING_EXPONENT``).
* ``fan_bearing_wear``: noise + magnitude·p dB and vibration + 0.008·magnitude·p g (fan running).
* ``loose_panel``: noise + magnitude·p dB while the fan runs (a rattle; vibration unchanged).
* ``compressor_overcurrent``: a compressor-on sample shows ``magnitude`` A (±5-10 %) with
  probability 0.15·p.
* ``stuck_sensor``: the named sensor repeats the last value it gave before the onset (the physics,
  and the thermostat, carry on: the controller has its own sensor).
* ``offline``: no readings (``online`` False, row NaN but ``ts``) for ``magnitude`` seconds; the
  unit keeps running, only its connection is gone.
* ``clock_jump``: the unit stamps its readings ``magnitude`` seconds ahead from its onset for
  ``ramp_s`` (0: its next reading alone), then right again; the physics is untouched.

Healthy behaviour a scenario may add (none of it is a fault or in the ground truth): units
spread over climate regions, each with its own outdoor temperature and weather
(``Scenario.regions``); users changing their setpoints (``Scenario.users``: the thermostat follows
and ``setpoint_c`` reports the new value); users switching their heat pumps to heating in cool
weather (``Users.heating_below_c``, :meth:`Fleet._choose_modes`); users switching their units on
and off by the clock (``Users.use_hours``, :meth:`Fleet._switch`); the compressors' starting
current (``Scenario.inrush``, see :mod:`simulators.aircon`).

Randomness comes only from the ``numpy.random.Generator`` (by default seeded from the scenario)
and, for the optional behaviour, a second generator seeded from the scenario's seed, so a
scenario without it draws exactly what it drew before it existed; the same scenario, seed and
sequence of ``step`` times give identical readings.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from simulators import aircon
from simulators.aircon import AIRCON_FIELDS, FIELD_INDEX
from simulators.faults import FAULT_KINDS
from simulators.scenario import Climate, Scenario, Users

__all__ = ["AIRCON_FIELDS", "EXPECTED_FAULT", "Fleet", "InjectedFault", "UnitInfo"]

# The CONTRACTS.md §3 fault each simulator fault kind should be reported as (the main one; see
# ``FAULT_KINDS[kind].expected_faults`` for all acceptable ones, e.g. bearing wear → vibration too).
EXPECTED_FAULT: dict[str, str] = {k: v.expected_faults[0] for k, v in FAULT_KINDS.items()}

# heat pumps' users (Users.heating_below_c): thresholds spread ±2 °C, back to cooling 2 °C above,
# judged on the outdoor temperature's exponential mean over a day
MODE_SPREAD_C = 2.0
MODE_HYSTERESIS_C = 2.0
FELT_TAU_S = 86400.0
USE_SPREAD_H = 1.0  # Users.use_hours: each user's on and off hour within ±1 h of the span's
OVERCURRENT_SPIKE_P = 0.15  # share of compressor-on samples with a spike at full progress
WEAR_VIBRATION_G_PER_DB = 0.008
# Sensors that can go missing (sensor_dropout) or stick; state fields never do.
SENSOR_COLUMNS = np.array(
    [FIELD_INDEX[f] for f in ("return_c", "supply_c", "ambient_c", "current_a", "noise_db",
                              "vibration_g")]
)  # fmt: skip
DEFAULT_STUCK_SENSORS = ("return_c", "supply_c")


@dataclass(frozen=True)
class UnitInfo:
    """A unit's identity, as its birth message announces it."""

    device: str
    model: str
    batch: str
    serial: str
    firmware: str
    product: str = "air_conditioner"


@dataclass(frozen=True)
class InjectedFault:
    """One fault injected into one unit: the label an evaluation scores detectors against."""

    device: str
    batch: str
    model: str
    kind: str  # simulator fault kind (scenario.FAULT_KINDS)
    expected_fault: str  # CONTRACTS.md §3 name the cloud should report
    onset_ts: float
    repair_ts: float | None
    magnitude: float
    detail: str = ""  # e.g. which sensor is stuck


class _Climates:
    """The climate of each region as arrays (one element per region)."""

    def __init__(self, climates: list[Climate]) -> None:
        for name in Climate.__dataclass_fields__:
            setattr(self, name, np.array([getattr(c, name) for c in climates], dtype=float))

    outdoor_mean_c: np.ndarray
    daily_amplitude_c: np.ndarray
    peak_hour: np.ndarray
    weather_sigma_c: np.ndarray
    weather_tau_s: np.ndarray
    trend_c_per_day: np.ndarray


@dataclass
class _KindSchedule:
    """All units with one fault kind: unit index, timing and strength (arrays, same length)."""

    idx: np.ndarray
    onset: np.ndarray
    ramp: np.ndarray
    magnitude: np.ndarray
    repair: np.ndarray  # +inf = never
    truth: np.ndarray  # index into Fleet.ground_truth

    def progress(self, t: float) -> np.ndarray:
        ramp = np.maximum(self.ramp, 1e-9)  # ramp 0 = a step at the onset
        p = np.clip((t - self.onset) / ramp, 0.0, 1.0)
        return np.where((t >= self.onset) & (t < self.repair), p, 0.0)

    def active(self, t: float) -> np.ndarray:
        return (t >= self.onset) & (t < self.repair)


class Fleet:
    """Units built from ``scenario``; :meth:`step` moves them all to an event time."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator | None = None) -> None:
        self.scenario = scenario
        self._rng = rng if rng is not None else np.random.default_rng(scenario.seed)
        self.units: list[UnitInfo] = []
        models: list[str] = []
        batch_index: list[int] = []
        for b, spec in enumerate(scenario.batches):
            for _ in range(spec.units):
                k = len(self.units) + 1
                self.units.append(
                    UnitInfo(
                        f"{scenario.device_prefix}-{k:06d}",
                        spec.model,
                        spec.batch,
                        f"SN-{k:06d}",
                        spec.firmware,
                    )
                )
                models.append(spec.model)
                batch_index.append(b)
        self._index = {u.device: i for i, u in enumerate(self.units)}
        # the optional behaviour's own stream (see the module docstring)
        self._behaviour = np.random.default_rng([scenario.seed, 15])
        self._params = aircon.draw_units(
            models,
            np.array(batch_index, dtype=int),
            self._rng,
            inrush_rng=self._behaviour if scenario.inrush else None,
        )

        self._climate = _Climates(scenario.regions and [r.climate for r in scenario.regions]
                                  or [scenario.climate])  # fmt: skip
        self.region = np.zeros(len(self.units), dtype=int)  # index into scenario.regions
        if scenario.regions:
            order = self._behaviour.permutation(len(self.units))
            bounds = np.cumsum([r.share for r in scenario.regions]) * len(self.units)
            self.region[order] = np.searchsorted(np.round(bounds), np.arange(len(order)), "right")
        self._weather = self._rng.normal(0.0, self._climate.weather_sigma_c)
        self._ts = scenario.start_ts
        self._state = aircon.initial_state(self._params, self._outdoor(self._ts), self._rng)
        self._heat_below: np.ndarray | None = None
        if scenario.users.heating_below_c is not None:
            self._start_heating(scenario.users)
        self._use: np.ndarray | None = None  # per unit: its (on, off) hours (Users.use_hours)
        if scenario.users.use_hours:
            self._start_use(scenario.users)

        self.ground_truth: list[InjectedFault] = []
        self._faults: dict[str, _KindSchedule] = {}
        self._stuck_col = np.zeros(0, dtype=int)
        self._build_faults(np.array(batch_index, dtype=int))
        self._held = np.full(len(self._stuck_col), np.nan)
        self._last_rows: np.ndarray | None = None

    # --- public ------------------------------------------------------------------------------

    @property
    def ts(self) -> float:
        """Event time the fleet has been stepped to."""
        return self._ts

    @property
    def fields(self) -> tuple[str, ...]:
        return AIRCON_FIELDS

    def step(self, ts: float) -> tuple[np.ndarray, np.ndarray]:
        """Advance every unit to event time ``ts`` and read its sensors.

        Returns ``rows`` (float64, shape (n_units, len(AIRCON_FIELDS)), NaN = no value) and
        ``online`` (bool, shape (n_units,)); an offline unit's row is NaN except ``ts``.
        """
        if ts < self._ts:
            raise ValueError(f"time runs forward: asked for {ts} after {self._ts}")
        dt = ts - self._ts
        # Chunks no longer than the physics' substep, so the weather, schedules and fault
        # progress move with the rooms even when the caller asks for a big jump.
        n_chunks = max(1, int(np.ceil(dt / aircon.MAX_SUBSTEP_S)))
        h = dt / n_chunks
        for _ in range(n_chunks if dt > 0 else 0):
            t = self._ts + h
            self._advance_weather(h)
            if self.scenario.users.setpoint_changes_per_day > 0:
                self._change_setpoints(h)
            if self._heat_below is not None:
                self._choose_modes(t, h)
            if self._use is not None:
                self._state.powered = self._switch(t)
            self._state = aircon.advance(
                self._params, self._state, self._health(t), self._outdoor(t), self._hour(t), h
            )
            self._ts = t
        self._ts = ts  # exact, whatever the float rounding of the chunks
        return self._read(ts)

    def repair(self, devices: Iterable[str], ts: float) -> None:
        """The faults of ``devices`` that began by ``ts`` are repaired from ``ts`` on.

        Faults scheduled to begin later are defects still to come and stay.
        """
        units = []
        for device in devices:
            if device not in self._index:
                raise KeyError(f"no unit {device!r} in this fleet")
            units.append(self._index[device])
        chosen = np.array(units, dtype=int)
        for sched in self._faults.values():
            hit = np.isin(sched.idx, chosen) & (sched.onset <= ts) & (sched.repair > ts)
            sched.repair[hit] = ts
            for j in sched.truth[hit]:
                self.ground_truth[j] = replace(self.ground_truth[j], repair_ts=float(ts))

    def write_ground_truth(self, path: str | Path) -> None:
        """The injected faults as CSV (``.csv``) or JSON (anything else)."""
        path = Path(path)
        records = [asdict(f) for f in self.ground_truth]
        if path.suffix.lower() == ".csv":
            with path.open("w", newline="", encoding="utf-8") as out:
                writer = csv.DictWriter(out, fieldnames=list(InjectedFault.__dataclass_fields__))
                writer.writeheader()
                for record in records:
                    writer.writerow({k: "" if v is None else v for k, v in record.items()})
        else:
            doc = {"scenario": self.scenario.name, "seed": self.scenario.seed, "faults": records}
            path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    # --- climate -----------------------------------------------------------------------------

    def _hour(self, t: float) -> float:
        return ((t + self.scenario.climate.utc_offset_h * 3600.0) % 86400.0) / 3600.0

    def _outdoor(self, t: float) -> np.ndarray:
        c = self._climate
        daily = c.daily_amplitude_c * np.cos(2.0 * np.pi * (self._hour(t) - c.peak_hour) / 24.0)
        season = c.trend_c_per_day * (t - self.scenario.start_ts) / 86400.0
        region = c.outdoor_mean_c + season + self._weather + daily
        return region[self.region] + self._params.outdoor_offset_c

    def _advance_weather(self, dt: float) -> None:
        # Exact Ornstein-Uhlenbeck transition per region, so the drift's statistics do not
        # depend on dt.
        c = self._climate
        decay = np.exp(-dt / c.weather_tau_s)
        sd = c.weather_sigma_c * np.sqrt(1.0 - decay * decay)
        self._weather = self._weather * decay + sd * self._rng.normal(size=len(sd))

    # --- users -------------------------------------------------------------------------------

    def _change_setpoints(self, dt: float) -> None:
        """Some users change their setpoint within ``dt`` (a Poisson process per unit)."""
        users = self.scenario.users
        rng = self._behaviour
        n = len(self.units)
        who = np.flatnonzero(rng.random(n) < users.setpoint_changes_per_day * dt / 86400.0)
        if not len(who):
            return
        steps = rng.integers(1, int(users.setpoint_step_c * 2) + 1, len(who)) * 0.5
        steps *= rng.choice((-1.0, 1.0), len(who))
        lo, hi = users.setpoint_range_c
        setpoint = self._params.setpoint_c
        setpoint[who] = np.clip(setpoint[who] + steps, lo, hi)

    def _start_heating(self, users: Users) -> None:
        """Heating setpoints and thresholds, from the behaviour stream; the modes at the start."""
        n, rng = len(self.units), self._behaviour
        below = users.heating_below_c
        assert below is not None
        setpoint = rng.uniform(*users.heat_setpoint_range_c, n)
        self._params.heat_setpoint_c = np.round(setpoint * 2.0) / 2.0  # 0.5 K steps
        self._heat_below = below + rng.uniform(-MODE_SPREAD_C, MODE_SPREAD_C, n)
        self._felt = self._outdoor(self._ts)  # the outdoor temperature felt over the last day
        self._state.heating = self._felt < self._heat_below
        self._state.air_c = np.where(
            self._state.heating, self._params.heat_setpoint_c - 0.5, self._state.air_c
        )

    def _choose_modes(self, t: float, dt: float) -> None:
        """Users switch to heating when the day felt cool, back to cooling when it felt warm
        (``MODE_HYSTERESIS_C`` apart). A unit that switches stops its compressor, which then
        waits its minimum off time, and its coil starts from room temperature."""
        assert self._heat_below is not None and self._state.heating is not None
        self._felt = self._felt + (self._outdoor(t) - self._felt) * -np.expm1(-dt / FELT_TAU_S)
        heating = self._state.heating
        now = np.where(heating, self._felt < self._heat_below + MODE_HYSTERESIS_C,
                       self._felt < self._heat_below)  # fmt: skip
        switched = now != heating
        if switched.any():
            s = self._state
            s.compressor_on = s.compressor_on & ~switched
            s.state_age_s = np.where(switched, 0.0, s.state_age_s)
            s.coil = np.where(switched, 0.0, s.coil)
        self._state.heating = now

    def _start_use(self, users: Users) -> None:
        """Each user's hours (a stream of their own: the fleet's other draws stay as they were),
        and whether each unit is on at the start."""
        rng = np.random.default_rng([self.scenario.seed, 16])
        n = len(self.units)
        spans = np.array(users.use_hours, dtype=float)[rng.integers(0, len(users.use_hours), n)]
        self._use = (spans + rng.uniform(-USE_SPREAD_H, USE_SPREAD_H, (n, 2))) % 24.0
        self._state.powered = self._switch(self._ts)

    def _switch(self, t: float) -> np.ndarray:
        """Which units their users have on at event time ``t`` (an off hour before the on hour:
        the span runs past midnight)."""
        assert self._use is not None
        hour, on, off = self._hour(t), self._use[:, 0], self._use[:, 1]
        return np.where(on < off, (hour >= on) & (hour < off), (hour >= on) | (hour < off))

    # --- faults ------------------------------------------------------------------------------

    def _build_faults(self, batch_index: np.ndarray) -> None:
        start = self.scenario.start_ts
        parts: dict[str, list[tuple]] = {}
        stuck_cols: list[int] = []
        for b, spec in enumerate(self.scenario.batches):
            members = np.flatnonzero(batch_index == b)
            taken: dict[str, set[int]] = {}
            for fault in spec.faults:
                # A unit has a fault kind at most once: a second spec of the same kind picks
                # among the batch's units that do not have it yet.
                free = np.array([u for u in members if u not in taken.get(fault.kind, set())])
                count = min(int(round(fault.share * spec.units)), len(free))
                if count == 0:
                    continue
                idx = np.sort(self._rng.choice(free, size=count, replace=False))
                taken.setdefault(fault.kind, set()).update(int(u) for u in idx)
                onset = start + self._rng.uniform(*fault.onset_after_s, size=count)
                if fault.onset_after_s[0] == fault.onset_after_s[1]:
                    onset = np.full(count, start + fault.onset_after_s[0])
                repair = np.full(count, np.inf)
                if fault.repair_after_s is not None:
                    repair[:] = start + fault.repair_after_s
                if fault.kind == "offline":
                    repair = np.minimum(repair, onset + fault.magnitude)
                if fault.kind == "clock_jump":  # wrong for ramp_s, or for the next reading
                    wrong = max(fault.ramp_s, self.scenario.sample_period_s)
                    repair = np.minimum(repair, onset + wrong)
                for k, u in enumerate(idx):
                    detail = ""
                    if fault.kind == "stuck_sensor":
                        detail = fault.sensor or str(self._rng.choice(DEFAULT_STUCK_SENSORS))
                        stuck_cols.append(FIELD_INDEX[detail])
                    self.ground_truth.append(
                        InjectedFault(
                            device=self.units[u].device,
                            batch=spec.batch,
                            model=spec.model,
                            kind=fault.kind,
                            expected_fault=EXPECTED_FAULT[fault.kind],
                            onset_ts=float(onset[k]),
                            repair_ts=None if np.isinf(repair[k]) else float(repair[k]),
                            magnitude=fault.magnitude,
                            detail=detail,
                        )
                    )
                    parts.setdefault(fault.kind, []).append(
                        (
                            u,
                            onset[k],
                            fault.ramp_s,
                            fault.magnitude,
                            repair[k],
                            len(self.ground_truth) - 1,
                        )
                    )
        for kind, rows in parts.items():
            cols = list(zip(*rows, strict=True))
            self._faults[kind] = _KindSchedule(
                idx=np.array(cols[0], dtype=int),
                onset=np.array(cols[1], dtype=float),
                ramp=np.array(cols[2], dtype=float),
                magnitude=np.array(cols[3], dtype=float),
                repair=np.array(cols[4], dtype=float),
                truth=np.array(cols[5], dtype=int),
            )
        self._stuck_col = np.array(stuck_cols, dtype=int)

    def _health(self, t: float) -> aircon.Health:
        health = aircon.Health.healthy(len(self.units))
        f = self._faults
        if "refrigerant_leak" in f:
            s = f["refrigerant_leak"]
            health.capacity[s.idx] *= 1.0 - s.magnitude * s.progress(t)
        if "clogged_filter" in f:
            s = f["clogged_filter"]
            health.airflow[s.idx] *= 1.0 - s.magnitude * s.progress(t)
        if "fan_bearing_wear" in f:
            s = f["fan_bearing_wear"]
            rise = s.magnitude * s.progress(t)
            health.noise_add_db[s.idx] += rise
            health.vibration_add_g[s.idx] += WEAR_VIBRATION_G_PER_DB * rise
        if "loose_panel" in f:
            s = f["loose_panel"]
            np.add.at(health.noise_add_db, s.idx, s.magnitude * s.progress(t))
        if "compressor_overcurrent" in f:
            s = f["compressor_overcurrent"]
            health.overcurrent_p[s.idx] = OVERCURRENT_SPIKE_P * s.progress(t)
            health.overcurrent_a[s.idx] = s.magnitude
        return health

    # --- sensors -----------------------------------------------------------------------------

    def _read(self, ts: float) -> tuple[np.ndarray, np.ndarray]:
        health = self._health(ts)
        outdoor = self._outdoor(ts)
        rows = aircon.observe(self._params, self._state, health, outdoor, ts, self._rng)
        n = len(self.units)

        dropout = self.scenario.sensor_dropout
        if dropout > 0:
            lost = self._rng.random((n, len(SENSOR_COLUMNS))) < dropout
            block = rows[:, SENSOR_COLUMNS]
            block[lost] = np.nan
            rows[:, SENSOR_COLUMNS] = block

        stuck = self._faults.get("stuck_sensor")
        if stuck is not None:
            active = stuck.active(ts)
            cols = self._stuck_col
            self._held[~active] = np.nan
            fresh = active & np.isnan(self._held)
            if fresh.any():
                # Stick at the last value the sensor gave; the current one if it has none.
                current = rows[stuck.idx, cols]
                last = current if self._last_rows is None else self._last_rows[stuck.idx, cols]
                self._held[fresh] = np.where(np.isnan(last), current, last)[fresh]
            held = active & ~np.isnan(self._held)
            rows[stuck.idx[held], cols[held]] = self._held[held]
        self._last_rows = rows.copy()

        jump = self._faults.get("clock_jump")
        if jump is not None:
            wrong = jump.active(ts)
            rows[jump.idx[wrong], FIELD_INDEX["ts"]] += jump.magnitude[wrong]

        online = np.ones(n, dtype=bool)
        offline = self._faults.get("offline")
        if offline is not None:
            online[offline.idx[offline.active(ts)]] = False
            rows[~online, 1:] = np.nan
        return rows, online
