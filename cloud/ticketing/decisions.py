"""Which tickets a fault's state calls for: the batch test over the model, batch before device,
and regressions after a verified fix.

:func:`evaluate` runs for one device's (model, fault) whenever its state changed; the test itself
is ``policy.compare_batches`` over counts from ``device_faults`` (:func:`batch_counts`). Then:

- **Batch before device.** An open batch ticket for (model, batch, fault) absorbs every newly
  affected unit of that batch. Otherwise a standing-out batch opens one. A unit outside such a
  batch gets a device ticket (if ``policy.device_tickets``). ``opening.py`` writes the tickets.
- **Pooled evidence.** :func:`evaluate_pooled` takes a batch finding of the pooled shift test
  (``cloud/anomaly/pooled.py``, through ``batch_findings.py``): the batch stands out by its
  units' drift, not their alarms; it opens the batch ticket as the count test would (naming
  itself in ``evidence.opened_by``) or adds its evidence to the open one. The peer level test
  (``cloud/anomaly/peers.py``: the batch's units short of the model's other batches from the
  start) comes the same way, its evidence marked ``"kind": "peers"``; its units are listed as
  ``"basis": "peers"`` (short of their peers, no alarm of their own).
- **Regression.** A new episode of the fault in a unit of a batch (or on a device) whose ticket
  was closed as verified, after that fix's ``effective_from``, reopens that ticket instead of
  opening another; units still in the fault that the fix did not cover open nothing new. Tickets
  closed otherwise (dismissed, merged) are not reopened: a new one opens if the data asks for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.ticketing.context import utc
from cloud.ticketing.cycles import reopen
from cloud.ticketing.history import ChangeKind, HistoryKind, TicketChange, change, write_history
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.models import Device, DeviceFault, Ticket, TicketFix
from cloud.ticketing.opening import (
    UNALARMED,
    fold_device_tickets,
    new_ticket,
    open_batch_ticket,
    refresh,
)
from cloud.ticketing.policy import (
    SECONDS_PER_DAY,
    BatchCounts,
    BatchResult,
    TicketPolicy,
    compare_batches,
)
from cloud.ticketing.verification import Outcome


def evaluate(
    s: Session,
    policy: TicketPolicy,
    dev: Device,
    state: DeviceFault,
    now: datetime,
    relapse_ts: float | None = None,
) -> list[TicketChange]:
    """Open or update the tickets of ``dev``'s model for ``state.fault``.

    ``relapse_ts`` is set when this finding starts a new episode of the fault: then a ticket of
    the unit's batch (or the unit) closed as verified may come back as a regression.
    """
    fault = state.fault
    counts = batch_counts(s, policy, dev.model, fault)
    results = compare_batches(counts, policy, background=policy.background_too)
    open_batch = {
        t.batch: t
        for t in s.scalars(
            select(Ticket).where(
                Ticket.scope == "batch",
                Ticket.model == dev.model,
                Ticket.fault == fault,
                Ticket.status != Status.CLOSED,
            )
        )
    }
    changes: list[TicketChange] = []
    covered = False
    for r in results:
        ticket = open_batch.get(r.batch)
        own = r.batch == dev.batch
        if ticket is None and (r.stands_out or (own and relapse_ts is not None)):
            key = {"model": dev.model, "batch": r.batch}
            held, ticket, regression = _after_verified_fix(
                s, policy, "batch", key, fault, dev.device, relapse_ts if own else None, now
            )
            changes += regression
            if held and ticket is None:  # the fix holds: old evidence opens nothing
                covered = covered or own
                continue
        if ticket is None and not r.stands_out:
            continue
        entries = [_entry(st) for st in _active_states(s, dev.model, r.batch, fault)]
        if ticket is None:
            changes += open_batch_ticket(s, policy, dev.model, fault, r, entries, now)
        else:
            changes += refresh(s, policy, ticket, r, entries, now)
            if ticket.id not in {t.id for t in open_batch.values()}:  # came back
                changes += fold_device_tickets(s, ticket, now)
        covered = covered or r.batch == dev.batch
    if not covered:
        result = next(r for r in results if r.batch == dev.batch)
        changes += _device_ticket(s, policy, dev, state, result, now, relapse_ts)
    return changes


def evaluate_pooled(
    s: Session,
    policy: TicketPolicy,
    pooled: Mapping[str, Any],
    model: str,
    batch: str,
    now: datetime,
) -> list[TicketChange]:
    """Open or strengthen the batch ticket of (``model``, ``batch``, ``pooled["fault"]``) on the
    pooled shift test's evidence (``BatchFinding.as_evidence``; ``cloud/anomaly/pooled.py``).

    The ticket lists the batch's units with the fault active (as the alarm count test does) and
    the units the pooled test found beyond its level (``"basis": "pooled"``, ``"active": false``:
    drifting, no alarm of their own). An open ticket gets the pooled evidence (``pooled``) and
    the units; a ticket closed as verified comes back only for evidence after the fix
    (a regression), as for a unit's finding. The same evidence twice changes nothing.
    """
    fault = str(pooled["fault"])
    ts = float(pooled["ts"])
    peers = pooled.get("kind") == "peers"
    counts = batch_counts(s, policy, model, fault)
    every = compare_batches(counts, policy, background=policy.background_too)
    r = next((c for c in every if c.batch == batch), None)
    if r is None:  # the batch has no registered unit here
        return []
    entries = [_entry(st) for st in _active_states(s, model, batch, fault)]
    alarmed = {e["device"] for e in entries}
    for device, shift in dict(pooled["shifts"]).items():
        if device not in alarmed:
            entries.append(_pooled_entry(device, float(shift), ts, peers))
    ticket = s.scalars(
        select(Ticket).where(
            Ticket.scope == "batch",
            Ticket.model == model,
            Ticket.batch == batch,
            Ticket.fault == fault,
            Ticket.status != Status.CLOSED,
        )
    ).one_or_none()
    changes: list[TicketChange] = []
    if ticket is None:
        key = {"model": model, "batch": batch}
        who = "the peer level test" if peers else "the pooled shift test"
        held, ticket, changes = _after_verified_fix(s, policy, "batch", key, fault, who, ts, now)
        if held and ticket is None:
            return []
        if ticket is None:
            return open_batch_ticket(s, policy, model, fault, r, entries, now, pooled=pooled)
        changes += fold_device_tickets(s, ticket, now)
    if ticket.evidence.get("pooled") == dict(pooled):
        return changes  # this evidence is already on the ticket
    ticket.evidence = {**ticket.evidence, "pooled": dict(pooled)}
    listed = {e["device"] for e in ticket.evidence.get("devices", [])}
    changes += refresh(
        s,
        policy,
        ticket,
        r,
        [e for e in entries if e["device"] not in listed or e.get("basis") not in UNALARMED],
        now,
    )
    note = (
        f"peer level test: {pooled['statistic']} of {pooled['units']} units short of the"
        f" model's other batches by {100 * pooled['level']:g}% or more,"
        f" p_adjusted={pooled['p_adjusted']:.3g}"
        if peers
        else f"pooled shift test: {pooled['statistic']} of {pooled['units']} units beyond"
        f" {pooled['level']:g} robust sigma, p_adjusted={pooled['p_adjusted']:.3g}"
    )
    write_history(s, ticket, now, HistoryKind.UPDATED, note=note, data={"pooled": dict(pooled)})
    return [*changes, change(ChangeKind.UPDATED, ticket, note)]


def _pooled_entry(device: str, value: float, ts: float, peers: bool = False) -> dict[str, Any]:
    """A unit listed by a pooled test, no alarm of its own: drifting beyond its level (its
    ``shift``), or short of its model's other batches (its ``shortfall``)."""
    return {
        "device": device,
        "active": False,
        "basis": "peers" if peers else "pooled",
        "first_ts": ts,
        "onset_ts": None,
        "last_ts": ts,
        "score": 0.0,
        "evidence": {"shortfall": value} if peers else {"shift": value},
    }


