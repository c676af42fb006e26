"""SLA checks: flag the tickets past their stage's deadline and deliver the escalations.

``due_at`` is the deadline of a ticket's current stage (``sla.py``); :func:`check_sla` flags an
overdue ticket once per stage and cycle (history ``overdue``) by writing one ``sla_escalations``
row, which is also the webhook's outbox (``outbox.py``): rows are claimed before they are sent
and sent outside any transaction (``escalation.py`` has the delivery rules). A stage with a
quarter of its time left (``sla.due_soon_share``) is announced once as due soon
(``<stage>-soon``), and measures near or past their due date are reminded and escalated
(``measures.py``). Pending fixes are judged here too, as a safety net: they are normally decided
when their findings arrive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.ticketing.capa import flag_measures
from cloud.ticketing.context import Context
from cloud.ticketing.history import HistoryKind, TicketChange, write_history
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.models import SlaEscalation, Ticket
from cloud.ticketing.outbox import deliver, enqueue, iso_z, ticket_payload
from cloud.ticketing.sla import SlaPolicy, Stage
from cloud.ticketing.verification import verify_pending

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SlaReport:
    """What one :func:`check_sla` run did."""

    flagged: list[tuple[str, str]]  # (ticket id, stage) newly overdue
    delivered: int
    failed: int
    changes: list[TicketChange]
    # (ticket id, outbox stage) newly announced: stages and measures due soon, measures overdue
    reminded: list[tuple[str, str]] = field(default_factory=list)


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
    reminded: list[tuple[str, str]] = []
    with ctx.sessions.begin() as s:
        # tickets already flagged for their current deadline are not loaded again: a pass
        # over a store with many long-overdue tickets costs one query, not one per ticket
        flagged_already = (
            select(SlaEscalation.id)
            .where(
                SlaEscalation.ticket_id == Ticket.id,
                SlaEscalation.cycle == Ticket.cycle,
                SlaEscalation.due_at == Ticket.due_at,
                SlaEscalation.stage.in_([stage.value for stage in Stage]),  # not a notice
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
        reminded = _flag_due_soon(s, sla, now) + flag_measures(s, ctx.policy, now)
    delivered, failed = (0, 0) if ctx.notifier is None else deliver(ctx, ctx.notifier, now)
    return SlaReport(flagged, delivered, failed, changes, reminded)


def _flag_overdue(s: Session, sla: SlaPolicy, t: Ticket, now: datetime) -> bool:
    stage = sla.stage(t.status, t.priority)
    if stage is None:
        return False
    payload = {"event": "sla_overdue", "stage": stage.value, "due_at": iso_z(t.due_at)}
    row = enqueue(s, t, stage.value, t.due_at, payload | ticket_payload(t), now)
    if row is None:  # flagged before, maybe by another process
        return False
    note = f"{stage.value} overdue: was due {payload['due_at']}"
    data = {"stage": stage.value, "escalation": row.id}
    write_history(s, t, now, HistoryKind.OVERDUE, note=note, data=data)
    return True


def soon_stage(stage: Stage) -> str:
    """The outbox stage of ``stage`` being due soon (at most 16 characters)."""
    return f"{stage.value.replace('verification', 'verify')}-soon"


def _flag_due_soon(s: Session, sla: SlaPolicy, now: datetime) -> list[tuple[str, str]]:
    longest = max(sla.duration(stage, "normal") for stage in Stage)
    announced = (
        select(SlaEscalation.id)
        .where(
            SlaEscalation.ticket_id == Ticket.id,
            SlaEscalation.cycle == Ticket.cycle,
            SlaEscalation.due_at == Ticket.due_at,
            SlaEscalation.stage.like("%-soon"),
        )
        .exists()
    )
    candidates = s.scalars(
        select(Ticket)
        .where(
            Ticket.status != Status.CLOSED,
            Ticket.due_at > now,
            Ticket.due_at <= now + longest * sla.due_soon_share,
            ~announced,
        )
        .order_by(Ticket.due_at, Ticket.id)
    ).all()
    flagged = []
    for t in candidates:
        stage = sla.stage(t.status, t.priority)
        if stage is None or t.due_at - now > sla.duration(stage, t.priority) * sla.due_soon_share:
            continue
        code = soon_stage(stage)
        payload = {"event": "sla_due_soon", "stage": stage.value, "due_at": iso_z(t.due_at)}
        if enqueue(s, t, code, t.due_at, payload | ticket_payload(t), now) is None:
            continue
        note = f"{stage.value} due soon: {iso_z(t.due_at)}"
        write_history(s, t, now, HistoryKind.DUE_SOON, note=note, data={"stage": stage.value})
        flagged.append((t.id, code))
    return flagged
