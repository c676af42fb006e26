"""The monthly report's SQL (``reports.py`` has the definitions and builds the report).

Three aggregate queries, none per ticket: :func:`ticket_groups` over the month's tickets, each
ticket's first acknowledgement, first resolution and overdue, recurrence and merge flags looked
up in its history by index (correlated subqueries, materialised once, so a look-up is not
repeated in every aggregate); :func:`tickets_by_month` for the trend; :func:`scores_by_month`
over the follow-ups (a scan of the history, which has no index by action and time). Hours and
months are computed in SQL by two small portable functions (:class:`hours_between`,
:class:`month_key`: ``julianday`` and ``strftime`` on SQLite, ``EXTRACT(EPOCH …)`` and
``to_char`` on PostgreSQL).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, String, and_, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from cloud.ticketing.history import HistoryKind
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.models import Measure, Ticket, TicketHistory
from cloud.ticketing.verdicts import LOW_SCORE

#: Reaching one of these is "resolved" (``reports.py``).
RESOLVED = (Status.RESOLVED.value, Status.VERIFYING.value, Status.CALLBACK.value)
RECURRED = (HistoryKind.REGRESSION.value, HistoryKind.REDISPATCHED.value)
MERGED = HistoryKind.MERGED.value


class hours_between(FunctionElement[float]):  # noqa: N801 - reads as the SQL function it is
    """``hours_between(a, b)``: hours from datetime ``a`` to ``b``, in SQL."""

    type = Float()
    name = "hours_between"
    inherit_cache = True


@compiles(hours_between)
def _hours_standard(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 3600.0)"


@compiles(hours_between, "sqlite")
def _hours_sqlite(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 24.0)"


class month_key(FunctionElement[str]):  # noqa: N801 - reads as the SQL function it is
    """``month_key(t)``: the month ``YYYY-MM`` of datetime ``t`` (stored in UTC), in SQL."""

    type = String()
    name = "month_key"
    inherit_cache = True


@compiles(month_key)
def _month_standard(element: month_key, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(next(iter(element.clauses)), **kw)}, 'YYYY-MM')"


@compiles(month_key, "sqlite")
def _month_sqlite(element: month_key, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strftime('%Y-%m', {compiler.process(next(iter(element.clauses)), **kw)})"


def first_at(*where: ColumnElement[bool]) -> Any:
    """The time of the ticket's first history entry matching ``where`` (a correlated subquery:
    an index seek per ticket, within the one query)."""
    h = TicketHistory
    return select(func.min(h.at)).where(h.ticket_id == Ticket.id, *where).scalar_subquery()


def _has(*where: ColumnElement[bool]) -> ColumnElement[int]:
    """1 if the ticket has a history entry matching ``where``, else 0."""
    h = TicketHistory
    return case((select(h.id).where(h.ticket_id == Ticket.id, *where).exists(), 1), else_=0)


def ticket_groups(
    s: Session, start: datetime, end: datetime, *where: ColumnElement[bool]
) -> list[Any]:
    """The tickets detected in [start, end) (and matching ``where``, conditions on ``Ticket``)
    grouped by (merged, department, category, fault, source, status), with their history's
    sums: acknowledged and resolved tickets and hours, overdue and recurred tickets."""
    h = TicketHistory
    per_ticket = (
        select(
            Ticket.department,
            Ticket.category,
            Ticket.fault,
            Ticket.source,
            Ticket.status,
            Ticket.affected_devices,
            hours_between(
                Ticket.opened_at, first_at(h.to_status == Status.ACKNOWLEDGED.value)
            ).label("ack_h"),
            hours_between(Ticket.opened_at, first_at(h.to_status.in_(RESOLVED))).label("resolve_h"),
            _has(h.action == HistoryKind.OVERDUE.value).label("late"),
            _has(h.action.in_(RECURRED)).label("recurred"),
            case((_was_merged(), 1), else_=0).label("merged"),
        )
        .where(Ticket.detected_at >= start, Ticket.detected_at < end, *where)
        .cte("per_ticket")
        .prefix_with("MATERIALIZED")  # each look-up once, not again in every aggregate
    )
    t = per_ticket.c
    return list(
        s.execute(
            select(
                t.merged,
                t.department,
                t.category,
                t.fault,
                t.source,
                t.status,
                func.count().label("tickets"),
                func.coalesce(func.sum(t.affected_devices), 0).label("units"),
                func.count(t.ack_h).label("acked"),
                func.sum(t.ack_h).label("ack_h"),
                func.count(t.resolve_h).label("resolved"),
                func.sum(t.resolve_h).label("resolve_h"),
                func.sum(t.late).label("late"),
                func.sum(t.recurred).label("recurred"),
            ).group_by(t.merged, t.department, t.category, t.fault, t.source, t.status)
        )
    )


def _was_merged() -> ColumnElement[bool]:
    """Whether the ticket was folded into a batch ticket (then it is a closed device ticket:
    the first tests spare the others the look-up)."""
    h = TicketHistory
    merged = select(h.id).where(h.ticket_id == Ticket.id, h.action == MERGED).exists()
    return and_(Ticket.status == Status.CLOSED.value, Ticket.scope == "device", merged)


def tickets_by_month(s: Session, start: datetime, end: datetime) -> Counter[tuple[str, str]]:
    """The tickets detected in [start, end), not merged, by (``YYYY-MM``, source)."""
    month = month_key(Ticket.detected_at).label("month")
    counts: Counter[tuple[str, str]] = Counter()
    for m, source, n in s.execute(
        select(month, Ticket.source, func.count())
        .where(Ticket.detected_at >= start, Ticket.detected_at < end, ~_was_merged())
        .group_by(month, Ticket.source)
    ):
        counts[m, source or "telemetry"] += n
    return counts


def scores_by_month(s: Session, start: datetime, end: datetime) -> dict[str, tuple[int, int, int]]:
    """The follow-ups' scores recorded in [start, end) by ``YYYY-MM``: (responses, sum of the
    scores, low scores)."""
    return _scores(s, start, end, month_key(TicketHistory.at))


def scores_by_department(
    s: Session, start: datetime, end: datetime, *where: ColumnElement[bool]
) -> dict[str, tuple[int, int, int]]:
    """The same by the lead department of the follow-ups' tickets (matching ``where``)."""
    return _scores(s, start, end, Ticket.department, *where)


