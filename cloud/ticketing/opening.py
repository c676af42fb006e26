"""Opening tickets and keeping open ones current with their affected units.

``decisions.py`` decides which ticket a fault's state calls for; this module writes it:

- **Opening** (:func:`new_ticket`, :func:`open_batch_ticket`): graded (severity, priority) and
  routed (departments) by the policy, due within the acknowledge deadline. One not-closed ticket
  per key is a database rule (partial unique indexes, ``models.py``): if another worker opened the
  same batch ticket first, this one updates the winner's ticket instead.
- **Folding** (:func:`fold_device_tickets`): when a batch ticket opens (or comes back), the open
  device tickets of that batch and fault are closed with the history note "merged into PF…" and
  their evidence carried over, so the engineer works one ticket. Folding is a system action
  outside the user lifecycle table.
- **Counts never shrink on their own** (:func:`refresh`). ``affected_devices`` counts the units
  that were affected while the ticket was open; a unit whose fault clears stays listed with
  ``"active": false`` and the history notes the recovery, which is what verification needs.
  Severity and priority may rise automatically, never fall; a raised priority can pull ``due_at``
  forward while the ticket is still unacknowledged.
- ``detected_at`` is the event time of the earliest finding among the ticket's devices (the ``ts``
  at which evidence first sufficed; the detector's ``onset_ts`` estimate is kept per device).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.ticketing.context import utc
from cloud.ticketing.cycles import restage
from cloud.ticketing.history import ChangeKind, HistoryKind, TicketChange, change, write_history
from cloud.ticketing.ids import next_ticket_id
from cloud.ticketing.joining import adopt, count_complaint
from cloud.ticketing.lifecycle import Action, Status, check_action
from cloud.ticketing.models import Ticket
from cloud.ticketing.policy import PRIORITY_ORDER, SEVERITY_ORDER, BatchResult, TicketPolicy
from cloud.ticketing.verification import withdraw_fix
from contract.faults import category as fault_category

#: the bases of units a batch test lists with no alarm of their own: drifting beyond the pooled
#: shift test's level, or short of their model's other batches (the peer level test)
UNALARMED = ("pooled", "peers")


def new_ticket(
    s: Session,
    policy: TicketPolicy,
    *,
    scope: str,
    model: str,
    batch: str,
    device: str | None,
    fault: str,
    r: BatchResult,
    devices: list[dict[str, Any]],
    share: float,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> Ticket | None:
    """Insert a ticket; None if another not-closed ticket for the same key already exists.
    ``extra``: more evidence (which test opened it, the pooled test's numbers); ``note``: the
    history's opening note (default: the batch test's name)."""
    category = fault_category(fault)
    severity, priority = _grade(policy, category, len(devices), share)
    departments = list(policy.departments(fault, category, model))
    try:
        with s.begin_nested():
            ticket = Ticket(
                id=next_ticket_id(s, now),
                scope=scope,
                model=model,
                batch=batch,
                device=device,
                fault=fault,
                category=category,
                severity=severity,
                priority=priority,
                department=departments[0],
                departments=departments,
                status=Status.OPEN.value,
                affected_devices=len(devices),
                batch_devices=r.units,
                detected_at=utc(min(e["first_ts"] for e in devices)),
                opened_at=now,
                due_at=now + policy.ack_deadline(priority),
                updated_at=now,
                evidence=_evidence(policy, devices, r, []) | dict(extra or {}),
                cycle=0,
                cycle_at=now,
            )
            s.add(ticket)
            s.flush()
    except IntegrityError:
        return None
    note = r.test if note is None else note
    write_history(s, ticket, now, HistoryKind.OPENED, to_status=Status.OPEN, note=note)
    return ticket


def open_batch_ticket(
    s: Session,
    policy: TicketPolicy,
    model: str,
    fault: str,
    r: BatchResult,
    entries: list[dict[str, Any]],
    now: datetime,
    pooled: Mapping[str, Any] | None = None,
) -> list[TicketChange]:
    """Open the batch ticket of (``model``, ``r.batch``, ``fault``) over ``entries`` and fold
    the batch's device tickets into it (or update the ticket another worker opened first).
    Its evidence names the test that opened it (``opened_by``): the alarm count test's
    ``r.test``, or, given ``pooled`` (``BatchFinding.as_evidence``), the pooled shift test,
    whose numbers are kept under ``pooled``."""
    folded = _open_device_tickets(s, model, r.batch, fault)
    devices = {e["device"]: e for e in entries}
    for old in folded:  # carry over evidence of units that have recovered meanwhile
        for e in old.evidence.get("devices", []):
            devices.setdefault(e["device"], {**e, "active": False})
    ticket = new_ticket(
        s,
        policy,
        scope="batch",
        model=model,
        batch=r.batch,
        device=None,
        fault=fault,
        r=r,
        devices=list(devices.values()),
        share=len(devices) / r.units if r.units else 0.0,
        now=now,
        extra={"opened_by": r.test}
        if pooled is None
        else {"opened_by": pooled["test"], "pooled": dict(pooled)},
        note=None if pooled is None else f"{pooled['test']}: p_adjusted={pooled['p_adjusted']:.3g}",
    )
    if ticket is None:  # another worker opened it first: update theirs instead
        winner = s.scalars(
            select(Ticket).where(
                Ticket.scope == "batch",
                Ticket.model == model,
                Ticket.batch == r.batch,
                Ticket.fault == fault,
                Ticket.status != Status.CLOSED,
            )
        ).one()
        if pooled is not None:
            winner.evidence = {**winner.evidence, "pooled": dict(pooled)}
        return refresh(s, policy, winner, r, entries, now)
    p_adjusted = r.p_adjusted if pooled is None else pooled["p_adjusted"]
    changes = [change(ChangeKind.OPENED, ticket, f"p_adjusted={p_adjusted:.3g}")]
    return changes + fold_device_tickets(s, ticket, now)


def _open_device_tickets(
    s: Session, model: str | None, batch: str | None, fault: str | None, source: str = "telemetry"
) -> list[Ticket]:
    return list(
        s.scalars(
            select(Ticket)
            .where(
                Ticket.scope == "device",
                Ticket.model == model,
                Ticket.batch == batch,
                Ticket.fault == fault,
                Ticket.status != Status.CLOSED,
                Ticket.source == source,
            )
            .order_by(Ticket.opened_at, Ticket.id)
        )
    )


def fold_device_tickets(s: Session, ticket: Ticket, now: datetime) -> list[TicketChange]:
    """Close the batch's open device tickets into ``ticket``, carrying their units over;
    tickets from people stay open (each has a customer to call back) and join it instead."""
    for child in _open_device_tickets(s, ticket.model, ticket.batch, ticket.fault, "feedback"):
        if child.parent != ticket.id:
            adopt(s, ticket, child, now)
    folded = _open_device_tickets(s, ticket.model, ticket.batch, ticket.fault)
    if not folded:
        return []
    changes = []
    devices = {e["device"]: e for e in ticket.evidence.get("devices", [])}
    for old in folded:
        for e in old.evidence.get("devices", []):
            devices.setdefault(e["device"], {**e, "active": False})
        note = f"merged into {ticket.id}"
        target = check_action(old.status, Action.MERGED, old.id)
        write_history(
            s, old, now, HistoryKind.MERGED, from_status=old.status, to_status=target, note=note
        )
        old.status, old.updated_at = target.value, now
        withdraw_fix(s, old, now, note)
        changes.append(change(ChangeKind.MERGED, old, note))
        for complaint in old.evidence.get("complaints", []):  # repeats it had taken
            count_complaint(s, ticket, old.id, complaint, now)
    merged = ticket.evidence.get("merged_tickets", []) + [old.id for old in folded]
    entries = sorted(devices.values(), key=lambda e: (e["first_ts"], e["device"]))
    ticket.evidence = {**ticket.evidence, "devices": entries, "merged_tickets": merged}
    ticket.affected_devices = len(entries)
    note = "absorbed " + ", ".join(old.id for old in folded)
    write_history(s, ticket, now, HistoryKind.ABSORBED, note=note)
    return changes


def refresh(
    s: Session,
    policy: TicketPolicy,
    t: Ticket,
    r: BatchResult,
    entries: list[dict[str, Any]],
    now: datetime,
) -> list[TicketChange]:
    """Bring an open ticket up to date with the currently affected units of its scope."""
    old = {e["device"]: e for e in t.evidence.get("devices", [])}
    current = {e["device"]: e for e in entries}
    # a unit listed by a pooled test (``UNALARMED``: drifting, or short of its peers, no alarm of
    # its own) whose own fault becomes active is added now, not reactivated
    pooled = {d for d, e in old.items() if e.get("basis") in UNALARMED}
    added = sorted(d for d in current if d not in old or d in pooled)
    reactivated = sorted(
        d for d in current if d in old and not old[d]["active"] and d not in pooled
    )
    recovered = sorted(d for d, e in old.items() if e["active"] and d not in current)
    resized = r.units != t.batch_devices
    if not (added or reactivated or recovered or resized):
        return []
    devices = dict(old)
    devices.update(current)
    for d in recovered:
        devices[d] = {**old[d], "active": False}
    kept = t.evidence  # complaints, the unit named by a customer, ...
    t.evidence = kept | _evidence(policy, devices.values(), r, kept.get("merged_tickets", []))
    t.affected_devices = len(devices)
    t.batch_devices = r.units
    t.detected_at = utc(min(e["first_ts"] for e in devices.values()))
    t.updated_at = now
    share = len(devices) / r.units if (t.scope == "batch" and r.units) else 0.0
    severity, priority = _grade(policy, t.category, len(devices), share)
    severity = _higher(SEVERITY_ORDER, t.severity, severity)
    priority = _higher(PRIORITY_ORDER, t.priority, priority)
    changes: list[TicketChange] = []
    if severity != t.severity or priority != t.priority:
        note = f"severity {t.severity}→{severity}, priority {t.priority}→{priority}"
        sla = policy.sla
        stage_before = sla.stage(t.status, t.priority)
        if priority != t.priority and t.status in (Status.OPEN, Status.REOPENED):
            t.due_at = min(t.due_at, now + policy.ack_deadline(priority))
        t.severity, t.priority = severity, priority
        if sla.stage(t.status, priority) != stage_before:  # e.g. urgent now: containment
            restage(t, sla, now)
        write_history(s, t, now, HistoryKind.SEVERITY_RAISED, note=note)
        changes.append(change(ChangeKind.SEVERITY_RAISED, t, note))
    data = {"added": added, "reactivated": reactivated, "recovered": recovered}
    if added or reactivated or resized:
        note = f"{t.affected_devices} affected of {t.batch_devices}"
        write_history(s, t, now, HistoryKind.UPDATED, note=note, data=data)
        changes.insert(0, change(ChangeKind.UPDATED, t, note))
    if recovered:
        note = "fault indicator back at baseline: " + ", ".join(recovered)
        write_history(s, t, now, HistoryKind.RECOVERED, note=note, data=data)
        changes.append(change(ChangeKind.RECOVERED, t, note))
    return changes


def _evidence(
    policy: TicketPolicy, devices: Iterable[dict[str, Any]], r: BatchResult, merged: list[str]
) -> dict[str, Any]:
    evidence: dict[str, Any] = r.as_evidence(policy)
    evidence["devices"] = sorted(devices, key=lambda e: (e["first_ts"], e["device"]))
    if merged:
        evidence["merged_tickets"] = merged
    return evidence


def _grade(policy: TicketPolicy, category: str, affected: int, share: float) -> tuple[str, str]:
    severity = policy.severity(category, affected, share)
    return severity, policy.priority(category, severity)


def _higher(order: Mapping[str, int], current: str, proposed: str) -> str:
    return proposed if order.get(proposed, 0) > order.get(current, 0) else current
