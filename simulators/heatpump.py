"""Heating mode of the simulated split units: the same refrigerant circuit run backwards.

The built-in models are heat pumps (``KFR``: 热泵, a reversing valve), and in spring and autumn
their users switch between heating and cooling, sometimes within a day. This module holds what
differs in heating, as pure functions of numpy arrays (one element per unit); :mod:`aircon`
applies them to the units whose ``UnitState.heating`` is set.

* **Capacity** is rated at EN 14511 / GB/T 7725 heating conditions (outdoor 7 °C, indoor 20 °C),
  ``HEAT_CAPACITY_RATIO`` times the cooling nameplate (split units of this size heat a little more
  than they cool). It falls by ``HEAT_CAP_PER_K_OUTDOOR`` per kelvin colder outdoors (the outdoor
  coil evaporates at a lower pressure) and by ``HEAT_CAP_PER_K_RETURN`` per kelvin of warmer
  return air (higher condensing pressure), and scales with airflow as in cooling. All of it is
  sensible: nothing condenses on a warm coil.
* **Supply air** = return + capacity / (mass flow · cp): 10-20 K above the return air at full
  capacity, where cooling gives 8-15 K below it.
* **COP** is ``HEAT_COP_RATIO`` times the rated cooling COP at 7 °C and falls by
  ``HEAT_COP_PER_K_OUTDOOR`` per kelvin colder.
* **Thermostat**: the compressor runs while the room is below the heating setpoint.
* Not modelled: defrost cycles (the outdoor coil ices below about 5 °C in humid air; scenarios that
  use heating stay mostly above that) and the inverter's frequency control (the units are fixed
  speed, as in cooling).

A leak or a clogged filter acts on heating as on cooling (``Health.capacity``, ``Health.airflow``).
"""

from __future__ import annotations

import numpy as np

RATED_HEAT_OUTDOOR_C = 7.0
RATED_HEAT_RETURN_C = 20.0
HEAT_CAPACITY_RATIO = 1.15
HEAT_CAP_PER_K_OUTDOOR = 0.025  # −2.5 %/K colder outdoors
HEAT_CAP_PER_K_RETURN = 0.010  # −1 %/K warmer return air
HEAT_COP_RATIO = 1.08
HEAT_COP_PER_K_OUTDOOR = 0.02
HEAT_OUTDOOR_CLAMP_C = (-15.0, 24.0)  # the correlations are only fitted inside this range


def heating_factor(outdoor_c: np.ndarray, return_c: np.ndarray) -> np.ndarray:
    """Heating capacity as a multiple of the rated cooling capacity, at these conditions (before
    airflow and health)."""
    out = np.clip(outdoor_c, *HEAT_OUTDOOR_CLAMP_C)
    return (
        HEAT_CAPACITY_RATIO
        * np.clip(1.0 + HEAT_CAP_PER_K_OUTDOOR * (out - RATED_HEAT_OUTDOOR_C), 0.3, 1.5)
        * np.clip(1.0 - HEAT_CAP_PER_K_RETURN * (return_c - RATED_HEAT_RETURN_C), 0.8, 1.1)
    )


def heating_cop(rated_cop: np.ndarray, outdoor_c: np.ndarray) -> np.ndarray:
    """The COP heating at this outdoor temperature."""
    out = np.clip(outdoor_c, *HEAT_OUTDOOR_CLAMP_C)
    factor = np.clip(1.0 + HEAT_COP_PER_K_OUTDOOR * (out - RATED_HEAT_OUTDOOR_C), 0.5, 1.4)
    return rated_cop * HEAT_COP_RATIO * factor
