"""Batches that stand out by what people say: complaints open a batch ticket themselves.

Appearance and material defects, and faults of units whose sensors cannot see them, never reach
the detectors; the complaints about them can still point at one production batch. When a
complaint ticket opens for a registered unit and its batch has no open batch ticket for the same
problem (the same fault, or the same category without one), the batch test of ``policy.py`` runs
over *complaining units*: per batch of the model, the distinct units with a not-closed complaint
ticket about that problem, against the batch's exposure (unit-days in the field, from the units'
birth and last messages). The same exposure-aware test and thresholds as for telemetry (adjusted
p-value below ``alpha``, at least ``min_affected`` units), so a few complaints spread evenly over
a model open nothing, and several from one young batch do.

The batch ticket that opens has ``source = "feedback"`` and ``evidence.basis = "complaints"``;
it adopts the batch's complaint tickets as children (``parent``) and is routed like feedback of
its category (``cloud.feedback.classify.departments``). When telemetry later finds the same
fault in that batch it refreshes the same ticket (one not-closed ticket per (model, batch,
fault)), so its evidence holds both the units' data and the complaints.

Only registered units count: a complaint whose unit is not known has no batch.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.feedback.classify import departments
from cloud.ticketing.decisions import batch_counts
from cloud.ticketing.history import HistoryKind, write_history
from cloud.ticketing.ids import next_ticket_id
from cloud.ticketing.joining import adopt, same_problem
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.models import Device, Ticket
from cloud.ticketing.policy import TicketPolicy, compare_batches


def complaining_units(s: Session, model: str, fault: str | None, category: str) -> dict[str, int]:
    """Per batch of ``model``: distinct units with a not-closed complaint ticket about the
    problem."""
    rows = s.execute(
        select(Device.batch, func.count(func.distinct(Ticket.device)))
        .join(Device, Device.device == Ticket.device)
        .where(
            Ticket.source == "feedback",
            Ticket.scope == "device",
            Ticket.status != Status.CLOSED,
            Device.model == model,
            same_problem(fault, category),
        )
        .group_by(Device.batch)
    ).all()
    return {batch: int(n) for batch, n in rows}


def open_if_standing_out(
    s: Session, policy: TicketPolicy, t: Ticket, now: datetime
) -> Ticket | None:
    """Open the batch ticket of complaint ticket ``t``'s batch if the batch stands out by its
    complaints; the new ticket, or None."""
    if t.model is None or t.batch is None:
        return None
    affected = complaining_units(s, t.model, t.fault, t.category)
    if affected.get(t.batch, 0) < policy.min_affected:
        return None  # the test cannot pass: spare the query
    counts = batch_counts(s, policy, t.model, t.fault or t.category, affected=affected)
    r = next((r for r in compare_batches(counts, policy) if r.batch == t.batch), None)
    if r is None or not r.stands_out:
        return None
    children = list(
        s.scalars(
            select(Ticket)
            .join(Device, Device.device == Ticket.device)
            .where(
                Ticket.source == "feedback",
                Ticket.scope == "device",
                Ticket.status != Status.CLOSED,
                Ticket.parent.is_(None),
                Device.model == t.model,
                Device.batch == t.batch,
                same_problem(t.fault, t.category),
            )
            .order_by(Ticket.detected_at, Ticket.id)
        )
    )
    severity = policy.severity(t.category, r.affected, r.share)
    if t.category == "safety":
        severity = "III"
    priority = policy.priority(t.category, severity)
    routed = list(departments(t.category, t.fault))
    evidence = r.as_evidence(policy) | {"basis": "complaints", "devices": []}
    try:
        with s.begin_nested():
            batch = Ticket(
                id=next_ticket_id(s, now),
                scope="batch",
                model=t.model,
                batch=t.batch,
                device=None,
                fault=t.fault,
                category=t.category,
                severity=severity,
                priority=priority,
                department=routed[0],
                departments=routed,
                status=Status.OPEN.value,
                affected_devices=r.affected,
                batch_devices=r.units,
                detected_at=min(c.detected_at for c in children),
                opened_at=now,
                due_at=now + policy.ack_deadline(priority),
                updated_at=now,
                evidence=evidence,
                cycle=0,
                cycle_at=now,
                source="feedback",
                repeats=0,
            )
            s.add(batch)
            s.flush()
    except IntegrityError:  # telemetry opened it meanwhile: the next complaint joins it
        return None
    note = (
        f"{r.affected} of {r.units} units complained about "
        f"{t.fault or t.category}: p_adjusted={r.p_adjusted:.3g}"
    )
    write_history(s, batch, now, HistoryKind.OPENED, to_status=Status.OPEN, note=note)
    for child in children:
        adopt(s, batch, child, now)
    return batch
