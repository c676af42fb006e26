"""Tickets from people joining a batch ticket: the child names its ``parent``, and the batch
ticket counts the complaints about its units (ticket, channel, time) in its evidence.

Used when a complaint arrives for a unit whose batch already has an open batch ticket
(``complaints.py``) and when a batch ticket opens over units that customers have already
complained about (``opening.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from cloud.ticketing.history import HistoryKind, write_history
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.models import Ticket


def same_problem(fault: str | None, category: str) -> ColumnElement[bool]:
    """Tickets about the same problem: the same fault, or the same category when neither
    names a fault."""
    if fault is not None:
        return Ticket.fault == fault
    return Ticket.fault.is_(None) & (Ticket.category == category)


def find_batch_ticket(
    s: Session, model: str, batch: str, fault: str | None, category: str
) -> Ticket | None:
    """The not-closed batch ticket of (``model``, ``batch``) for the problem, if any."""
    return s.scalars(
        select(Ticket)
        .where(
            Ticket.scope == "batch",
            Ticket.model == model,
            Ticket.batch == batch,
            same_problem(fault, category),
            Ticket.status != Status.CLOSED,
        )
        .order_by(Ticket.opened_at, Ticket.id)
    ).first()


def adopt(
    s: Session,
    batch: Ticket,
    t: Ticket,
    now: datetime,
    complaints: list[dict[str, Any]] | None = None,
) -> None:
    """Make ``t`` (a ticket from people) a child of the batch ticket ``batch``."""
    t.parent = batch.id
    note = f"joined batch ticket {batch.id}"
    write_history(s, t, now, HistoryKind.JOINED, note=note, data={"parent": batch.id})
    for complaint in complaints if complaints is not None else t.evidence.get("complaints", []):
        count_complaint(s, batch, t.id, complaint, now)


def count_complaint(
    s: Session, batch: Ticket, child: str, complaint: dict[str, Any], now: datetime
) -> None:
    entries = [
        *batch.evidence.get("complaints", []),
        {
            "ticket": child,
            "channel": complaint["channel"],
            "received_at": complaint["received_at"],
        },
    ]
    batch.evidence = {**batch.evidence, "complaints": entries}
    batch.updated_at = now
    note = f"complaint {child} via {complaint['channel']} ({len(entries)} so far)"
    write_history(s, batch, now, HistoryKind.COMPLAINT, note=note, data={"ticket": child})
