"""Inverter (变频) compressors: capacity that follows the room instead of cycling.

A fixed-speed unit holds its room by switching its one-speed compressor on and off: while it
runs, its ΔT and current depend only on the conditions. Split units sold in China since
GB 21455-2019 are nearly all inverter units: the compressor's speed follows the room, so a
unit runs for hours at part load, its ΔT and current rising and falling with the heat it is
asked to move, and it stops only when even its lowest speed is too much. Models with
``ModelSpec.inverter`` (the ``/BP`` models) run so; :mod:`aircon` applies these pure functions
(numpy arrays, one element per unit) to them.

* **Speed** (``UnitState.load``, a fraction of the rated speed) moves towards
  ``LOAD_AT_SETPOINT + LOAD_PER_K · error`` within [``LOAD_MIN``, ``LOAD_MAX``], with time
  constant ``LOAD_TAU_S``; the error is how far the room is from its setpoint on the side the
  unit works against (too warm cooling, too cold heating). Proportional control, so the room
  settles a few tenths of a kelvin off its setpoint, where the unit's capacity meets the load. A
  compressor starts at ``LOAD_MIN`` (a soft start) and ramps up.
* **Capacity** scales with the speed (refrigerant mass flow): rated at 1, 30-130 % of it over
  the range, as nameplates of 3.5 kW inverter units give (about 1.0-4.5 kW).
* **Power** scales as speed ** ``POWER_EXPONENT``: at part load the heat exchangers are large
  for the flow, so the COP at 40 % speed is about a quarter above the rated one.
* The thermostat's on/off with hysteresis and minimum times is the fixed-speed one: it acts only
  when the lowest speed overcools (or overheats) the room.
* Not modelled: the firmware's current limit (it slows the compressor before protection trips;
  the ``/BP`` models' protection limits allow for the highest speed instead), and the outdoor
  fan's and the electronic expansion valve's control.
"""

from __future__ import annotations

import numpy as np

LOAD_MIN = 0.3
LOAD_MAX = 1.3
LOAD_AT_SETPOINT = 0.5
LOAD_PER_K = 0.5  # speed per kelvin of error
LOAD_TAU_S = 120.0
POWER_EXPONENT = 1.25


def target_load(error_k: np.ndarray) -> np.ndarray:
    """The speed the controller asks for at this error (K the room is on the unit's wrong side)."""
    return np.clip(LOAD_AT_SETPOINT + LOAD_PER_K * error_k, LOAD_MIN, LOAD_MAX)


def relax(
    load: np.ndarray, error_k: np.ndarray, on: np.ndarray, inverter: np.ndarray, dt: float
) -> np.ndarray:
    """The speed ``dt`` seconds on: running inverter compressors towards :func:`target_load`,
    stopped ones back at ``LOAD_MIN`` for their next start, fixed-speed ones at 1."""
    moved = load + (target_load(error_k) - load) * (1.0 - np.exp(-dt / LOAD_TAU_S))
    return np.where(inverter, np.where(on, moved, LOAD_MIN), 1.0)


def power_factor(load: np.ndarray) -> np.ndarray:
    """Compressor power at this speed as a multiple of what capacity alone would draw (1 at the
    rated speed): ``load ** (POWER_EXPONENT - 1)``, applied on top of the capacity's scaling."""
    return np.power(load, POWER_EXPONENT - 1.0)
