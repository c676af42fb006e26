"""Reading tickets: filtered pages, newest first, and one ticket with its history and fix.

Pages are keyset-paginated on (``opened_at``, ``id``): the cursor names the last row of the
previous page, so tickets opened meanwhile (they sort before it) do not shift the rows of later
pages, and no OFFSET is counted through. Reads use plain transactions, which never wait for a
writer.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from cloud.ticketing.context import Context
from cloud.ticketing.corroboration import telemetry_verdict
from cloud.ticketing.errors import InvalidCursor
from cloud.ticketing.measures import as_dict, figures, measures_of
from cloud.ticketing.models import Ticket, TicketFix
from cloud.ticketing.policy import TicketPolicy
from cloud.ticketing.verification import Outcome, judge_fix
from cloud.ticketing.views import FixView, HistoryEntry, TicketPage, TicketView


# --- cursors -------------------------------------------------------------------------------------
def encode_cursor(opened_at: datetime, ticket_id: str) -> str:
    """The cursor of the page after the ticket (``opened_at``, ``ticket_id``)."""
    raw = json.dumps([opened_at.astimezone(UTC).isoformat(), ticket_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """``(opened_at, ticket_id)`` of a cursor from :func:`encode_cursor`; raises
    :class:`InvalidCursor` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, ticket_id = json.loads(raw)
        opened_at = datetime.fromisoformat(at)
        if opened_at.tzinfo is None or not isinstance(ticket_id, str):
            raise ValueError
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursor(
            "invalid cursor: pass the 'next' value of the previous page unchanged"
        ) from exc
    return opened_at, ticket_id


# --- queries -------------------------------------------------------------------------------------
def tickets(
    ctx: Context,
    *,
    status: str | None = None,
    scope: str | None = None,
    model: str | None = None,
    batch: str | None = None,
    fault: str | None = None,
    severity: str | None = None,
    device: str | None = None,
    source: str | None = None,
    channel: str | None = None,
    parent: str | None = None,
    needs_triage: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> TicketPage:
    """Tickets newest first (by opening time), filtered, one page at a time.

    ``cursor`` is the ``next`` of the previous page; raises :class:`InvalidCursor`.
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    query = select(Ticket)
    for column, value in (
        (Ticket.status, status),
        (Ticket.scope, scope),
        (Ticket.model, model),
        (Ticket.batch, batch),
        (Ticket.fault, fault),
        (Ticket.severity, severity),
        (Ticket.device, device),
        (Ticket.source, source),
        (Ticket.channel, channel),
        (Ticket.parent, parent),
    ):
        if value is not None:
            query = query.where(column == str(value))
    if needs_triage is not None:  # the triage queue: feedback a person must confirm
        flag = Ticket.classification["needs_triage"].as_boolean()
        query = query.where(Ticket.source == "feedback", flag.is_(needs_triage))
    if cursor is not None:
        at, last_id = decode_cursor(cursor)
        query = query.where(
            or_(Ticket.opened_at < at, and_(Ticket.opened_at == at, Ticket.id < last_id))
        )
    query = query.order_by(Ticket.opened_at.desc(), Ticket.id.desc()).limit(limit + 1)
    with ctx.readers() as s:
        rows = list(s.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1].opened_at, rows[-1].id) if more else None
    now = ctx.now()
    return TicketPage([view(ctx.policy, t, now) for t in rows], nxt)


def get_ticket(ctx: Context, ticket_id: str) -> TicketView | None:
    """One ticket with its history and latest fix, or None."""
    with ctx.readers() as s:
        t = s.get(Ticket, ticket_id)
        return None if t is None else detail(s, ctx.policy, t, ctx.now())


def detail(s: Session, policy: TicketPolicy, t: Ticket, now: datetime) -> TicketView:
    """``t`` with its history and latest fix (a pending fix judged live, for its progress)."""
    fix = s.scalars(
        select(TicketFix).where(TicketFix.ticket_id == t.id).order_by(TicketFix.id.desc())
    ).first()
    fix_view = None
    if fix is not None:
        if fix.outcome == Outcome.PENDING:  # live progress
            verdict = judge_fix(s, t, fix, policy.verify_window_s)
            summary, units = verdict.summary(), [u.as_dict() for u in verdict.units]
        else:
            summary, units = fix.note or fix.outcome, list(fix.units)
        fix_view = FixView(
            fix.id,
            fix.recorded_at,
            fix.actor,
            fix.description,
            list(fix.devices),
            fix.effective_from,
            fix.outcome,
            fix.decided_at,
            summary,
            units,
        )
    rows = measures_of(s, t.id)
    checked = dataclasses.replace(
        view(policy, t, now, with_history=True, fix=fix_view),
        measures=[as_dict(m, now) for m in rows],
        measure_figures=figures(rows, now).as_dict() if rows else None,
    )
    if t.source == "feedback" and t.device is not None:
        verdict = telemetry_verdict(s, t.device, t.fault)
        if verdict is not None:
            evidence = {**checked.evidence, "telemetry": verdict.as_dict()}
            return dataclasses.replace(checked, evidence=evidence)
    return checked


def view(
    policy: TicketPolicy,
    t: Ticket,
    now: datetime,
    *,
    with_history: bool = False,
    fix: FixView | None = None,
) -> TicketView:
    """``t`` as a detached value, its SLA stage and overdue flag as of ``now``."""
    history = []
    if with_history:
        history = [
            HistoryEntry(h.at, h.actor, h.action, h.from_status, h.to_status, h.note, dict(h.data))
            for h in t.history
        ]
    stage = policy.sla.stage(t.status, t.priority)
    overdue = stage is not None and now > t.due_at
    return TicketView(
        id=t.id,
        scope=t.scope,
        model=t.model,
        batch=t.batch,
        device=t.device,
        fault=t.fault,
        category=t.category,
        severity=t.severity,
        priority=t.priority,
        department=t.department,
        departments=list(t.departments),
        status=t.status,
        affected_devices=t.affected_devices,
        batch_devices=t.batch_devices,
        detected_at=t.detected_at,
        opened_at=t.opened_at,
        due_at=t.due_at,
        evidence=dict(t.evidence),
        stage=None if stage is None else stage.value,
        overdue=overdue,
        overdue_stage=stage.value if overdue and stage is not None else None,
        cycle=t.cycle,
        source=t.source or "telemetry",
        channel=t.channel,
        classification=None if t.classification is None else dict(t.classification),
        parent=t.parent,
        repeats=t.repeats or 0,
        cause_analysis=None if t.cause_analysis is None else dict(t.cause_analysis),
        history=history,
        fix=fix,
    )
