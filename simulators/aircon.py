"""Vectorised physics of N split air conditioners cooling N rooms.

Everything here works on numpy arrays with one element per unit, so a fleet of 10,000 units costs
about as much per step as a handful of units in a Python loop. The module is pure: no I/O, no
clock, and randomness only from a ``numpy.random.Generator`` the caller passes in.

The model, per unit (SI units unless a name says otherwise):

* **Room**: two thermal nodes. The *air* node (room air plus light furniture, ``C_air``) is what the
  return-air sensor sees and reacts within minutes; the *mass* node (walls, floor, ``C_mass``)
  carries the slow part. Heat flows from outdoors into both (``ua_air``: infiltration and windows,
  ``ua_mass``: the envelope), between them (``h_air_mass``), from internal gains (people,
  appliances, following a home or office schedule) into the air, and from the sun into the mass.
* **Thermostat** on return air (the room air temperature) with a per-unit setpoint and hysteresis,
  and a minimum compressor on time and off time (compressor protection), as a fixed-speed unit does.
* **Auto fan**: speed 1..3, higher when the room is far above the setpoint (with hysteresis so the
  speed does not chatter). While the compressor rests the fan keeps running at speed 1 so the
  return sensor keeps sampling the room; ``fan_speed`` is 0 only for a unit that is switched off
  (``UnitState.powered``: users who run their units by the clock, ``Users.use_hours``).
* **Cooling capacity** of a fixed-speed split unit, rated at ISO 5151 T1 conditions (indoor 27 °C,
  outdoor 35 °C, high fan): it falls by ``CAP_PER_K_OUTDOOR`` per kelvin of outdoor temperature
  (condensing pressure rises), rises by ``CAP_PER_K_RETURN`` per kelvin of return air, and scales
  with airflow to the power ``CAP_AIRFLOW_EXPONENT``. Only the sensible part (``SENSIBLE_RATIO``,
  lower in a cooler room that is closer to its dew point) cools the air; the rest condenses
  moisture. The coil needs time to get cold after a compressor
  start and to warm up after a stop (``COIL_TAU_ON_S``, ``COIL_TAU_OFF_S``): the delivered capacity
  is the steady one times a coil factor in 0..1.
* **Supply air** = return − sensible capacity / (mass flow · cp), mass flow from the fan speed's
  airflow. With the compressor off the fan still moves air over a coil that warms within a couple
  of minutes, so supply approaches return (plus ``FAN_HEAT_K`` of fan motor heat).
* **Current** at 230 V: compressor electrical power = capacity / COP, where COP falls with outdoor
  temperature (``COP_PER_K_OUTDOOR``), plus the fan motor and the control board. Optionally
  (``draw_units(..., inrush_rng=...)``) the compressor's start: its locked-rotor current as the
  meter's RMS reports it (:mod:`simulators.inrush`).
* **Noise** (dB(A) at the indoor unit's microphone): energy sum of the fan (by speed), refrigerant
  flow while the compressor runs and the room background, plus a per-unit offset and fault terms.
  **Vibration** (g RMS at the indoor unit) from the fan by speed and the compressor through the
  pipes, times a per-unit factor, plus fault terms.
* **Sensors** add Gaussian noise and a per-unit calibration bias and report at a fixed resolution.
  ``ambient_c`` is the OUTDOOR air temperature (the outdoor unit's sensor), not the room's.

**Heating.** The models are heat pumps: a unit whose ``UnitState.heating`` is set runs the circuit
backwards, warming the room towards ``UnitParams.heat_setpoint_c`` with supply air above the
return air (:mod:`simulators.heatpump`). With ``heating`` None (the default) every unit cools.

Faults enter through :class:`Health` (see :mod:`simulators.fleet` for how a fault maps onto it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from contract.protocol import AIR_CONDITIONER_FIELDS
from simulators import heatpump, inverter
from simulators import inrush as starts
from simulators.models import MODELS

AIRCON_FIELDS: tuple[str, ...] = AIR_CONDITIONER_FIELDS
FIELD_INDEX: dict[str, int] = {name: i for i, name in enumerate(AIRCON_FIELDS)}

# --- physical constants and model coefficients ----------------------------------------------

AIR_DENSITY = 1.2  # kg/m³ at room conditions
AIR_CP = 1005.0  # J/(kg·K)
MAINS_V = 230.0
COMPRESSOR_PF = 0.92  # rotary compressor power factor
FAN_PF = 0.6  # small PSC fan motor
BOARD_A = 0.06  # control board and display, always drawn

RATED_OUTDOOR_C = 35.0  # ISO 5151 T1
RATED_RETURN_C = 27.0
CAP_PER_K_OUTDOOR = 0.008  # capacity −0.8 %/K hotter outdoors (typical of fixed-speed rotary units)
CAP_PER_K_RETURN = 0.030  # +3 %/K warmer return air (higher evaporating pressure)
CAP_AIRFLOW_EXPONENT = 0.4  # less air over the coil → a colder coil and a bit less capacity
COP_PER_K_OUTDOOR = 0.025  # COP −2.5 %/K outdoors, so power rises ~1.5 %/K
OUTDOOR_CLAMP_C = (15.0, 48.0)  # the correlations are only fitted inside this range
SENSIBLE_RATIO = 0.64  # sensible / total capacity at 24 °C return in a humid summer climate
# A cooler room is closer to its dew point, so more of the capacity goes into condensing water.
SENSIBLE_RATIO_PER_K = 0.010
SENSIBLE_RATIO_RANGE = (0.50, 0.75)
COIL_TAU_ON_S = 60.0  # coil pull-down after a compressor start
COIL_TAU_OFF_S = 90.0  # coil warm-up after a stop (residual cooling)
FAN_HEAT_K = 0.2  # fan motor heat added to supply air
BACKGROUND_DB = 25.0  # quiet room
COMPRESSOR_INDOOR_DB = 30.0  # refrigerant flow noise heard at the indoor unit
COMPRESSOR_VIBRATION_G = 0.006  # transmitted through the pipes
FAN_HYSTERESIS_K = 0.2
MAX_SUBSTEP_S = 60.0  # explicit Euler stays accurate and stable below this for these rooms
# Which leak-like health loss shows up in compressor power: an undercharged circuit pumps less
# refrigerant, so power falls, but less than capacity does (COP degrades).
LEAK_POWER_EXPONENT = 0.5
# Clogged filter plus dust on the coil: airflow falls and the fouled coil transfers less heat, so
# capacity falls faster than airflow and ΔT falls too (pure low airflow would raise ΔT).
FOULING_EXPONENT = 1.0
FILTER_POWER_EXPONENT = 0.3

# Sensor noise (1 σ) and reporting resolution (decimal places) per field.
SENSOR_SIGMA = {
    "return_c": 0.10,
    "supply_c": 0.15,
    "ambient_c": 0.20,
    "current_a": 0.03,
    "noise_db": 0.4,
    "vibration_g": 0.001,
}
DECIMALS = {
    "setpoint_c": 1,
    "return_c": 1,
    "supply_c": 1,
    "ambient_c": 1,
    "current_a": 2,
    "noise_db": 1,
    "vibration_g": 3,
}


@dataclass
class UnitParams:
    """Fixed properties of each unit and its room (arrays of shape (n,))."""

    rated_capacity_w: np.ndarray  # nameplate × manufacturing spread
    rated_cop: np.ndarray
    airflow_m3h: np.ndarray  # (n, 4): fan speed 0..3, speed 0 = no airflow
    fan_noise_db: np.ndarray  # (n, 4)
    fan_current_a: np.ndarray  # (n, 4)
    fan_vibration_g: np.ndarray  # (n, 4)
    noise_offset_db: np.ndarray
    vibration_factor: np.ndarray
    setpoint_c: np.ndarray
    hysteresis_k: np.ndarray
    min_on_s: np.ndarray
    min_off_s: np.ndarray
    c_air: np.ndarray  # J/K
    c_mass: np.ndarray
    ua_air: np.ndarray  # W/K
    ua_mass: np.ndarray
    h_air_mass: np.ndarray
    base_gain_w: np.ndarray
    occupancy_gain_w: np.ndarray
    office: np.ndarray  # bool: office hours schedule instead of a home's
    solar_gain_w: np.ndarray
    solar_peak_h: np.ndarray
    outdoor_offset_c: np.ndarray  # microclimate (sunny wall, shade) of the outdoor unit
    bias: np.ndarray  # (n, len(AIRCON_FIELDS)) sensor calibration offsets
    # compressor start: peak current above running (A) and its decay time (s); None = not modelled
    inrush_a: np.ndarray | None = None
    inrush_tau_s: np.ndarray | None = None
    # the setpoint while heating (heatpump.py); None = the units only cool
    heat_setpoint_c: np.ndarray | None = None
    # bool: an inverter compressor (inverter.py); None = all fixed-speed
    inverter: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.setpoint_c)


@dataclass
class UnitState:
    """What changes from step to step (arrays of shape (n,))."""

    air_c: np.ndarray
    mass_c: np.ndarray
    compressor_on: np.ndarray  # bool
    state_age_s: np.ndarray  # time since the compressor last switched
    coil: np.ndarray  # 0 = coil at room temperature, 1 = fully cold
    fan_speed: np.ndarray  # int 0..3
    heating: np.ndarray | None = None  # bool: in heating mode (heatpump.py); None = all cooling
    powered: np.ndarray | None = None  # bool: switched on by its user; None = always on
    load: np.ndarray | None = None  # compressor speed / rated (inverter.py); None = all fixed


@dataclass
class Health:
    """The unit's condition as multipliers and additions on the healthy physics (shape (n,))."""

    capacity: np.ndarray  # refrigerant charge: 1 = full capacity
    airflow: np.ndarray  # filter and coil: 1 = clean
    noise_add_db: np.ndarray
    vibration_add_g: np.ndarray
    overcurrent_p: np.ndarray  # probability that a compressor-on sample shows a current spike
    overcurrent_a: np.ndarray  # spike level in amps

    @classmethod
    def healthy(cls, n: int) -> Health:
        return cls(np.ones(n), np.ones(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n))


