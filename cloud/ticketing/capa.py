"""Corrective and preventive measures and the cause analysis: what people record, and the
clocks that remind and escalate (the measures' data and figures are in ``measures.py``).

- :func:`add_measure`, :func:`update_measure` (by :data:`~cloud.ticketing.measures.MOVES`;
  ``done`` and ``cancelled`` need a record of what was done), each in the ticket's history.
- :func:`set_cause`: the cause analysis in a structured way — a 5-Why chain (each answer the
  cause of the one before) and the fishbone's branches (man, machine, material, method,
  environment, measurement) with a summary — kept on the ticket and searchable with it.
- :func:`list_measures` (a department's to-do list) and :func:`department_figures`.
- :func:`flag_measures`, run by ``check_sla``: a measure due within
  ``sla.measure_remind_before`` (2 days) is reminded once, and one past its due date is flagged
  overdue once and escalated, both through the escalation outbox (``outbox.py``) to the
  measure's department, and in the ticket's history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import String, case, cast, literal, select
from sqlalchemy.orm import Session

from cloud.ticketing.context import Context, lock_ticket
from cloud.ticketing.errors import InvalidFix, TicketNotFound
from cloud.ticketing.history import HistoryKind, write_history
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.measures import (
    DEPARTMENTS,
    FISHBONE,
    MAX_WHYS,
    MOVES,
    OPEN,
    TERMS,
    Figures,
    as_dict,
    figures,
)
from cloud.ticketing.models import ROW_ID_MAX, Measure, SlaEscalation, Ticket
from cloud.ticketing.outbox import enqueue, iso_z, ticket_payload
from cloud.ticketing.policy import TicketPolicy
from cloud.ticketing.queries import detail
from cloud.ticketing.views import TicketView


def add_measure(
    ctx: Context,
    ticket_id: str,
    *,
    term: str,
    kind: str,
    action: str,
    owner: str,
    department: str,
    due_at: datetime,
    actor: str,
) -> TicketView:
    """Add a measure to a ticket that is not closed; raises InvalidFix naming the bad field."""
    if term not in TERMS:
        raise InvalidFix(f"term must be one of {', '.join(TERMS)}", field="term")
    if kind not in TERMS[term]:
        raise InvalidFix(f"a {term}-term measure is one of {', '.join(TERMS[term])}", "kind")
    if department not in DEPARTMENTS:
        raise InvalidFix(f"department must be one of {', '.join(DEPARTMENTS)}", "department")
    if due_at.tzinfo is None or not math.isfinite(due_at.timestamp()):
        raise InvalidFix("due_at needs a time zone", field="due_at")
    now = ctx.now()
    with ctx.sessions.begin() as s:
        t = lock_ticket(s, ticket_id)
        if t.status == Status.CLOSED:
            raise InvalidFix(f"{t.id} is closed: reopen it to add measures", field="ticket")
        m = Measure(
            ticket_id=t.id, term=term, kind=kind, action=action, owner=owner,
            department=department, due_at=due_at, status="planned", created_at=now,
            created_by=actor, completed_at=None, record=None,
        )  # fmt: skip
        s.add(m)
        s.flush()
        note = f"measure #{m.id} ({term}-term {kind}): {action} — {owner}, {department}, due "
        write_history(
            s, t, now, HistoryKind.MEASURE, actor=actor, note=note + iso_z(due_at),
            data={"measure": m.id, "status": "planned"},
        )  # fmt: skip
        t.updated_at = now
        return detail(s, ctx.policy, t, now)


def update_measure(
    ctx: Context,
    ticket_id: str,
    measure_id: int,
    *,
    status: str,
    record: str | None,
    actor: str,
) -> TicketView:
    """Move a measure along :data:`MOVES`; ``done`` and ``cancelled`` need a record."""
    if status not in MOVES:
        raise InvalidFix(f"status must be one of {', '.join(MOVES)}", field="status")
    if status in ("done", "cancelled") and not (record and record.strip()):
        raise InvalidFix(f"a measure {status} needs a record of what was done", field="record")
    now = ctx.now()
    with ctx.sessions.begin() as s:
        t = lock_ticket(s, ticket_id)
        m = s.get(Measure, measure_id) if 0 < measure_id <= ROW_ID_MAX else None
        if m is None or m.ticket_id != t.id:
            raise TicketNotFound(f"{ticket_id} measure {measure_id}")
        if status not in MOVES[m.status]:
            legal = ", ".join(sorted(MOVES[m.status])) or "none (it is finished)"
            raise InvalidFix(
                f"measure #{m.id} cannot go from {m.status} to {status}; legal: {legal}",
                field="status",
            )
        before, m.status = m.status, status
        if status in ("done", "cancelled"):
            m.completed_at, m.record = now, record
        note = f"measure #{m.id}: {before} → {status}" + (f": {record}" if record else "")
        write_history(
            s, t, now, HistoryKind.MEASURE, actor=actor, note=note,
            data={"measure": m.id, "status": status},
        )  # fmt: skip
        t.updated_at = now
        return detail(s, ctx.policy, t, now)


def set_cause(
    ctx: Context,
    ticket_id: str,
    *,
    five_why: list[str],
    fishbone: Mapping[str, list[str]],
    summary: str | None,
    actor: str,
) -> TicketView:
    """Record (or replace) the ticket's cause analysis."""
    unknown = set(fishbone) - set(FISHBONE)
    if unknown:
        raise InvalidFix(
            f"fishbone branches are {', '.join(FISHBONE)}; not {', '.join(sorted(unknown))}",
            field="fishbone",
        )
    if len(five_why) > MAX_WHYS:
        raise InvalidFix(f"at most {MAX_WHYS} whys", field="five_why")
    now = ctx.now()
    analysis = {
        "five_why": [w.strip() for w in five_why if w.strip()],
        "fishbone": {
            b: [c.strip() for c in fishbone[b] if c.strip()] for b in FISHBONE if fishbone.get(b)
        },
        "summary": summary,
        "by": actor,
        "at": iso_z(now),
    }  # fmt: skip
    with ctx.sessions.begin() as s:
        t = lock_ticket(s, ticket_id)
        t.cause_analysis, t.updated_at = analysis, now
        root = analysis["five_why"][-1] if analysis["five_why"] else summary
        write_history(
            s, t, now, HistoryKind.CAUSE, actor=actor, note=f"cause analysis: {root or '—'}",
            data={"whys": len(analysis["five_why"]), "branches": sorted(analysis["fishbone"])},
        )  # fmt: skip
        return detail(s, ctx.policy, t, now)


