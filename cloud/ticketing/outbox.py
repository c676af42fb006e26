"""The escalation outbox: one ``sla_escalations`` row per (ticket, cycle, what is due).

Overdue stages (``overdue.py``), stages and measures near their deadline and overdue measures
(``measures.py``) all alert the same way: :func:`enqueue` writes the row once — the unique
(ticket, cycle, stage) index makes a second writer's attempt a no-op — with the payload the
notifier will send, and ``overdue._deliver`` sends it with retries. ``stage`` names what is due
in at most 16 characters: ``cause``, ``fix-soon``, ``m-late-12``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.ticketing.models import SlaEscalation, Ticket

STAGE_CHARS = 16


def enqueue(
    s: Session,
    t: Ticket,
    stage: str,
    due_at: datetime,
    payload: dict[str, Any],
    now: datetime,
) -> SlaEscalation | None:
    """Write the outbox row of (``t``, its cycle, ``stage``); None if it exists already."""
    if len(stage) > STAGE_CHARS:
        raise ValueError(f"outbox stage {stage!r} is over {STAGE_CHARS} characters")
    seen = select(SlaEscalation.id).where(
        SlaEscalation.ticket_id == t.id,
        SlaEscalation.cycle == t.cycle,
        SlaEscalation.stage == stage,
    )
    if s.execute(seen).first() is not None:
        return None
    try:
        with s.begin_nested():
            row = SlaEscalation(
                ticket_id=t.id, cycle=t.cycle, stage=stage, due_at=due_at, created_at=now,
                payload=payload, attempts=0, next_attempt_at=now,
            )  # fmt: skip
            s.add(row)
            s.flush()
            row.payload = {**payload, "escalation_id": row.id}
    except IntegrityError:  # another process wrote it first
        return None
    return row


def ticket_payload(t: Ticket) -> dict[str, Any]:
    """What every alert says about its ticket."""
    return {
        "ticket": t.id,
        "status": t.status,
        "cycle": t.cycle,
        "scope": t.scope,
        "model": t.model,
        "batch": t.batch,
        "device": t.device,
        "fault": t.fault,
        "severity": t.severity,
        "priority": t.priority,
        "department": t.department,
        "departments": list(t.departments),
    }


def iso_z(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
