"""The fault vocabulary of CONTRACTS.md §3: fault name → category."""

from __future__ import annotations

CATEGORIES = (
    "functional",
    "performance",
    "workmanship",
    "material",
    "service",
    "safety",
    "sensor",
    "connectivity",
)
# What a person's feedback is classified into: the product's own categories (sensor and
# connectivity are the instrumentation's, which only telemetry reports).
FEEDBACK_CATEGORIES = CATEGORIES[:6]

FAULTS: dict[str, str] = {
    "cooling_decline": "performance",
    "noise_rise": "workmanship",
    "vibration_rise": "workmanship",
    "overcurrent": "safety",
    # Extension: the edge's second default safety rule (return air over its limit).
    "overheat": "safety",
    "sensor_stuck": "sensor",
    # Extension: a unit's readings stamped at times that cannot be true (its clock is wrong).
    "clock_skew": "sensor",
    "device_offline": "connectivity",
    # Extension: the generic detector's finding on a field no domain detector knows.
    "anomaly": "functional",
}


def category(fault: str) -> str:
    """The category of a known fault; unknown faults (e.g. a new detector's) are 'functional'."""
    return FAULTS.get(fault, "functional")