def draw_units(
    models: Sequence[str],
    batch_index: np.ndarray,
    rng: np.random.Generator,
    *,
    inrush_rng: np.random.Generator | None = None,
) -> UnitParams:
    """Draw units of the given models with manufacturing spread, and the rooms they cool.

    A batch shares part of its spread (same parts lot, same line settings): ``batch_index`` says
    which batch each unit comes from. With ``inrush_rng`` the compressors' starts are modelled,
    their spread drawn from it (so ``rng``'s draws, and the units, are the same either way).
    """
    n = len(models)
    batch_index = np.asarray(batch_index, dtype=int)
    if batch_index.shape != (n,):
        raise ValueError("batch_index must have one entry per unit")
    specs = [MODELS[m] for m in models]
    n_batches = int(batch_index.max()) + 1 if n else 0

    def spread(batch_sd: float, unit_sd: float) -> np.ndarray:
        return rng.normal(0.0, batch_sd, n_batches)[batch_index] + rng.normal(0.0, unit_sd, n)

    def per_speed(attr: str) -> np.ndarray:
        table = np.zeros((n, 4))
        table[:, 1:] = [getattr(s, attr) for s in specs] if n else np.zeros((0, 3))
        return table

    rated = np.array([s.rated_capacity_w for s in specs], dtype=float)
    cop = np.array([s.rated_cop for s in specs], dtype=float)
    # Capacity within about ±5 % of nameplate, a third of the variance shared by the batch.
    cap_factor = 1.0 + np.clip(spread(0.012, 0.018), -0.05, 0.05)
    airflow = per_speed("airflow_m3h") * (1.0 + np.clip(spread(0.01, 0.015), -0.04, 0.04))[:, None]
    fan_current = per_speed("fan_power_w") / (MAINS_V * FAN_PF)

    # Room sized to the unit: the design load (outdoor 35 °C, room 24 °C, average gains) is
    # 55-90 % of the unit's sensible capacity, so most rooms cycle and a few struggle on hot days.
    sensible_rated = rated * SENSIBLE_RATIO
    base_gain = rng.uniform(100.0, 250.0, n) * rated / 3500.0
    occupancy_gain = rng.uniform(100.0, 400.0, n) * rated / 3500.0
    solar_gain = rng.uniform(50.0, 400.0, n) * rated / 3500.0
    design_load = rng.uniform(0.55, 0.90, n) * sensible_rated
    ua_total = np.maximum(design_load - base_gain - 0.5 * (occupancy_gain + solar_gain), 200.0)
    ua_total = ua_total / 11.0
    air_share = rng.uniform(0.25, 0.45, n)

    # 80 % of users set 22-26 °C, the rest want it cold (18-20 °C); the controller steps 0.5 K.
    # Colder setpoints exist, but a room held at 16 °C in summer drives supply air to ~6 °C,
    # which the acceptance ranges (supply 8-18 °C) treat as implausible for a normal unit.
    cold = rng.random(n) < 0.2
    setpoint = np.where(cold, rng.uniform(18.0, 20.0, n), rng.uniform(22.0, 26.0, n))
    setpoint = np.round(setpoint * 2.0) / 2.0

    bias = np.zeros((n, len(AIRCON_FIELDS)))
    for name, sd in (("return_c", 0.2), ("supply_c", 0.2), ("ambient_c", 0.3)):
        bias[:, FIELD_INDEX[name]] = rng.normal(0.0, sd, n)
    bias[:, FIELD_INDEX["current_a"]] = rng.normal(0.0, 0.02, n)

    variable = np.array([s.inverter for s in specs], dtype=bool)
    inrush: dict[str, np.ndarray] = {}
    if inrush_rng is not None:
        running_a = rated / cop / (MAINS_V * COMPRESSOR_PF)
        inrush["inrush_a"], inrush["inrush_tau_s"] = starts.draw(inrush_rng, running_a, n)

    return UnitParams(
        rated_capacity_w=rated * cap_factor,
        rated_cop=cop * (1.0 + np.clip(spread(0.01, 0.015), -0.04, 0.04)),
        airflow_m3h=airflow,
        fan_noise_db=per_speed("fan_noise_db"),
        fan_current_a=fan_current,
        fan_vibration_g=per_speed("fan_vibration_g"),
        noise_offset_db=spread(0.5, 0.7),
        vibration_factor=np.exp(spread(0.08, 0.12)),
        setpoint_c=setpoint,
        hysteresis_k=rng.uniform(0.8, 1.2, n),
        min_on_s=np.full(n, 180.0),
        min_off_s=np.full(n, 180.0),
        c_air=rng.uniform(0.25e6, 0.45e6, n) * rated / 3500.0,
        c_mass=rng.uniform(4e6, 8e6, n) * rated / 3500.0,
        ua_air=ua_total * air_share,
        ua_mass=ua_total * (1.0 - air_share),
        h_air_mass=rng.uniform(200.0, 350.0, n) * rated / 3500.0,
        base_gain_w=base_gain,
        occupancy_gain_w=occupancy_gain,
        office=rng.random(n) < 0.3,
        solar_gain_w=solar_gain,
        solar_peak_h=rng.uniform(10.0, 16.0, n),
        outdoor_offset_c=rng.normal(0.0, 0.7, n),
        bias=bias,
        inverter=variable if variable.any() else None,
        **inrush,
    )


