"""The escalation outbox: one ``sla_escalations`` row per (ticket, cycle, what is due).

Overdue stages (``overdue.py``), stages and measures near their deadline and overdue measures
(``measures.py``) all alert the same way: :func:`enqueue` writes the row once — the unique
(ticket, cycle, stage) index makes a second writer's attempt a no-op — with the payload the
notifier will send, and :func:`deliver` sends it with retries. ``stage`` names what is due
in at most 16 characters: ``cause``, ``fix-soon``, ``m-late-12``.

:func:`deliver` sends the due rows of an outbox table (``sla_escalations``, or the dashboard's
``target_alerts``, which have the same delivery columns): each row is claimed first (bumping
``attempts`` and pushing ``next_attempt_at`` out by the backoff), so two callers never send one
row at the same time and a crash retries later, and sent outside any transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.ticketing.context import Context
from cloud.ticketing.escalation import DeliveryError, Notifier
from cloud.ticketing.models import SlaEscalation, TargetAlert, Ticket
from cloud.ticketing.sla import backoff

log = logging.getLogger(__name__)

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


def deliver(
    ctx: Context,
    notifier: Notifier,
    now: datetime,
    table: type[SlaEscalation] | type[TargetAlert] = SlaEscalation,
) -> tuple[int, int]:
    """Send the due rows of ``table`` through ``notifier``; (delivered, failed) counts."""
    with ctx.sessions.begin() as s:
        due = s.execute(
            select(table.id, table.attempts, table.payload)
            .where(
                table.delivered_at.is_(None),
                table.next_attempt_at <= now,
                table.attempts < notifier.max_attempts,
            )
            .order_by(table.id)
        ).all()
        claimed = []
        for row_id, attempts, payload in due:
            wait = backoff(attempts + 1, base=notifier.retry_base, cap=notifier.retry_cap)
            won = s.execute(
                update(table)
                .where(table.id == row_id, table.attempts == attempts)
                .values(attempts=attempts + 1, next_attempt_at=now + wait)
            ).rowcount
            if won == 1:
                claimed.append((row_id, payload))
    delivered = failed = 0
    for row_id, payload in claimed:  # outside any transaction: the network may be slow
        try:
            notifier.send(payload)
            values: dict[str, Any] = {"delivered_at": now, "last_error": None}
            delivered += 1
        except DeliveryError as exc:
            log.warning("%s %s not delivered: %s", table.__tablename__, row_id, exc)
            values = {"last_error": str(exc)[:1000]}
            failed += 1
        with ctx.sessions.begin() as s:
            s.execute(update(table).where(table.id == row_id).values(**values))
    return delivered, failed