def department_figures(
    ctx: Context, *, since: datetime | None = None, until: datetime | None = None
) -> dict[str, Figures]:
    """Tracking figures per department over measures due in [since, until)."""
    query = select(Measure)
    if since is not None:
        query = query.where(Measure.due_at >= since)
    if until is not None:
        query = query.where(Measure.due_at < until)
    now = ctx.now()
    by_department: dict[str, list[Measure]] = {}
    with ctx.readers() as s:
        for m in s.scalars(query):
            by_department.setdefault(m.department, []).append(m)
    return {d: figures(ms, now) for d, ms in sorted(by_department.items())}


def list_measures(
    ctx: Context,
    *,
    department: str | None = None,
    status: str | None = None,
    overdue: bool | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Measures across tickets, soonest due first: a department's to-do list."""
    now = ctx.now()
    query = select(Measure).order_by(Measure.due_at, Measure.id).limit(limit)
    if department is not None:
        query = query.where(Measure.department == department)
    if status is not None:
        query = query.where(Measure.status == status)
    if overdue is not None:
        late = Measure.status.in_(OPEN) & (Measure.due_at < now)
        query = query.where(late if overdue else ~late)
    with ctx.readers() as s:
        return [as_dict(m, now) for m in s.scalars(query)]


# --- clocks ------------------------------------------------------------------------------------
def flag_measures(s: Session, policy: TicketPolicy, now: datetime) -> list[tuple[str, str]]:
    """Remind measures due soon and flag overdue ones, once each; (ticket, stage) flagged."""
    horizon = now + policy.sla.measure_remind_before
    number = cast(Measure.id, String)
    stage_now = case(
        (Measure.due_at < now, literal("m-late-") + number), else_=literal("m-soon-") + number
    )
    alerted = (  # measures already alerted for where they stand are not loaded again
        select(SlaEscalation.id)
        .where(SlaEscalation.ticket_id == Measure.ticket_id, SlaEscalation.stage == stage_now)
        .exists()
    )
    rows = s.execute(
        select(Measure, Ticket)
        .join(Ticket, Ticket.id == Measure.ticket_id)
        .where(Measure.status.in_(OPEN), Measure.due_at <= horizon, ~alerted)
        .order_by(Measure.due_at, Measure.id)
    ).all()
    flagged = []
    for m, t in rows:
        late = m.due_at < now
        stage = f"m-{'late' if late else 'soon'}-{m.id}"
        event = "measure_overdue" if late else "measure_due_soon"
        measure = {
            "id": m.id, "term": m.term, "kind": m.kind, "action": m.action, "owner": m.owner,
            "department": m.department, "status": m.status, "due_at": iso_z(m.due_at),
        }  # fmt: skip
        payload = ticket_payload(t) | {
            "event": event,
            "stage": stage,
            "measure": measure,
            "due_at": iso_z(m.due_at),
            "department": m.department,  # the measure's department is the one to alert
        }
        if enqueue(s, t, stage, m.due_at, payload, now) is None:
            continue
        what = "overdue" if late else "due soon"
        write_history(
            s, t, now, HistoryKind.MEASURE_OVERDUE if late else HistoryKind.MEASURE_DUE_SOON,
            note=f"measure #{m.id} ({m.department}, {m.owner}) {what}: due {iso_z(m.due_at)}",
            data={"measure": m.id},
        )  # fmt: skip
        flagged.append((t.id, stage))
    return flagged
