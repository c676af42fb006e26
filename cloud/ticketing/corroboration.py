"""What a unit's own data says about what its customer complains of.

The procedures ask for a verification call within two days of a complaint; when the unit sends
telemetry, the data answers first. For a complaint that names a unit and a fault the detectors
watch, :func:`telemetry_verdict` reads the unit's current state of that fault (``device_faults``)
and its days in the field (``devices``) and says one of:

- ``confirms``: the fault is active; for a level-shift fault the detector's baseline and current
  value are quoted ("ΔT with the compressor on fell from 11.2 to 7.9 K since 2024-05-03");
- ``recovered``: the fault was seen and has cleared;
- ``normal``: the unit has reported data and never showed the fault: the complaint points
  elsewhere (installation, usage, a fault the sensors cannot see);
- ``no_data``: the unit is registered but has sent nothing to judge by (or is not registered).

It is computed when a ticket is read, so a complaint filed before the data showed the fault says
"confirms" once it does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from cloud.ticketing.models import Device, DeviceFault

#: faults the detectors watch: the quantity compared with the unit's baseline, and its unit
WATCHED: dict[str, tuple[str, str]] = {
    "cooling_decline": ("ΔT with the compressor on", "K"),
    "noise_rise": ("noise at the same fan speed", "dB"),
    "vibration_rise": ("vibration", "mm/s"),
    "overcurrent": ("compressor current", "A"),
}
_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str  # confirms | recovered | normal | no_data
    text: str
    fault: str
    since: str | None = None  # ISO date the statement holds from
    baseline: float | None = None
    current: float | None = None
    onset: str | None = None  # extension: ISO date a recovered fault began
    days: float | None = None  # extension: days of data a "normal" or too-short verdict rests on

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def telemetry_verdict(s: Session, device: str, fault: str | None) -> Verdict | None:
    """What ``device``'s data shows about ``fault``; None when the detectors do not watch it."""
    if fault not in WATCHED:
        return None
    quantity, unit = WATCHED[fault]
    name = fault.replace("_", " ")
    dev = s.get(Device, device)
    if dev is None:
        return Verdict("no_data", f"no telemetry: unit {device} has never reported", fault)
    state = s.get(DeviceFault, (device, fault))
    if state is not None and state.active:
        baseline = _finite(state.evidence.get("baseline"))
        current = _finite(state.evidence.get("current"))
        since = _day(state.onset_ts)
        if baseline is not None and current is not None:
            moved = "fell" if current < baseline else "rose"
            text = (
                f"telemetry confirms: {quantity} {moved} from {baseline:.1f} to {current:.1f}"
                f" {unit} since {since}"
            )
        else:
            text = f"telemetry confirms: {name} reported since {since}"
        return Verdict("confirms", text, fault, since, baseline, current)
    since = _day(dev.first_seen_ts)
    days = (dev.last_seen_ts - dev.first_seen_ts) / _SECONDS_PER_DAY
    if state is not None:
        text = f"telemetry showed {name} from {_day(state.onset_ts)}; back at baseline since"
        last, onset = _day(state.last_ts), _day(state.onset_ts)
        return Verdict("recovered", f"{text} {last}", fault, last, onset=onset)
    if days < 1.0:
        text = f"too little telemetry to judge {name} (under a day)"
        return Verdict("no_data", text, fault, days=round(days, 3))
    text = (
        f"telemetry normal for {name} since {since} ({days:.0f} days of data):"
        " check installation or usage"
    )
    return Verdict("normal", text, fault, since, days=round(days, 1))
