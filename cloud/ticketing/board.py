"""The dashboard (看板): open tickets sorted for triage, the month's four figures against their
targets (``targets.py``), the batches with open batch tickets, and the two-week target alerts.

**The figures** over a period [start, end) — the month so far on the board, each complete ISO
week (UTC) for the two-week rule — per department and for all departments together:

- ``collection`` 反馈收集率: of the feedback tickets received in the period whose
  acknowledgement was due by now, the share taken up (first moved out of ``open``: acknowledged,
  or joined to a batch fix) within the acknowledge deadline of their priority (``sla.ack``, 1 h)
  from their opening: filing a complaint registers it, so what can be late is its collection
  into the loop by the people responsible, against the SLA's own deadline. A ticket inside its
  deadline and not taken up yet is not counted yet.
- ``completion`` 整改完成率: of the measures (not cancelled) due in the period so far, the share
  done by the period's end (so a complete week's value stays put), by the measure's department.
  Not the monthly report's ``measure_completion_rate`` (measures on the month's *tickets*,
  whenever due): a recent week's tickets have their measures due weeks later, so every recent
  week would miss by construction.
- ``satisfaction`` 客户满意度: the mean score (1-5) of the callbacks recorded in the period, by
  their ticket's lead department — the report's satisfaction.
- ``recurrence`` 同类问题重复率: the report's recurrence rate: the share of the period's tickets
  (device tickets folded into a batch ticket left out) with a ``regression`` or ``redispatched``
  entry so far, by lead department. A period's tickets may still come back, so a recent week's
  value can only grow.

A figure over nothing is None and misses no target. The month's satisfaction and recurrence are
the monthly report's numbers (the same queries, ``report_queries.py``).

**Triage order**: severity III, then II, then I; within a severity the soonest due first, which
puts the overdue ones (past their due time) on top. **Drill-down**: a model, category or
department narrows the open tickets, the batches and the figures (the department picks the
figure row; the figures' alerts are a department's, never narrowed by model or category).

**Alerts**: a department's figure that missed its target in each of the last two complete ISO
weeks (:func:`~cloud.ticketing.targets.weekly_misses`) shows on the board, computed as it is
drawn, and :func:`check_targets` (run by the API's SLA clock) raises it once per (department,
figure, week of the second miss): a ``target_alerts`` row, unique on those three so that several
API processes raise it once, and the alert's outbox, sent through the escalation notifier with
retries as ``sla_escalations`` are (payload ``event: "target_missed"``, ``escalation_id:
"target-<id>"``). A table of its own: the alert is a department's, and an escalation row is a
ticket's. A figure still missing the week after raises that week's alert: a weekly reminder.

**Cost.** Per period four aggregate queries (two of the report's, two here), and four more for
the open tickets: the board draws the month and two weeks, none per ticket.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from cloud.ticketing import report_queries as q
from cloud.ticketing.context import Context
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.models import Measure, TargetAlert, Ticket, TicketHistory
from cloud.ticketing.outbox import deliver
from cloud.ticketing.reports import Month
from cloud.ticketing.sla import SlaPolicy
from cloud.ticketing.targets import (
    Counts,
    FigureRow,
    Miss,
    Targets,
    complete_weeks,
    department_order,
    figure_rows,
    weekly_misses,
)

log = logging.getLogger(__name__)

SEVERITIES = ("III", "II", "I")  # triage order
TRIAGE_LIMIT = 50
BATCH_LIMIT = 100
_RANK = case((Ticket.severity == "III", 0), (Ticket.severity == "II", 1), else_=2)
_OPEN = Ticket.status != Status.CLOSED.value


@dataclass(frozen=True, slots=True)
class Filters:
    """The drill-down: what the board is narrowed to (None: everything)."""

    model: str | None = None
    category: str | None = None
    department: str | None = None

    def tickets(self) -> list[ColumnElement[bool]]:
        """The conditions on ``Ticket`` of the open tickets and batches."""
        return self.scope() + ([Ticket.department == self.department] if self.department else [])

    def scope(self) -> list[ColumnElement[bool]]:
        """The conditions on ``Ticket`` of the figures (the department picks their row)."""
        out = [Ticket.model == self.model] if self.model else []
        return out + ([Ticket.category == self.category] if self.category else [])

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


# --- the figures --------------------------------------------------------------------------------
def period_counts(
    s: Session,
    sla: SlaPolicy,
    start: datetime,
    end: datetime,
    now: datetime,
    where: Sequence[ColumnElement[bool]] = (),
) -> dict[str, Counts]:
    """Each department's counts over [start, end) as of ``now``, over the tickets matching
    ``where`` (see the module for the definitions)."""
    found: dict[str, Counter[str]] = {}
    for g in q.ticket_groups(s, start, end, *where):
        if not g.merged:
            found.setdefault(g.department, Counter()).update(
                tickets=g.tickets, recurred=int(g.recurred)
            )
    for department, (n, total, _low) in q.scores_by_department(s, start, end, *where).items():
        found.setdefault(department, Counter()).update(responses=n, score_sum=total)
    for department, n, done in _measures(s, start, min(end, now), where):
        found.setdefault(department, Counter()).update(measures=n, done=int(done or 0))
    for department, due, collected in _collection(s, sla, start, end, now, where):
        found.setdefault(department, Counter()).update(
            feedback=int(due or 0), collected=int(collected or 0)
        )
    return {d: Counts(**c) for d, c in found.items()}


def _measures(
    s: Session, start: datetime, end: datetime, where: Sequence[ColumnElement[bool]]
) -> list[Any]:
    """(department, measures due in [start, end) not cancelled, done before ``end``)."""
    m = Measure
    done = case((and_(m.status == "done", m.completed_at < end), 1), else_=0)
    query = select(m.department, func.count(), func.sum(done)).where(
        m.due_at >= start, m.due_at < end, m.status != "cancelled"
    )
    if where:
        query = query.join(Ticket, Ticket.id == m.ticket_id).where(*where)
    return list(s.execute(query.group_by(m.department)))


def _collection(
    s: Session,
    sla: SlaPolicy,
    start: datetime,
    end: datetime,
    now: datetime,
    where: Sequence[ColumnElement[bool]],
) -> list[Any]:
    """(department, feedback tickets received in [start, end) whose acknowledgement was due by
    ``now``, of them taken up within the deadline)."""
    h = TicketHistory
    default = sla.ack_deadline("")  # of a priority the SLA does not name
    hours = [(Ticket.priority == p, d.total_seconds() / 3600) for p, d in sla.ack.items()]
    default_h = literal(default.total_seconds() / 3600, Float())
    limit_h = case(*hours, else_=default_h) if hours else default_h
    passed = or_(
        *(and_(Ticket.priority == p, Ticket.opened_at <= now - d) for p, d in sla.ack.items()),
        and_(Ticket.priority.not_in(list(sla.ack)), Ticket.opened_at <= now - default),
    )
    taken = q.first_at(h.from_status == Status.OPEN.value)
    per_ticket = (
        select(
            Ticket.department,
            q.hours_between(Ticket.opened_at, taken).label("took_h"),
            limit_h.label("limit_h"),
            case((passed, 1), else_=0).label("passed"),
        )
        .where(
            Ticket.source == "feedback",
            Ticket.detected_at >= start,
            Ticket.detected_at < end,
            *where,
        )
        .cte("per_feedback")
        .prefix_with("MATERIALIZED")  # the history looked up once per ticket
    )
    t = per_ticket.c
    return list(
        s.execute(
            select(
                t.department,
                func.sum(case((or_(t.took_h.is_not(None), t.passed == 1), 1), else_=0)),
                func.sum(case((t.took_h <= t.limit_h, 1), else_=0)),
            ).group_by(t.department)
        )
    )


def week_alerts(s: Session, sla: SlaPolicy, targets: Targets, now: datetime) -> list[Miss]:
    """The department figures that missed their targets in each of the last two complete ISO
    weeks (over all tickets)."""
    weeks = [
        (str(w), {d: c.values() for d, c in period_counts(s, sla, w.start, w.end, now).items()})
        for w in complete_weeks(now)
    ]
    return weekly_misses(weeks, targets)


# --- the open tickets ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TriageItem:
    """An open ticket as the board lists it (a ticket's fields, no evidence)."""

    id: str
    scope: str
    source: str
    model: str | None
    batch: str | None
    device: str | None
    fault: str | None
    category: str
    severity: str
    priority: str
    department: str
    status: str
    affected_devices: int
    batch_devices: int
    detected_at: datetime
    due_at: datetime
    stage: str | None = None
    overdue: bool = False
    complaints: int = 0  # tickets from people that joined it (a batch ticket's)


_ITEM = (
    Ticket.id, Ticket.scope, func.coalesce(Ticket.source, "telemetry").label("source"),
    Ticket.model, Ticket.batch, Ticket.device, Ticket.fault, Ticket.category, Ticket.severity,
    Ticket.priority, Ticket.department, Ticket.status, Ticket.affected_devices,
    Ticket.batch_devices, Ticket.detected_at, Ticket.due_at,
)  # fmt: skip


def _items(rows: Iterable[Any], sla: SlaPolicy, now: datetime) -> list[TriageItem]:
    out = []
    for r in rows:
        stage = sla.stage(r.status, r.priority)
        late = stage is not None and r.due_at < now
        out.append(TriageItem(**r._mapping, stage=stage and stage.value, overdue=late))
    return out


def triage(
    s: Session, sla: SlaPolicy, now: datetime, where: Sequence[ColumnElement[bool]], limit: int
) -> list[TriageItem]:
    """The open tickets matching ``where`` in triage order, at most ``limit``."""
    query = select(*_ITEM).where(_OPEN, *where).order_by(_RANK, Ticket.due_at, Ticket.id)
    return _items(s.execute(query.limit(limit)), sla, now)


def open_batches(
    s: Session, sla: SlaPolicy, now: datetime, where: Sequence[ColumnElement[bool]]
) -> list[TriageItem]:
    """The open batch tickets matching ``where`` in triage order, with their complaints."""
    child = aliased(Ticket)
    complaints = select(func.count()).where(child.parent == Ticket.id).scalar_subquery()
    query = (
        select(*_ITEM, complaints.label("complaints"))
        .where(_OPEN, Ticket.scope == "batch", *where)
        .order_by(_RANK, Ticket.due_at, Ticket.id)
    )
    return _items(s.execute(query.limit(BATCH_LIMIT)), sla, now)


@dataclass(frozen=True, slots=True)
class SeverityRow:
    """A department's open tickets by severity, and how many are overdue."""

    department: str
    severities: dict[str, int]
    overdue: int

    @property
    def total(self) -> int:
        return sum(self.severities.values())

    def as_dict(self) -> dict[str, Any]:
        return {"department": self.department, **self.severities, "total": self.total,
                "overdue": self.overdue}  # fmt: skip


def by_severity(
    s: Session, now: datetime, where: Sequence[ColumnElement[bool]]
) -> list[SeverityRow]:
    """Open tickets matching ``where`` by department and severity."""
    late = func.sum(case((Ticket.due_at < now, 1), else_=0))
    found: dict[str, tuple[Counter[str], list[int]]] = {}
    for department, severity, n, overdue in s.execute(
        select(Ticket.department, Ticket.severity, func.count(), late)
        .where(_OPEN, *where)
        .group_by(Ticket.department, Ticket.severity)
    ):
        counts, over = found.setdefault(department, (Counter(), [0]))
        counts[severity] += n
        over[0] += int(overdue or 0)
    return [
        SeverityRow(d, {v: found[d][0][v] for v in SEVERITIES}, found[d][1][0])
        for d in sorted(found, key=department_order)
    ]


def breakdown(
    s: Session, column: Any, where: Sequence[ColumnElement[bool]]
) -> list[tuple[str | None, int]]:
    """Open tickets matching ``where`` counted by ``column`` (model, category), most first."""
    rows = s.execute(select(column, func.count()).where(_OPEN, *where).group_by(column))
    return sorted(((k, int(n)) for k, n in rows), key=lambda kv: (-kv[1], kv[0] or ""))


# --- the board ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BoardView:
    """What the dashboard shows; :meth:`as_dict` is the API's answer."""

    now: datetime
    month: str
    filters: Filters
    severities: list[SeverityRow]
    triage: list[TriageItem]
    batches: list[TriageItem]
    figures: list[FigureRow]
    weeks: list[str]
    alerts: list[Miss]
    models: list[tuple[str | None, int]]
    categories: list[tuple[str | None, int]]

    @property
    def open_tickets(self) -> int:
        return sum(r.total for r in self.severities)

    @property
    def overdue(self) -> int:
        return sum(r.overdue for r in self.severities)

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "month": self.month,
            "filters": self.filters.as_dict(),
            "open_tickets": self.open_tickets,
            "overdue": self.overdue,
            "by_department": [r.as_dict() for r in self.severities],
            "triage": [asdict(t) for t in self.triage],
            "batches": [asdict(b) for b in self.batches],
            "figures": [r.as_dict() for r in self.figures],
            "weeks": list(self.weeks),
            "alerts": [m.as_dict() for m in self.alerts],
            "models": [{"model": k, "tickets": n} for k, n in self.models],
            "categories": [{"category": k, "tickets": n} for k, n in self.categories],
        }