def _scores(
    s: Session, start: datetime, end: datetime, key: Any, *where: ColumnElement[bool]
) -> dict[str, tuple[int, int, int]]:
    h = TicketHistory
    score = h.data["score"].as_integer()
    scored = (
        select(key.label("key"), score.label("score"))
        .select_from(h)
        .join(Ticket, Ticket.id == h.ticket_id)
        .where(h.action == HistoryKind.FOLLOWUP.value, h.at >= start, h.at < end, *where)
        .subquery()
    )
    return {
        k: (n, int(total or 0), int(low or 0))
        for k, n, total, low in s.execute(
            select(
                scored.c.key,
                func.count(scored.c.score),
                func.sum(scored.c.score),
                func.sum(case((scored.c.score <= LOW_SCORE, 1), else_=0)),
            ).group_by(scored.c.key)
        )
    }


def newest_detection(s: Session) -> datetime | None:
    return s.scalar(select(func.max(Ticket.detected_at)))


def measures_by_department(
    s: Session, start: datetime, end: datetime
) -> dict[str, tuple[int, int]]:
    """Measures (not cancelled) on the tickets detected in [start, end), by the measure's
    department: (measures, done)."""
    m = Measure
    return {
        department: (int(n), int(done or 0))
        for department, n, done in s.execute(
            select(
                m.department,
                func.count(),
                func.sum(case((m.status == "done", 1), else_=0)),
            )
            .join(Ticket, Ticket.id == m.ticket_id)
            .where(
                Ticket.detected_at >= start,
                Ticket.detected_at < end,
                m.status != "cancelled",
            )
            .group_by(m.department)
        )
    }
