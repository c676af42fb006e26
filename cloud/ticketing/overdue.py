"""SLA checks: flag the tickets past their stage's deadline and deliver the escalations.

``due_at`` is the deadline of a ticket's current stage (``sla.py``); :func:`check_sla` flags an
overdue ticket once per stage and cycle (history ``overdue``) by writing one ``sla_escalations``
row, which is also the webhook's outbox: rows are claimed before they are sent and sent outside
any transaction (``escalation.py`` has the delivery rules). Pending fixes are judged here too, as
a safety net: they are normally decided when their findings arrive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.ticketing.context import Context
from cloud.ticketing.escalation import DeliveryError, Notifier
from cloud.ticketing.history import HistoryKind, TicketChange, write_history
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.models import SlaEscalation, Ticket
from cloud.ticketing.sla import SlaPolicy, backoff
from cloud.ticketing.verification import verify_pending

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SlaReport:
    """What one :func:`check_sla` run did."""

    flagged: list[tuple[str, str]]  # (ticket id, stage) newly overdue
    delivered: int
    failed: int
    changes: list[TicketChange]


def check_sla(ctx: Context, now: datetime | None = None) -> SlaReport:
    """Flag overdue tickets once per stage and cycle, deliver escalations, re-judge fixes.

    Safe to call from several processes at once: the unique (ticket, cycle, stage) index
    makes the flag once-only and deliveries are claimed before they are sent.
    """
    now = ctx.now() if now is None else now.astimezone(UTC)
    sla = ctx.policy.sla
    with ctx.sessions.begin() as s:
        changes = verify_pending(s, ctx.policy, now)
    flagged: list[tuple[str, str]] = []
    with ctx.sessions.begin() as s:
        # tickets already flagged for their current deadline are not loaded again: a pass
        # over a store with many long-overdue tickets costs one query, not one per ticket
        flagged_already = (
            select(SlaEscalation.id)
            .where(
                SlaEscalation.ticket_id == Ticket.id,
                SlaEscalation.cycle == Ticket.cycle,
                SlaEscalation.due_at == Ticket.due_at,
            )
            .exists()
        )
        overdue = s.scalars(
            select(Ticket)
            .where(Ticket.status != Status.CLOSED, Ticket.due_at < now, ~flagged_already)
            .order_by(Ticket.due_at, Ticket.id)
        ).all()
        for t in overdue:
            if _flag_overdue(s, sla, t, now):
                flagged.append((t.id, str(sla.stage(t.status, t.priority))))
    delivered, failed = (0, 0) if ctx.notifier is None else _deliver(ctx, ctx.notifier, now)
    return SlaReport(flagged, delivered, failed, changes)


def _flag_overdue(s: Session, sla: SlaPolicy, t: Ticket, now: datetime) -> bool:
    stage = sla.stage(t.status, t.priority)
    if stage is None:
        return False
    seen = select(SlaEscalation.id).where(
        SlaEscalation.ticket_id == t.id,
        SlaEscalation.cycle == t.cycle,
        SlaEscalation.stage == stage.value,
    )
    if s.execute(seen).first() is not None:
        return False
    payload = {
        "event": "sla_overdue",
        "ticket": t.id,
        "stage": stage.value,
        "due_at": t.due_at.isoformat().replace("+00:00", "Z"),
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
    try:
        with s.begin_nested():
            row = SlaEscalation(
                ticket_id=t.id, cycle=t.cycle, stage=stage.value, due_at=t.due_at,
                created_at=now, payload=payload, attempts=0, next_attempt_at=now,
            )  # fmt: skip
            s.add(row)
            s.flush()
            row.payload = {**payload, "escalation_id": row.id}
    except IntegrityError:  # another process flagged it first
        return False
    note = f"{stage.value} overdue: was due {payload['due_at']}"
    data = {"stage": stage.value, "escalation": row.id}
    write_history(s, t, now, HistoryKind.OVERDUE, note=note, data=data)
    return True


def _deliver(ctx: Context, notifier: Notifier, now: datetime) -> tuple[int, int]:
    """Send due escalations through ``notifier``; (delivered, failed) counts."""
    with ctx.sessions.begin() as s:
        due = s.execute(
            select(SlaEscalation.id, SlaEscalation.attempts, SlaEscalation.payload)
            .where(
                SlaEscalation.delivered_at.is_(None),
                SlaEscalation.next_attempt_at <= now,
                SlaEscalation.attempts < notifier.max_attempts,
            )
            .order_by(SlaEscalation.id)
        ).all()
        claimed = []
        for row_id, attempts, payload in due:
            wait = backoff(attempts + 1, base=notifier.retry_base, cap=notifier.retry_cap)
            won = s.execute(
                update(SlaEscalation)
                .where(SlaEscalation.id == row_id, SlaEscalation.attempts == attempts)
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
            log.warning("escalation %s not delivered: %s", row_id, exc)
            values = {"last_error": str(exc)[:1000]}
            failed += 1
        with ctx.sessions.begin() as s:
            s.execute(update(SlaEscalation).where(SlaEscalation.id == row_id).values(**values))
    return delivered, failed