def initial_state(params: UnitParams, outdoor_c: np.ndarray, rng: np.random.Generator) -> UnitState:
    """Rooms near their setpoint (the units have been running), compressors free to start."""
    n = params.n
    air = params.setpoint_c + rng.uniform(-0.5, 1.5, n)
    # The walls sit between room and outdoors; start them near their steady value.
    mass = air + 0.3 * np.maximum(outdoor_c - air, 0.0)
    return UnitState(
        air_c=air,
        mass_c=mass,
        compressor_on=np.zeros(n, dtype=bool),
        state_age_s=np.full(n, 3600.0),
        coil=np.zeros(n),
        fan_speed=np.ones(n, dtype=np.int64),
        load=None if params.inverter is None else np.where(params.inverter, inverter.LOAD_MIN, 1.0),
    )


def internal_gains(params: UnitParams, hour: float | np.ndarray) -> np.ndarray:
    """Heat from people and appliances into the room air, by local hour of day."""
    home = ((hour >= 18.0) & (hour < 23.0)) | ((hour >= 7.0) & (hour < 8.5))
    office = (hour >= 9.0) & (hour < 18.0)
    occupied = np.where(params.office, office, home)
    return params.base_gain_w + params.occupancy_gain_w * occupied


def solar_gains(params: UnitParams, hour: float | np.ndarray) -> np.ndarray:
    """Sun on walls and through windows into the mass node; zero at night."""
    phase = (hour - params.solar_peak_h) * (np.pi / 12.0)
    daylight = (hour >= 6.0) & (hour < 19.0)
    return params.solar_gain_w * np.maximum(np.cos(phase), 0.0) * daylight


