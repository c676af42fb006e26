"""One unit as the ticket database knows it, and the fleet's lost data (reading only).

A unit's view is its identity from its births, the event times it has been seen between, the
faults active on it now, and ``lost_seqs``: the seqs between its first and newest message that
never came in an accepted message (lost on the way, or refused as dead letters), as the worker
serving its partition last counted them and handed them over with its device touches
(``intake.touch_devices``). Zero means nothing from the unit is missing, not merely that
nothing was noticed: the worker counts every gap it does not see filled.

A worker counts from its journal (``Ingestor.lost_seqs``): at start, the gaps among the seqs
its journal holds; then the gap between the journal's newest seq and the first one it hears
(lost while no worker ran) and the gaps since. So a restart neither resets nor loses a count.
A unit whose partition moves to a worker on another host (with another journal) is counted
by that worker from the unit's first message there: its count covers that journal only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.ticketing.models import Device, DeviceFault


def device_view(s: Session, device: str) -> dict[str, Any] | None:
    """The unit ``device`` (None when no birth of it has been taken in)."""
    dev = s.get(Device, device)
    if dev is None:
        return None
    faults = s.scalars(
        select(DeviceFault)
        .where(DeviceFault.device == device, DeviceFault.active.is_(True))
        .order_by(DeviceFault.first_ts)
    ).all()
    return {
        "device": dev.device,
        "product": dev.product,
        "model": dev.model,
        "batch": dev.batch,
        "serial": dev.serial,
        "firmware": dev.firmware,
        "first_seen_ts": dev.first_seen_ts,
        "last_seen_ts": dev.last_seen_ts,
        "lost_seqs": dev.lost_seqs,
        "active_faults": [
            {"fault": f.fault, "since_ts": f.first_ts, "last_ts": f.last_ts, "score": f.score}
            for f in faults
        ],
    }


def lost_seqs_total(s: Session) -> tuple[int, int]:
    """(seqs lost over the fleet, units with any lost)."""
    total, units = s.execute(
        select(func.coalesce(func.sum(Device.lost_seqs), 0), func.count()).where(
            Device.lost_seqs > 0
        )
    ).one()
    return int(total), int(units)
