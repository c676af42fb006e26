"""The monthly after-sales quality report (CONTRACTS.md §4.3): the month's tickets counted by
problem type, source and fault, each lead department's handling times, the customers' scores,
recurrences and the corrective progress of the most frequent problems.

The month is a calendar month in UTC (:class:`Month`), and a ticket belongs to the month its
``detected_at`` falls in (for feedback: when it was received). Device tickets folded into their
batch's ticket (history ``merged``) are left out and only counted (``merged``): the batch ticket
stands for them and counts their units. The numbers are as the database stands when the report
is built: a ticket of May acknowledged in June counts in May's acknowledgement time.

**Definitions** (the page and the PDF repeat them):

- ``top_faults``: the problems ranked by tickets (then by affected units, then by name), at most
  five; a problem's ``key`` is the ticket's fault, or its category where it has none (a complaint
  about appearance). ``units`` sums the tickets' ``affected_devices``. ``top_faults_by_units``
  ranks the same problems by units; ``faults`` lists them all (the Pareto chart's bars).
- per department, over the tickets it leads (``department``, not the co-departments):
  ``mean_ack_h`` — mean hours from ``opened_at`` to the first history entry moving the ticket to
  ``acknowledged``; tickets never acknowledged are left out and counted as ``pending_ack``.
  ``mean_resolve_h`` — mean hours from ``opened_at`` to the first entry moving it to
  ``resolved``, ``verifying`` or ``callback``: the cause found, the fix recorded, or the batch's
  fix verified for a complaint that joined it. Every road to *closed as fixed* passes one of
  these, while a dismissal (``acknowledged → closed``) or a merge into a batch ticket does not
  count as resolved; tickets not resolved yet are left out. ``on_time_rate`` — the share of the
  department's tickets with no ``overdue`` history entry (in any cycle, so far).
  ``measure_completion_rate`` — of the measures (not cancelled) on the month's tickets that the
  department owns, the share done (null when it owns none); a department that owns measures but
  leads none of the month's tickets is listed with ``tickets: 0``.
- ``satisfaction``: the follow-ups (customer callbacks, history ``followup``) that carry a score
  and were *recorded* in the month, whichever month their ticket is from — so a month's score
  never changes afterwards and the 12-month trend reads as "callbacks made each month".
  ``low_scores`` counts scores of 3 or lower (those re-dispatch a ticket).
- ``recurrence_rate``: the share of the month's tickets with a ``regression`` (the fault came
  back after a verified fix) or ``redispatched`` (the customer's callback scored 3 or lower)
  history entry.
- ``top_problems``: the three most frequent problems of ``top_faults`` and how far their tickets
  have got: tickets per status, how many reached *resolved* (as for ``mean_resolve_h``) and how
  many are closed.

A rate or mean over nothing (no tickets, no responses) is null, and a month without tickets is
an empty report, not an error.

**Cost.** Three aggregate queries, none per ticket (``report_queries.py``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from cloud.ticketing import report_queries as q
from cloud.ticketing.context import Context
from cloud.ticketing.lifecycle import Status
from contract.errors import QloopError
from contract.faults import CATEGORIES

SOURCES = ("telemetry", "feedback")
TOP_FAULTS = 5
TOP_PROBLEMS = 3
TREND_MONTHS = 12
_MONTH = re.compile(r"(\d{4})-(\d{2})")


class InvalidMonth(QloopError, ValueError):
    """A month that is not ``YYYY-MM`` (months 01 to 12)."""


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month in UTC.

    >>> m = Month.parse("2024-05")
    >>> str(m), m.start.isoformat(), m.end.isoformat()
    ('2024-05', '2024-05-01T00:00:00+00:00', '2024-06-01T00:00:00+00:00')
    >>> str(m.shift(-5)), str(m.shift(8))
    ('2023-12', '2025-01')
    >>> Month.parse("2024-13")
    Traceback (most recent call last):
    ...
    cloud.ticketing.reports.InvalidMonth: month must be YYYY-MM with a month 01 to 12, got '2024-13'
    """

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        found = _MONTH.fullmatch(text.strip()) if isinstance(text, str) else None
        if found is None or not 1 <= int(found[2]) <= 12 or int(found[1]) < 1:
            raise InvalidMonth(f"month must be YYYY-MM with a month 01 to 12, got {text!r}")
        return cls(int(found[1]), int(found[2]))

    @classmethod
    def of(cls, at: datetime) -> Month:
        """The month ``at`` falls in, in UTC."""
        at = at.astimezone(UTC)
        return cls(at.year, at.month)

    def shift(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The start of the next month (exclusive)."""
        return self.shift(1).start

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class FaultCount:
    """One problem: a fault, or a category where tickets have no fault."""

    key: str
    tickets: int
    units: int

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "tickets": self.tickets, "units": self.units}


@dataclass(frozen=True, slots=True)
class DepartmentStats:
    department: str
    tickets: int
    acknowledged: int
    mean_ack_h: float | None
    resolved: int
    mean_resolve_h: float | None
    overdue: int  # tickets with at least one overdue entry
    measures: int = 0  # measures it owns on the month's tickets, not cancelled
    measures_done: int = 0

    @property
    def on_time_rate(self) -> float | None:
        return _rate(self.tickets - self.overdue, self.tickets)

    @property
    def measure_completion_rate(self) -> float | None:
        return _rate(self.measures_done, self.measures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "department": self.department,
            "tickets": self.tickets,
            "mean_ack_h": _round(self.mean_ack_h, 2),
            "mean_resolve_h": _round(self.mean_resolve_h, 2),
            "on_time_rate": _round(self.on_time_rate, 4),
            "acknowledged": self.acknowledged,
            "pending_ack": self.tickets - self.acknowledged,
            "resolved": self.resolved,
            "overdue": self.overdue,
            "measures": self.measures,
            "measure_completion_rate": _round(self.measure_completion_rate, 4),
        }


@dataclass(frozen=True, slots=True)
class Satisfaction:
    """The scored follow-ups recorded in one month."""

    month: str
    responses: int
    score_sum: int
    low_scores: int

    @property
    def mean_score(self) -> float | None:
        return None if not self.responses else self.score_sum / self.responses

    def as_dict(self) -> dict[str, Any]:
        return {
            "responses": self.responses,
            "mean_score": _round(self.mean_score, 2),
            "low_scores": self.low_scores,
        }


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """The tickets detected in one month, by source."""

    month: str
    telemetry: int
    feedback: int

    @property
    def tickets(self) -> int:
        return self.telemetry + self.feedback

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "tickets": self.tickets,
            "telemetry": self.telemetry,
            "feedback": self.feedback,
        }


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the tickets of one of the most frequent problems have got."""

    key: str
    tickets: int
    statuses: dict[str, int]
    resolved: int
    closed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "tickets": self.tickets,
            "statuses": dict(self.statuses),
            "resolved": self.resolved,
            "closed": self.closed,
            "resolved_rate": _round(_rate(self.resolved, self.tickets), 4),
        }


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    """The month's report; :meth:`as_dict` is the API's answer (CONTRACTS.md §4.3 and more)."""

    month: str
    tickets: int
    by_category: dict[str, int]
    by_source: dict[str, int]
    faults: list[FaultCount]  # every problem, most tickets first
    departments: list[DepartmentStats]  # most tickets first
    satisfaction_trend: list[Satisfaction]  # the 12 months ending with this one, oldest first
    ticket_trend: list[TrendPoint]  # likewise
    recurrences: int
    top_problems: list[Progress] = field(default_factory=list)
    merged: int = 0  # device tickets of the month folded into a batch ticket: left out

    @property
    def top_faults(self) -> list[FaultCount]:
        return self.faults[:TOP_FAULTS]

    @property
    def top_faults_by_units(self) -> list[FaultCount]:
        return sorted(self.faults, key=lambda f: (-f.units, -f.tickets, f.key))[:TOP_FAULTS]

    @property
    def satisfaction(self) -> Satisfaction:
        return self.satisfaction_trend[-1]

    @property
    def recurrence_rate(self) -> float | None:
        return _rate(self.recurrences, self.tickets)

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "tickets": self.tickets,
            "by_category": dict(self.by_category),
            "by_source": dict(self.by_source),
            "top_faults": [f.as_dict() for f in self.top_faults],
            "top_faults_by_units": [f.as_dict() for f in self.top_faults_by_units],
            "faults": [f.as_dict() for f in self.faults],
            "departments": [d.as_dict() for d in self.departments],
            "satisfaction": {
                **self.satisfaction.as_dict(),
                "trend": [{"month": p.month, **p.as_dict()} for p in self.satisfaction_trend],
            },
            "recurrence_rate": _round(self.recurrence_rate, 4),
            "recurrences": self.recurrences,
            "top_problems": [p.as_dict() for p in self.top_problems],
            "trend": [p.as_dict() for p in self.ticket_trend],
            "merged": self.merged,
        }