def capacity_w(
    params: UnitParams, state: UnitState, health: Health, outdoor_c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steady total capacity, sensible capacity delivered now, and air mass flow (kg/s)."""
    idx = np.arange(params.n)
    out = np.clip(outdoor_c, *OUTDOOR_CLAMP_C)
    flow_m3h = params.airflow_m3h[idx, state.fan_speed] * health.airflow
    nominal_m3h = params.airflow_m3h[:, 3]
    # less air over the coil: a colder (warmer) coil and a bit less capacity; fouling on top
    airflow = (flow_m3h / nominal_m3h) ** CAP_AIRFLOW_EXPONENT
    fouling = health.airflow**FOULING_EXPONENT
    total = (
        params.rated_capacity_w
        * health.capacity
        * (1.0 - CAP_PER_K_OUTDOOR * (out - RATED_OUTDOOR_C))
        * np.clip(1.0 + CAP_PER_K_RETURN * (state.air_c - RATED_RETURN_C), 0.5, 1.3)
        * airflow
        * fouling
    )
    shr = np.clip(
        SENSIBLE_RATIO + SENSIBLE_RATIO_PER_K * (state.air_c - 24.0), *SENSIBLE_RATIO_RANGE
    )
    heat = state.heating
    if heat is not None and heat.any():
        conditions = heatpump.heating_factor(outdoor_c, state.air_c)
        heating = params.rated_capacity_w * health.capacity * conditions * airflow * fouling
        total = np.where(heat, heating, total)
        shr = np.where(heat, 1.0, shr)  # a warm coil condenses nothing
    if state.load is not None:
        total = total * state.load
    total = np.maximum(total, 0.0)
    sensible_now = total * shr * state.coil
    mass_flow = flow_m3h * (AIR_DENSITY / 3600.0)
    return total, sensible_now, mass_flow


def advance(
    params: UnitParams,
    state: UnitState,
    health: Health,
    outdoor_c: np.ndarray,
    hour: float,
    dt: float,
) -> UnitState:
    """The state ``dt`` seconds later, sub-stepped so that any ``dt`` integrates stably.

    ``outdoor_c`` and ``hour`` are held over the interval (the caller sub-steps the weather).
    """
    if dt < 0:
        raise ValueError(f"dt must be >= 0, got {dt}")
    n_sub = max(1, int(np.ceil(dt / MAX_SUBSTEP_S)))
    h = dt / n_sub
    gains_air = internal_gains(params, hour)
    gains_mass = solar_gains(params, hour)
    air, mass = state.air_c, state.mass_c
    on, age, coil, fan = state.compressor_on, state.state_age_s, state.coil, state.fan_speed
    heat, powered, load = state.heating, state.powered, state.load
    # +1 cooling, -1 heating: the sign of the heat the coil takes out of the room air
    sign = 1.0 if heat is None else np.where(heat, -1.0, 1.0)
    for _ in range(n_sub):
        if h == 0.0:
            break
        s = UnitState(air, mass, on, age, coil, fan, heat, powered, load)
        _, sensible, _ = capacity_w(params, s, health, outdoor_c)
        q_air = (
            params.ua_air * (outdoor_c - air)
            + params.h_air_mass * (mass - air)
            + gains_air
            - sign * sensible
        )
        q_mass = params.h_air_mass * (air - mass) + params.ua_mass * (outdoor_c - mass) + gains_mass
        air = air + h * q_air / params.c_air
        mass = mass + h * q_mass / params.c_mass

        # Coil: exact first-order relaxation towards cold (compressor on) or room (off).
        tau = np.where(on, COIL_TAU_ON_S, COIL_TAU_OFF_S)
        target = on.astype(float)
        coil = target + (coil - target) * np.exp(-h / tau)

        # Thermostat with hysteresis and the compressor's minimum on/off times.
        age = age + h
        err = air - params.setpoint_c  # how far the room is from what the user wants
        if heat is not None and params.heat_setpoint_c is not None:
            err = np.where(heat, params.heat_setpoint_c - air, err)
        may_switch = age >= np.where(on, params.min_on_s, params.min_off_s)
        new_on = np.where(on, ~((err < -0.5 * params.hysteresis_k) & may_switch),
                          (err > 0.5 * params.hysteresis_k) & may_switch)  # fmt: skip
        if powered is not None:  # switched off by its user: the compressor stops at once
            new_on &= powered
        age = np.where(new_on != on, 0.0, age)
        on = new_on
        if load is not None and params.inverter is not None:
            load = inverter.relax(load, err, on, params.inverter, h)

        # Auto fan: the speed the error forces at least (lo) and allows at most (hi).
        hy = FAN_HYSTERESIS_K
        lo = 1 + (err > 1.0 + hy).astype(np.int64) + (err > 2.0 + hy)
        hi = 1 + (err > 1.0 - hy).astype(np.int64) + (err > 2.0 - hy)
        fan = np.where(on, np.clip(fan, lo, hi), 1)
        if powered is not None:
            fan = np.where(powered, fan, 0)
    return UnitState(air, mass, on, age, coil, fan, heat, powered, load)


def observe(
    params: UnitParams,
    state: UnitState,
    health: Health,
    outdoor_c: np.ndarray,
    ts: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One row per unit in ``AIRCON_FIELDS`` order, as the unit's sensors report it."""
    n = params.n
    idx = np.arange(n)
    total, sensible, mass_flow = capacity_w(params, state, health, outdoor_c)
    fan_running = state.fan_speed > 0
    delta_t = np.where(fan_running, sensible / np.maximum(mass_flow * AIR_CP, 1e-9), 0.0)
    heat = state.heating
    sign = 1.0 if heat is None else np.where(heat, -1.0, 1.0)
    supply = state.air_c - sign * delta_t + FAN_HEAT_K * fan_running

    # Power = capacity / COP with the capacity the healthy circuit would have (a leak lowers power
    # less than it lowers capacity: LEAK_POWER_EXPONENT).
    out = np.clip(outdoor_c, *OUTDOOR_CLAMP_C)
    healthy_total = total / np.maximum(health.capacity * health.airflow**FOULING_EXPONENT, 1e-9)
    cop = params.rated_cop * (1.0 - COP_PER_K_OUTDOOR * (out - RATED_OUTDOOR_C))
    if heat is not None:
        cop = np.where(heat, heatpump.heating_cop(params.rated_cop, outdoor_c), cop)
    power = (
        healthy_total
        / cop
        * health.capacity**LEAK_POWER_EXPONENT
        * health.airflow**FILTER_POWER_EXPONENT
    )
    if state.load is not None:
        power = power * inverter.power_factor(state.load)
    on = state.compressor_on
    current = BOARD_A + params.fan_current_a[idx, state.fan_speed]
    current = current + on * power / (MAINS_V * COMPRESSOR_PF)
    if params.inrush_a is not None and params.inrush_tau_s is not None:
        before = BOARD_A + params.fan_current_a[idx, 1]
        current = starts.metered_current(
            state.compressor_on, state.state_age_s, current, before, params.inrush_a,
            params.inrush_tau_s,
        )  # fmt: skip
    spike = on & (rng.random(n) < health.overcurrent_p)
    current = np.where(spike, health.overcurrent_a * rng.uniform(0.95, 1.1, n), current)

    energy = (
        10.0 ** (params.fan_noise_db[idx, state.fan_speed] / 10.0) * fan_running
        + 10.0 ** (COMPRESSOR_INDOOR_DB / 10.0) * on
        + 10.0 ** (BACKGROUND_DB / 10.0)
    )
    noise = 10.0 * np.log10(energy) + params.noise_offset_db + health.noise_add_db * fan_running
    vibration = (
        params.fan_vibration_g[idx, state.fan_speed] + COMPRESSOR_VIBRATION_G * on
    ) * params.vibration_factor + health.vibration_add_g * fan_running

    rows = np.empty((n, len(AIRCON_FIELDS)))
    rows[:, 0] = ts
    rows[:, 1] = params.setpoint_c
    if heat is not None and params.heat_setpoint_c is not None:
        rows[:, 1] = np.where(heat, params.heat_setpoint_c, params.setpoint_c)
    rows[:, 2] = state.air_c
    rows[:, 3] = supply
    rows[:, 4] = outdoor_c
    rows[:, 5] = on
    rows[:, 6] = state.fan_speed
    rows[:, 7] = current
    rows[:, 8] = noise
    rows[:, 9] = vibration
    rows += params.bias
    for name, sigma in SENSOR_SIGMA.items():
        rows[:, FIELD_INDEX[name]] += rng.normal(0.0, sigma, n)
    rows[:, FIELD_INDEX["current_a"]] = np.maximum(rows[:, FIELD_INDEX["current_a"]], 0.0)
    rows[:, FIELD_INDEX["vibration_g"]] = np.maximum(rows[:, FIELD_INDEX["vibration_g"]], 0.0)
    for name, decimals in DECIMALS.items():
        col = FIELD_INDEX[name]
        rows[:, col] = np.round(rows[:, col], decimals)
    return rows
