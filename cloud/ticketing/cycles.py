"""A ticket's SLA cycle: the deadline of its current stage, and reopening as a new cycle.

``due_at`` always holds the deadline of the ticket's current stage (``sla.py``), so every status
change re-points it (:func:`restage`). Reopening, whether a person asks for it, verification fails
or the fault comes back after a verified fix, starts a new cycle: the clocks run again from the
reopening, and escalations are once per stage *and cycle*.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cloud.ticketing.history import SYSTEM, HistoryKind, write_history
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.models import Ticket
from cloud.ticketing.sla import SlaPolicy


def restage(t: Ticket, sla: SlaPolicy, now: datetime) -> None:
    """Point ``due_at`` at the deadline of the ticket's current stage (kept when closed)."""
    stage = sla.stage(t.status, t.priority)
    if stage is not None:
        t.due_at = sla.due(stage, t.priority, t.cycle_at, now)


def reopen(
    s: Session,
    t: Ticket,
    sla: SlaPolicy,
    now: datetime,
    kind: HistoryKind,
    *,
    actor: str = SYSTEM,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Reopen ``t`` as a new cycle; flushes, so a uniqueness clash raises IntegrityError."""
    current = t.status
    t.status, t.updated_at = Status.REOPENED.value, now
    t.cycle, t.cycle_at = t.cycle + 1, now
    restage(t, sla, now)
    s.flush()
    write_history(
        s, t, now, kind, actor=actor, from_status=current, to_status=Status.REOPENED,
        note=note, data=data,
    )  # fmt: skip