# --- the report ---------------------------------------------------------------------------------
def latest_month(source: Session | Context) -> Month | None:
    """The month of the most recently detected ticket, or None without tickets."""
    with _session(source) as s:
        newest = q.newest_detection(s)
    return None if newest is None else Month.of(newest)


def monthly_report(source: Session | Context, month: Month | str) -> MonthlyReport:
    """The quality report of ``month`` (``YYYY-MM`` or a :class:`Month`; raises
    :class:`InvalidMonth`) from the ticket database (see the module for the definitions)."""
    month = Month.parse(month) if isinstance(month, str) else month
    months = [month.shift(i) for i in range(1 - TREND_MONTHS, 1)]
    window = (months[0].start, months[-1].end)
    with _session(source) as s:
        groups = q.ticket_groups(s, month.start, month.end)
        counts = q.tickets_by_month(s, *window)
        scores = q.scores_by_month(s, *window)
        measures = q.measures_by_department(s, month.start, month.end)
    ticket_trend = [
        TrendPoint(str(m), counts[str(m), "telemetry"], counts[str(m), "feedback"]) for m in months
    ]
    satisfaction_trend = [Satisfaction(str(m), *scores.get(str(m), (0, 0, 0))) for m in months]

    by_category: Counter[str] = Counter(dict.fromkeys(CATEGORIES, 0))
    by_source: Counter[str] = Counter(dict.fromkeys(SOURCES, 0))
    tickets: Counter[str] = Counter()
    units: Counter[str] = Counter()
    reached: Counter[str] = Counter()
    statuses: dict[str, Counter[str]] = {}
    departments: dict[str, Counter[str]] = {}
    recurrences = merged = 0
    for g in groups:
        if g.merged:
            merged += g.tickets
            continue
        key = g.fault or g.category
        by_category[g.category] += g.tickets
        by_source[g.source or "telemetry"] += g.tickets
        tickets[key] += g.tickets
        units[key] += int(g.units)
        statuses.setdefault(key, Counter())[g.status] += g.tickets
        reached[key] += g.resolved
        recurrences += int(g.recurred)
        d = departments.setdefault(g.department, Counter())
        d.update(tickets=g.tickets, acked=g.acked, ack_h=g.ack_h or 0.0, late=int(g.late))
        d.update(resolved=g.resolved, resolve_h=g.resolve_h or 0.0)

    faults = sorted(
        (FaultCount(k, n, units[k]) for k, n in tickets.items()),
        key=lambda f: (-f.tickets, -f.units, f.key),
    )
    progress = [
        Progress(
            f.key,
            f.tickets,
            {st: statuses[f.key][st] for st in Status if statuses[f.key][st]},
            reached[f.key],
            statuses[f.key][Status.CLOSED.value],
        )
        for f in faults[:TOP_PROBLEMS]
    ]
    stats = sorted(
        (
            DepartmentStats(
                name,
                tickets=int(d["tickets"]),
                acknowledged=int(d["acked"]),
                mean_ack_h=d["ack_h"] / d["acked"] if d["acked"] else None,
                resolved=int(d["resolved"]),
                mean_resolve_h=d["resolve_h"] / d["resolved"] if d["resolved"] else None,
                overdue=int(d["late"]),
                measures=measures.get(name, (0, 0))[0],
                measures_done=measures.get(name, (0, 0))[1],
            )
            for name, d in {**{m: Counter() for m in measures}, **departments}.items()
        ),
        key=lambda d: (-d.tickets, d.department),
    )
    return MonthlyReport(
        month=str(month),
        tickets=sum(by_source.values()),
        by_category=dict(by_category),
        by_source=dict(by_source),
        faults=faults,
        departments=stats,
        satisfaction_trend=satisfaction_trend,
        ticket_trend=ticket_trend,
        recurrences=recurrences,
        top_problems=progress,
        merged=merged,
    )


@contextmanager
def _session(source: Session | Context) -> Iterator[Session]:
    """The caller's own session (left open), or a reading one of a context (closed after)."""
    if isinstance(source, Session):
        yield source
        return
    with source.readers() as s:
        yield s


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else part / whole


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
