"""Corrective and preventive measures (纠正与预防措施) as data: their kinds, their status table,
and the procedure's tracking figures. The actions on them are in ``capa.py``.

A ticket carries **measures**: short-term ones for the units already sold (``repair``,
``replace``, ``recall``, ``compensation``) and long-term ones against the cause (``design``,
``process``, ``inspection``, ``supplier``, ``training``), each with an owner, a department, a due
date, a status and, once done or cancelled, a record of what was done. A multi-department
problem's collaboration checklist is its measures grouped by department: who does what by when.
A measure's status moves by a table (:data:`MOVES`): planned → in_progress → done, and planned or
in_progress → cancelled.

The **tracking figures**, per ticket and per department (:func:`figures`): *completion rate* =
done / measures not cancelled; *milestone delay rate* = (done after their due date + open past
it) / measures not cancelled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.ticketing.models import Measure

TERMS: dict[str, tuple[str, ...]] = {
    "short": ("repair", "replace", "recall", "compensation", "other"),
    "long": ("design", "process", "inspection", "supplier", "training", "other"),
}
DEPARTMENTS = ("R&D", "Production", "Purchasing", "Quality", "Service")
MOVES: dict[str, frozenset[str]] = {
    "planned": frozenset({"in_progress", "done", "cancelled"}),
    "in_progress": frozenset({"done", "cancelled"}),
    "done": frozenset(),
    "cancelled": frozenset(),
}
OPEN = ("planned", "in_progress")
FISHBONE = ("man", "machine", "material", "method", "environment", "measurement")
MAX_WHYS = 10


@dataclass(frozen=True, slots=True)
class Figures:
    """Tracking figures over some measures; rates are None when there is nothing to rate."""

    measures: int
    done: int
    open_overdue: int
    completion_rate: float | None
    delay_rate: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "measures": self.measures,
            "done": self.done,
            "open_overdue": self.open_overdue,
            "completion_rate": self.completion_rate,
            "delay_rate": self.delay_rate,
        }


def figures(rows: Iterable[Any], now: datetime) -> Figures:
    """Completion and milestone delay rates of measures (objects with ``status``, ``due_at``,
    ``completed_at``), cancelled ones left out."""
    live = [m for m in rows if m.status != "cancelled"]
    done = [m for m in live if m.status == "done"]
    late_done = sum(1 for m in done if m.completed_at is not None and m.completed_at > m.due_at)
    open_overdue = sum(1 for m in live if m.status in OPEN and m.due_at < now)
    n = len(live)
    return Figures(
        n,
        len(done),
        open_overdue,
        round(len(done) / n, 4) if n else None,
        round((late_done + open_overdue) / n, 4) if n else None,
    )


def as_dict(m: Measure, now: datetime) -> dict[str, Any]:
    return {
        "id": m.id,
        "ticket": m.ticket_id,
        "term": m.term,
        "kind": m.kind,
        "action": m.action,
        "owner": m.owner,
        "department": m.department,
        "due_at": m.due_at,
        "status": m.status,
        "overdue": m.status in OPEN and m.due_at < now,
        "created_at": m.created_at,
        "created_by": m.created_by,
        "completed_at": m.completed_at,
        "record": m.record,
    }


def measures_of(s: Session, ticket_id: str) -> list[Measure]:
    return list(
        s.scalars(select(Measure).where(Measure.ticket_id == ticket_id).order_by(Measure.id))
    )