def board_view(
    ctx: Context,
    targets: Targets,
    filters: Filters | None = None,
    *,
    limit: int = TRIAGE_LIMIT,
) -> BoardView:
    """The dashboard as of the context's clock, narrowed by ``filters``."""
    filters = filters or Filters()
    now, sla = ctx.now(), ctx.policy.sla
    month = Month.of(now)
    where = filters.tickets()
    with ctx.readers() as s:
        counts = period_counts(s, sla, month.start, month.end, now, filters.scope())
        alerts = week_alerts(s, sla, targets, now)
        view = BoardView(
            now=now,
            month=str(month),
            filters=filters,
            severities=by_severity(s, now, where),
            triage=triage(s, sla, now, where, limit),
            batches=open_batches(s, sla, now, where),
            figures=figure_rows(counts, targets, filters.department),
            weeks=[str(w) for w in complete_weeks(now)],
            alerts=[a for a in alerts if filters.department in (None, a.department)],
            models=breakdown(s, Ticket.model, where),
            categories=breakdown(s, Ticket.category, where),
        )
    return view


# --- the alerts ---------------------------------------------------------------------------------
def check_targets(ctx: Context, targets: Targets, now: datetime | None = None) -> list[Miss]:
    """Raise each two-week alert once (a ``target_alerts`` row) and send the due ones through
    the notifier; the alerts newly raised. Safe to run in several processes at once."""
    now = ctx.now() if now is None else now.astimezone(UTC)
    with ctx.readers() as s:  # most runs find nothing new: no write lock for them
        found = week_alerts(s, ctx.policy.sla, targets, now)
        weeks = {m.weeks[-1] for m in found}
        known = set(
            s.execute(
                select(TargetAlert.department, TargetAlert.figure, TargetAlert.week).where(
                    TargetAlert.week.in_(weeks)
                )
            ).all()
        )
    fresh = [m for m in found if (m.department, m.figure, m.weeks[-1]) not in known]
    raised: list[Miss] = []
    if fresh:
        with ctx.sessions.begin() as s:
            raised = [m for m in fresh if _raise(s, m, now)]
    if ctx.notifier is not None:
        deliver(ctx, ctx.notifier, now, TargetAlert)
    return raised


def _raise(s: Session, m: Miss, now: datetime) -> bool:
    """Write the alert's row; False if another process wrote it first."""
    try:
        with s.begin_nested():
            row = TargetAlert(
                department=m.department, figure=m.figure, week=m.weeks[-1], created_at=now,
                payload=m.as_dict(), attempts=0, next_attempt_at=now,
            )  # fmt: skip
            s.add(row)
            s.flush()
            row.payload = {**row.payload, "escalation_id": f"target-{row.id}"}
    except IntegrityError:
        return False
    log.info("target alert: %s %s missed %s in %s", m.department, m.figure, m.target, m.weeks)
    return True


@dataclass(frozen=True)
class Board:
    """The dashboard over one database and one set of targets (what the API and the pages are
    handed): :meth:`view` draws it, :meth:`check_targets` raises and sends the alerts."""

    ctx: Context
    targets: Targets

    def view(self, filters: Filters | None = None, *, limit: int = TRIAGE_LIMIT) -> BoardView:
        return board_view(self.ctx, self.targets, filters, limit=limit)

    def check_targets(self, now: datetime | None = None) -> list[Miss]:
        return check_targets(self.ctx, self.targets, now)
