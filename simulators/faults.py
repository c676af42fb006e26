"""The simulator's fault kinds: what each does to a unit, what ``magnitude`` means for it, and
the finding (CONTRACTS.md §3) the cloud should report for it. A scenario names them
(``simulators/scenario.py``), the fleet applies them (``simulators/fleet.py``) and the evaluation
scores the findings against them (``evaluation/``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaultKind:
    """A simulator fault kind: what the cloud should report and what ``magnitude`` means."""

    expected_faults: tuple[str, ...]  # CONTRACTS.md §3 names; the first is the main one
    magnitude: str
    magnitude_range: tuple[float, float]


FAULT_KINDS: dict[str, FaultKind] = {
    "refrigerant_leak": FaultKind(
        ("cooling_decline",), "final capacity loss fraction, reached linearly over ramp_s", (0, 0.9)
    ),
    "clogged_filter": FaultKind(
        ("cooling_decline",),
        "final airflow loss fraction over ramp_s (capacity falls ~airflow^1.4, ΔT ~airflow^0.4)",
        (0, 0.8),
    ),
    "fan_bearing_wear": FaultKind(
        ("noise_rise", "vibration_rise"),
        "final noise rise in dB over ramp_s; vibration rises 0.008 g per dB",
        (0, 30),
    ),
    "loose_panel": FaultKind(
        ("noise_rise",), "noise rise in dB (a rattle), reached over ramp_s (0 = a step)", (0, 30)
    ),
    "compressor_overcurrent": FaultKind(
        ("overcurrent",),
        "spike current in A (shown on up to 15 % of compressor-on samples, rising over ramp_s)",
        (10.5, 40),
    ),
    "stuck_sensor": FaultKind(
        ("sensor_stuck",), "unused; the sensor named in `sensor` repeats its last value", (0, 0)
    ),
    "offline": FaultKind(
        ("device_offline",),
        "outage length in seconds (no readings from onset for that long)",
        (1, 365 * 86400),
    ),
    "clock_jump": FaultKind(
        ("clock_skew",),
        "seconds the unit's clock runs ahead, from onset for ramp_s (0: one reading), then right",
        (1, 100 * 365 * 86400),
    ),
}
STUCK_SENSORS = ("return_c", "supply_c", "ambient_c", "current_a", "noise_db", "vibration_g")