def batch_counts(
    s: Session,
    policy: TicketPolicy,
    model: str,
    fault: str,
    affected: Mapping[str, int] | None = None,
) -> list[BatchCounts]:
    """Units, exposure (unit-days, each at least ``policy.min_unit_days``) and affected units of
    every batch of ``model`` for ``fault``: units whose fault is active now, or the counts per
    batch in ``affected`` when given (units that people complained about)."""
    days = (Device.last_seen_ts - Device.first_seen_ts) / SECONDS_PER_DAY
    floor = policy.min_unit_days
    unit_days = case((days < floor, floor), else_=days)
    units = s.execute(
        select(Device.batch, func.count(), func.sum(unit_days))
        .where(Device.model == model)
        .group_by(Device.batch)
        .order_by(Device.batch)
    ).all()
    if affected is None:
        affected = dict(
            s.execute(
                select(Device.batch, func.count())
                .join(DeviceFault, DeviceFault.device == Device.device)
                .where(
                    Device.model == model,
                    DeviceFault.fault == fault,
                    DeviceFault.active.is_(True),
                )
                .group_by(Device.batch)
            ).all()
        )
    return [
        BatchCounts(batch, int(n), float(exposure or 0.0), int(affected.get(batch, 0)))
        for batch, n, exposure in units
    ]


def _after_verified_fix(
    s: Session,
    policy: TicketPolicy,
    scope: str,
    key: Mapping[str, str],
    fault: str,
    who: str,
    ts: float | None,
    now: datetime,
) -> tuple[bool, Ticket | None, list[TicketChange]]:
    """``(held, ticket, changes)`` for a key with no ticket open.

    ``held`` when the key's latest ticket was closed as verified: then only a new episode
    after the fix (``ts``, reported by ``who``: a device, or the pooled batch test) brings it
    back, reopened as a regression (``ticket``); units still in the fault that the fix did not
    cover open nothing new.
    """
    query = select(Ticket).where(
        Ticket.scope == scope, Ticket.fault == fault, Ticket.status == Status.CLOSED
    )
    for column, value in key.items():
        query = query.where(getattr(Ticket, column) == value)
    last = s.scalars(query.order_by(Ticket.opened_at.desc(), Ticket.id.desc()).limit(1)).first()
    if last is None:
        return False, None, []
    fix = s.scalars(
        select(TicketFix).where(TicketFix.ticket_id == last.id).order_by(TicketFix.id.desc())
    ).first()
    if fix is None or fix.outcome != Outcome.VERIFIED or fix.cycle != last.cycle:
        return False, None, []  # dismissed or merged, not fixed
    if ts is None or ts <= fix.effective_from:
        return True, None, []
    note = (
        f"regression: {who} reported {fault} at {utc(ts).isoformat()} "
        f"(event time), after the fix verified on {fix.decided_at:%Y-%m-%d %H:%M} UTC"
    )
    data = {"device": who, "ts": ts, "fix": fix.id}
    try:
        with s.begin_nested():
            reopen(s, last, policy.sla, now, HistoryKind.REGRESSION, note=note, data=data)
    except IntegrityError:  # another ticket for the key is open meanwhile: it takes the unit
        return False, None, []
    return True, last, [change(ChangeKind.REOPENED, last, note)]


def _active_states(s: Session, model: str, batch: str, fault: str) -> list[DeviceFault]:
    return list(
        s.scalars(
            select(DeviceFault)
            .join(Device, Device.device == DeviceFault.device)
            .where(
                Device.model == model,
                Device.batch == batch,
                DeviceFault.fault == fault,
                DeviceFault.active.is_(True),
            )
            .order_by(DeviceFault.first_ts, DeviceFault.device)
        )
    )


def _device_ticket(
    s: Session,
    policy: TicketPolicy,
    dev: Device,
    state: DeviceFault,
    r: BatchResult,
    now: datetime,
    relapse_ts: float | None = None,
) -> list[TicketChange]:
    ticket = s.scalars(
        select(Ticket).where(
            Ticket.scope == "device",
            Ticket.device == dev.device,
            Ticket.fault == state.fault,
            Ticket.status != Status.CLOSED,
        )
    ).one_or_none()
    entries = [_entry(state)] if state.active else []
    changes: list[TicketChange] = []
    if ticket is None and state.active:
        key = {"device": dev.device}
        held, ticket, changes = _after_verified_fix(
            s, policy, "device", key, state.fault, dev.device, relapse_ts, now
        )
        if held and ticket is None:
            return []
    if ticket is not None:
        return changes + refresh(s, policy, ticket, r, entries, now)
    if not (state.active and policy.device_tickets):
        return []
    ticket = new_ticket(
        s,
        policy,
        scope="device",
        model=dev.model,
        batch=dev.batch,
        device=dev.device,
        fault=state.fault,
        r=r,
        devices=entries,
        share=0.0,  # one unit is not a share of its batch
        now=now,
    )
    return [] if ticket is None else [change(ChangeKind.OPENED, ticket)]


def _entry(state: DeviceFault) -> dict[str, Any]:
    """A device's line in a ticket's evidence."""
    return {
        "device": state.device,
        "active": state.active,
        "first_ts": state.first_ts,
        "onset_ts": state.onset_ts,
        "last_ts": state.last_ts,
        "score": state.score,
        "evidence": dict(state.evidence),
    }
