"""TicketService: detector findings in, quality tickets out.

Flow of :meth:`TicketService.record_finding`: store the finding (``findings`` log), update the
device's current state for that fault (``device_faults``; an older finding arriving late does not
overwrite a newer state), then re-evaluate the finding's (model, fault) across all batches of the
model (see ``policy.py`` for the test) and open or update tickets. Everything happens in one
transaction and the changes are returned so the worker can log them.

Choices worth knowing:

- **Unregistered devices.** A finding for a device with no birth message yet is stored with model
  and batch unknown and opens no ticket: without a batch there is nothing to compare with. When
  the device registers, its earlier findings get its model and batch and its active faults are
  evaluated then (``register_device`` returns the resulting changes).
- **Batch before device.** An open batch ticket for (model, batch, fault) absorbs every newly
  affected unit of that batch. Otherwise a standing-out batch opens one. A unit outside such a batch
  gets a device ticket (if ``policy.device_tickets``). When a batch ticket opens, the open device
  tickets of that batch and fault are *folded* into it: closed with the history note
  "merged into PF…", their evidence carried over, so the engineer works one ticket. (Folding is a
  system action outside the user lifecycle table.)
- **Counts never shrink on their own.** ``affected_devices`` counts the units that were affected
  while the ticket was open; a unit whose fault clears (an inactive finding) stays listed with
  ``"active": false`` and the ticket's history notes the recovery, which is what verification needs.
  Severity and priority may rise automatically, never fall; a raised priority can pull ``due_at``
  forward while the ticket is still unacknowledged.
- **One ticket per key, enforced by the database.** Partial unique indexes (``models.py``) reject a
  second not-closed ticket; if another worker wins the race, this one updates the winner's ticket.
- ``detected_at`` is the event time of the earliest finding among the ticket's devices (the ``ts``
  at which evidence first sufficed; the detector's ``onset_ts`` estimate is kept per device).

Closing the loop (``lifecycle.py`` has the moves, ``verification.py`` the rule):

- **Fix record.** :meth:`record_fix` stores what was done, on which units (default: every affected
  unit) and from which event time it applies, and moves the ticket to ``verifying``.
- **Verification from data.** The fix is judged at once (the findings may already be in) and again
  whenever a finding or a ``touch_devices`` concerns a fixed unit, and by :meth:`check_sla`
  as a safety net. Verified closes the ticket ("verified: N/N units back at baseline"); a unit with
  the fault again, or without a clear within ``verify_window_s`` of its own data, reopens it. The
  decision is a compare-and-set on the pending fix row, so it is taken once.
- **Regression.** A new episode of the fault in a unit of a batch (or on a device) whose ticket
  was closed as verified, after that fix's ``effective_from``, reopens that ticket instead of
  opening another. Tickets closed otherwise (dismissed, merged) are not reopened: a new one opens
  if the data asks for it.
- **SLA.** ``due_at`` is the deadline of the current stage (``sla.py``); :meth:`check_sla` flags
  overdue tickets once per stage and cycle (history "overdue") and delivers escalations.
- **Concurrency.** On PostgreSQL every change to the tickets of one (model, fault) takes a
  transaction-scoped advisory lock first, so concurrent workers and the API evaluate one after the
  other and each sees what the previous one committed (SQLite's ``BEGIN IMMEDIATE`` gives the same
  for the whole file). The unique indexes stay the last line of defence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.anomaly.base import Finding
from cloud.ticketing import overdue, queries, tokens
from cloud.ticketing.context import Clock, Context, serialize, utc
from cloud.ticketing.cycles import reopen, restage
from cloud.ticketing.errors import InvalidFix, TicketConflict, TicketNotFound
from cloud.ticketing.escalation import Notifier
from cloud.ticketing.history import (
    ChangeKind,
    HistoryKind,
    TicketChange,
    change,
    write_history,
)
from cloud.ticketing.ids import next_ticket_id
from cloud.ticketing.lifecycle import Action, Status, check_action, check_transition
from cloud.ticketing.models import (
    Device,
    DeviceFault,
    FindingRecord,
    Ticket,
    TicketFix,
)
from cloud.ticketing.overdue import SlaReport
from cloud.ticketing.policy import (
    PRIORITY_ORDER,
    SECONDS_PER_DAY,
    SEVERITY_ORDER,
    BatchCounts,
    BatchResult,
    TicketPolicy,
    compare_batches,
)
from cloud.ticketing.queries import detail
from cloud.ticketing.tokens import Principal
from cloud.ticketing.verification import Outcome, decide, verify_pending, withdraw_fix
from cloud.ticketing.views import TicketPage, TicketView
from contract.faults import category as fault_category


# --- values in and out ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device's identity as announced in its birth message (CONTRACTS.md §1)."""

    device: str
    product: str
    model: str
    batch: str
    serial: str
    firmware: str
    first_seen_ts: float
    last_seen_ts: float


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


def _higher(order: Mapping[str, int], current: str, proposed: str) -> str:
    return proposed if order.get(proposed, 0) > order.get(current, 0) else current


# --- the service ---------------------------------------------------------------------------------
class TicketService:
    """Turns findings into tickets and serves them; holds no state beyond the database."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        policy: TicketPolicy | None = None,
        *,
        notifier: Notifier | None = None,
    ) -> None:
        self._ctx = Context(engine, clock, policy or TicketPolicy(), notifier)
        self.engine = engine
        self.policy = self._ctx.policy
        self.notifier = notifier
        self._sessions = self._ctx.sessions
        self._readers = self._ctx.readers
        self._now = self._ctx.now

    # --- devices ---------------------------------------------------------------------------
    def register_device(self, record: DeviceRecord) -> list[TicketChange]:
        """Insert or update a device from its birth message (idempotent).

        A new device, or one whose model or batch changed, adopts its earlier findings and has its
        active faults evaluated; the resulting ticket changes are returned.
        """
        now = self._now()
        with self._sessions.begin() as s:
            dev = s.get(Device, record.device)
            placed = dev is None or (dev.model, dev.batch) != (record.model, record.batch)
            if dev is None:
                dev = Device(**{f: getattr(record, f) for f in DeviceRecord.__slots__})
                s.add(dev)
            else:
                dev.product, dev.model, dev.batch = record.product, record.model, record.batch
                dev.serial, dev.firmware = record.serial, record.firmware
                dev.first_seen_ts = min(dev.first_seen_ts, record.first_seen_ts)
                dev.last_seen_ts = max(dev.last_seen_ts, record.last_seen_ts)
            if not placed:
                return []
            s.flush()
            s.execute(
                update(FindingRecord)
                .where(FindingRecord.device == dev.device, FindingRecord.model.is_(None))
                .values(model=dev.model, batch=dev.batch)
            )
            states = s.scalars(
                select(DeviceFault).where(
                    DeviceFault.device == dev.device, DeviceFault.active.is_(True)
                )
            ).all()
            changes: list[TicketChange] = []
            for state in sorted(states, key=lambda st: st.fault):
                serialize(s, dev.model, state.fault)
                changes += self._evaluate(s, dev, state, now)
            return changes

    def touch_devices(self, last_seen: Mapping[str, float]) -> list[TicketChange]:
        """Advance each device's last event time seen (never moves it back); unknown ids ignored.

        A unit under verification that has now run past the window without clearing fails its
        fix; the resulting changes are returned.
        """
        if not last_seen:
            return []
        table = Device.__table__
        stmt = (
            update(table)
            .where(table.c.device == bindparam("b_device"))
            .where(table.c.last_seen_ts < bindparam("b_ts"))
            .values(last_seen_ts=bindparam("b_ts"))
        )
        with self._sessions.begin() as s:
            s.connection().execute(
                stmt, [{"b_device": d, "b_ts": float(ts)} for d, ts in last_seen.items()]
            )
            return verify_pending(s, self.policy, self._now(), devices=set(last_seen))

    # --- findings --------------------------------------------------------------------------
    def record_finding(self, finding: Finding) -> list[TicketChange]:
        """Store ``finding``, re-evaluate its (model, fault) and open or update tickets."""
        now = self._now()
        with self._sessions.begin() as s:
            dev = s.get(Device, finding.device)
            s.add(
                FindingRecord(
                    device=finding.device,
                    model=dev.model if dev else None,
                    batch=dev.batch if dev else None,
                    fault=finding.fault,
                    ts=finding.ts,
                    onset_ts=finding.onset_ts,
                    score=finding.score,
                    evidence={k: float(v) for k, v in finding.evidence.items()},
                    active=finding.active,
                    received_at=now,
                )
            )
            state = s.get(DeviceFault, (finding.device, finding.fault))
            if state is not None and finding.ts < state.last_ts:
                # a late, older finding: the newer state stands, but the log may decide a fix
                return verify_pending(s, self.policy, now, {finding.device}, finding.fault)
            new_episode = finding.active and (state is None or not state.active)
            state = self._apply_finding(s, state, finding)
            if dev is None:
                return []
            dev.last_seen_ts = max(dev.last_seen_ts, finding.ts)
            s.flush()
            serialize(s, dev.model, finding.fault)
            changes = verify_pending(s, self.policy, now, {finding.device}, finding.fault)
            relapse_ts = finding.ts if new_episode else None
            return changes + self._evaluate(s, dev, state, now, relapse_ts)

    @staticmethod
    def _apply_finding(s: Session, state: DeviceFault | None, f: Finding) -> DeviceFault:
        evidence = {k: float(v) for k, v in f.evidence.items()}
        if state is None:
            state = DeviceFault(
                device=f.device,
                fault=f.fault,
                active=f.active,
                first_ts=f.ts,
                onset_ts=f.onset_ts,
                last_ts=f.ts,
                score=f.score,
                evidence=evidence,
            )
            s.add(state)
            return state
        if f.active and not state.active:  # a new episode of the fault
            state.first_ts, state.onset_ts = f.ts, f.onset_ts
        state.active, state.last_ts, state.score, state.evidence = f.active, f.ts, f.score, evidence
        return state

    # --- evaluation ------------------------------------------------------------------------
    def _batch_counts(self, s: Session, model: str, fault: str) -> list[BatchCounts]:
        days = (Device.last_seen_ts - Device.first_seen_ts) / SECONDS_PER_DAY
        floor = self.policy.min_unit_days
        unit_days = case((days < floor, floor), else_=days)
        units = s.execute(
            select(Device.batch, func.count(), func.sum(unit_days))
            .where(Device.model == model)
            .group_by(Device.batch)
            .order_by(Device.batch)
        ).all()
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

    def _evaluate(
        self,
        s: Session,
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
        results = compare_batches(self._batch_counts(s, dev.model, fault), self.policy)
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
                held, ticket, regression = self._after_verified_fix(
                    s, "batch", key, fault, dev, relapse_ts if own else None, now
                )
                changes += regression
                if held and ticket is None:  # the fix holds: old evidence opens nothing
                    covered = covered or own
                    continue
            if ticket is None and not r.stands_out:
                continue
            entries = [_entry(st) for st in self._active_states(s, dev.model, r.batch, fault)]
            if ticket is None:
                changes += self._open_batch_ticket(s, dev.model, fault, r, entries, now)
            else:
                changes += self._refresh(s, ticket, r, entries, now)
                if ticket.id not in {t.id for t in open_batch.values()}:  # came back
                    changes += self._fold_device_tickets(s, ticket, now)
            covered = covered or r.batch == dev.batch
        if not covered:
            result = next(r for r in results if r.batch == dev.batch)
            changes += self._device_ticket(s, dev, state, result, now, relapse_ts)
        return changes

    def _after_verified_fix(
        self,
        s: Session,
        scope: str,
        key: Mapping[str, str],
        fault: str,
        dev: Device,
        ts: float | None,
        now: datetime,
    ) -> tuple[bool, Ticket | None, list[TicketChange]]:
        """``(held, ticket, changes)`` for a key with no ticket open.

        ``held`` when the key's latest ticket was closed as verified: then only a new episode
        after the fix (``ts``) brings it back, reopened as a regression (``ticket``); units still
        in the fault that the fix did not cover open nothing new.
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
            f"regression: {dev.device} reported {fault} at {utc(ts).isoformat()} "
            f"(event time), after the fix verified on {fix.decided_at:%Y-%m-%d %H:%M} UTC"
        )
        data = {"device": dev.device, "ts": ts, "fix": fix.id}
        try:
            with s.begin_nested():
                reopen(s, last, self.policy.sla, now, HistoryKind.REGRESSION, note=note, data=data)
        except IntegrityError:  # another ticket for the key is open meanwhile: it takes the unit
            return False, None, []
        return True, last, [change(ChangeKind.REOPENED, last, note)]

    @staticmethod
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

    def _evidence(
        self, devices: Iterable[dict[str, Any]], r: BatchResult, merged: list[str]
    ) -> dict[str, Any]:
        evidence: dict[str, Any] = r.as_evidence(self.policy)
        evidence["devices"] = sorted(devices, key=lambda e: (e["first_ts"], e["device"]))
        if merged:
            evidence["merged_tickets"] = merged
        return evidence

    def _grade(self, category: str, affected: int, share: float) -> tuple[str, str]:
        severity = self.policy.severity(category, affected, share)
        return severity, self.policy.priority(category, severity)

    def _new_ticket(
        self,
        s: Session,
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
    ) -> Ticket | None:
        """Insert a ticket; None if another not-closed ticket for the same key already exists."""
        category = fault_category(fault)
        severity, priority = self._grade(category, len(devices), share)
        departments = list(self.policy.departments(fault, category, model))
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
                    due_at=now + self.policy.ack_deadline(priority),
                    updated_at=now,
                    evidence=self._evidence(devices, r, []),
                    cycle=0,
                    cycle_at=now,
                )
                s.add(ticket)
                s.flush()
        except IntegrityError:
            return None
        write_history(s, ticket, now, HistoryKind.OPENED, to_status=Status.OPEN, note=r.test)
        return ticket

    def _open_batch_ticket(
        self,
        s: Session,
        model: str,
        fault: str,
        r: BatchResult,
        entries: list[dict[str, Any]],
        now: datetime,
    ) -> list[TicketChange]:
        folded = self._open_device_tickets(s, model, r.batch, fault)
        devices = {e["device"]: e for e in entries}
        for old in folded:  # carry over evidence of units that have recovered meanwhile
            for e in old.evidence.get("devices", []):
                devices.setdefault(e["device"], {**e, "active": False})
        ticket = self._new_ticket(
            s,
            scope="batch",
            model=model,
            batch=r.batch,
            device=None,
            fault=fault,
            r=r,
            devices=list(devices.values()),
            share=len(devices) / r.units if r.units else 0.0,
            now=now,
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
            return self._refresh(s, winner, r, entries, now)
        changes = [change(ChangeKind.OPENED, ticket, f"p_adjusted={r.p_adjusted:.3g}")]
        return changes + self._fold_device_tickets(s, ticket, now)

    @staticmethod
    def _open_device_tickets(s: Session, model: str, batch: str, fault: str) -> list[Ticket]:
        return list(
            s.scalars(
                select(Ticket)
                .where(
                    Ticket.scope == "device",
                    Ticket.model == model,
                    Ticket.batch == batch,
                    Ticket.fault == fault,
                    Ticket.status != Status.CLOSED,
                )
                .order_by(Ticket.opened_at, Ticket.id)
            )
        )

    def _fold_device_tickets(self, s: Session, ticket: Ticket, now: datetime) -> list[TicketChange]:
        """Close the batch's open device tickets into ``ticket``, carrying their units over."""
        folded = self._open_device_tickets(s, ticket.model, ticket.batch, ticket.fault)
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
        merged = ticket.evidence.get("merged_tickets", []) + [old.id for old in folded]
        entries = sorted(devices.values(), key=lambda e: (e["first_ts"], e["device"]))
        ticket.evidence = {**ticket.evidence, "devices": entries, "merged_tickets": merged}
        ticket.affected_devices = len(entries)
        write_history(
            s,
            ticket,
            now,
            HistoryKind.ABSORBED,
            note="absorbed " + ", ".join(old.id for old in folded),
        )
        return changes

    def _refresh(
        self,
        s: Session,
        t: Ticket,
        r: BatchResult,
        entries: list[dict[str, Any]],
        now: datetime,
    ) -> list[TicketChange]:
        """Bring an open ticket up to date with the currently affected units of its scope."""
        old = {e["device"]: e for e in t.evidence.get("devices", [])}
        current = {e["device"]: e for e in entries}
        added = sorted(d for d in current if d not in old)
        reactivated = sorted(d for d in current if d in old and not old[d]["active"])
        recovered = sorted(d for d, e in old.items() if e["active"] and d not in current)
        resized = r.units != t.batch_devices
        if not (added or reactivated or recovered or resized):
            return []
        devices = dict(old)
        devices.update(current)
        for d in recovered:
            devices[d] = {**old[d], "active": False}
        t.evidence = self._evidence(devices.values(), r, t.evidence.get("merged_tickets", []))
        t.affected_devices = len(devices)
        t.batch_devices = r.units
        t.detected_at = utc(min(e["first_ts"] for e in devices.values()))
        t.updated_at = now
        share = len(devices) / r.units if (t.scope == "batch" and r.units) else 0.0
        severity, priority = self._grade(t.category, len(devices), share)
        severity = _higher(SEVERITY_ORDER, t.severity, severity)
        priority = _higher(PRIORITY_ORDER, t.priority, priority)
        changes: list[TicketChange] = []
        if severity != t.severity or priority != t.priority:
            note = f"severity {t.severity}→{severity}, priority {t.priority}→{priority}"
            sla = self.policy.sla
            stage_before = sla.stage(t.status, t.priority)
            if priority != t.priority and t.status in (Status.OPEN, Status.REOPENED):
                t.due_at = min(t.due_at, now + self.policy.ack_deadline(priority))
            t.severity, t.priority = severity, priority
            if sla.stage(t.status, priority) != stage_before:  # e.g. urgent now: containment
                restage(t, self.policy.sla, now)
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

    def _device_ticket(
        self,
        s: Session,
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
            held, ticket, changes = self._after_verified_fix(
                s, "device", key, state.fault, dev, relapse_ts, now
            )
            if held and ticket is None:
                return []
        if ticket is not None:
            return changes + self._refresh(s, ticket, r, entries, now)
        if not (state.active and self.policy.device_tickets):
            return []
        ticket = self._new_ticket(
            s,
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

    # --- reading ---------------------------------------------------------------------------
    def tickets(
        self,
        *,
        status: str | None = None,
        scope: str | None = None,
        model: str | None = None,
        batch: str | None = None,
        fault: str | None = None,
        severity: str | None = None,
        device: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> TicketPage:
        """Tickets newest first (by opening time), filtered, one page at a time.

        ``cursor`` is the ``next`` of the previous page; raises :class:`InvalidCursor`.
        """
        return queries.tickets(
            self._ctx,
            status=status,
            scope=scope,
            model=model,
            batch=batch,
            fault=fault,
            severity=severity,
            device=device,
            limit=limit,
            cursor=cursor,
        )

    def get_ticket(self, ticket_id: str) -> TicketView | None:
        """One ticket with its history and latest fix, or None."""
        return queries.get_ticket(self._ctx, ticket_id)

    # --- people's actions ------------------------------------------------------------------
    def transition(
        self, ticket_id: str, to: Status | str, *, actor: str, note: str | None = None
    ) -> TicketView:
        """Move a ticket along the lifecycle; raises IllegalTransition, TicketNotFound,
        TicketConflict (reopening while another ticket for the same key is open)."""
        now = self._now()
        with self._sessions.begin() as s:
            t = s.get(Ticket, ticket_id, with_for_update=True)
            if t is None:
                raise TicketNotFound(ticket_id)
            current = Status(t.status)
            target = check_transition(current, to, t.id)
            if target is Status.REOPENED:  # to be acknowledged again, clocks restart
                try:
                    with s.begin_nested():
                        reopen(
                            s,
                            t,
                            self.policy.sla,
                            now,
                            HistoryKind.TRANSITION,
                            actor=actor,
                            note=note,
                        )
                except IntegrityError as exc:
                    raise TicketConflict(
                        f"cannot reopen {ticket_id}: another ticket for the same "
                        f"{'(model, batch, fault)' if t.scope == 'batch' else '(device, fault)'} "
                        "is open; work on that one"
                    ) from exc
                withdraw_fix(s, t, now, f"withdrawn: ticket reopened by {actor}")
            else:
                t.status, t.updated_at = target.value, now
                restage(t, self.policy.sla, now)
                write_history(
                    s, t, now, HistoryKind.TRANSITION, actor=actor, from_status=current,
                    to_status=target, note=note,
                )  # fmt: skip
            return self._reload(s, t, now)

    def _reload(self, s: Session, t: Ticket, now: datetime) -> TicketView:
        s.flush()
        s.refresh(t)
        return detail(s, self.policy, t, now)

    def comment(self, ticket_id: str, text: str, *, actor: str) -> TicketView:
        """Add a comment to a ticket's history."""
        return self._note(ticket_id, HistoryKind.COMMENT, text, actor=actor)

    def follow_up(self, ticket_id: str, note: str, *, customer: str, actor: str) -> TicketView:
        """Record a customer follow-up (the procedure's review step) in the ticket's history."""
        return self._note(
            ticket_id, HistoryKind.FOLLOWUP, note, actor=actor, data={"customer": customer}
        )

    def _note(
        self,
        ticket_id: str,
        kind: HistoryKind,
        note: str,
        *,
        actor: str,
        data: dict[str, Any] | None = None,
    ) -> TicketView:
        now = self._now()
        with self._sessions.begin() as s:
            t = s.get(Ticket, ticket_id)
            if t is None:
                raise TicketNotFound(ticket_id)
            t.updated_at = now
            write_history(s, t, now, kind, actor=actor, note=note, data=data)
            return self._reload(s, t, now)

    # --- fix and verification --------------------------------------------------------------
    def record_fix(
        self,
        ticket_id: str,
        *,
        description: str,
        effective_from: float,
        devices: Iterable[str] | None = None,
        actor: str,
    ) -> TicketView:
        """Record what was done on which units from which event time; the ticket goes to verifying.

        Raises TicketNotFound, IllegalAction (status allows no fix), InvalidFix (units outside
        the ticket, no units, or a non-finite time). The fix is judged at once.
        """
        if not math.isfinite(effective_from):
            raise InvalidFix("effective_from must be a finite time")
        now = self._now()
        with self._sessions.begin() as s:
            t = s.get(Ticket, ticket_id)
            if t is None:
                raise TicketNotFound(ticket_id)
            serialize(s, t.model, t.fault)
            s.refresh(t, with_for_update=True)
            target = check_action(t.status, Action.FIX, t.id)
            units = self._fix_units(s, t, devices)
            fix = TicketFix(
                ticket_id=t.id,
                cycle=t.cycle,
                recorded_at=now,
                actor=actor,
                description=description,
                devices=units,
                effective_from=float(effective_from),
                outcome=Outcome.PENDING.value,
                units=[],
            )
            s.add(fix)
            current = t.status
            t.status, t.updated_at = target.value, now
            restage(t, self.policy.sla, now)
            s.flush()
            note = f"fix on {len(units)} unit(s) from {utc(effective_from).isoformat()}: "
            data = {"fix": fix.id, "devices": units, "effective_from": fix.effective_from}
            write_history(
                s, t, now, HistoryKind.FIX, actor=actor, from_status=current, to_status=target,
                note=note + description, data=data,
            )  # fmt: skip
            decide(s, self.policy, t, fix, now)
            return self._reload(s, t, now)

    @staticmethod
    def _fix_units(s: Session, t: Ticket, devices: Iterable[str] | None) -> list[str]:
        affected = [e["device"] for e in t.evidence.get("devices", [])]
        units = sorted(set(affected if devices is None else devices))
        if not units:
            raise InvalidFix(f"ticket {t.id} lists no affected units; name the fixed units")
        if t.scope == "device":
            outside = [d for d in units if d != t.device]
        else:
            known = set(
                s.scalars(
                    select(Device.device).where(
                        Device.model == t.model, Device.batch == t.batch, Device.device.in_(units)
                    )
                )
            )
            outside = [d for d in units if d not in known]
        if outside:
            where = f"device {t.device}" if t.scope == "device" else f"{t.model} batch {t.batch}"
            raise InvalidFix(f"not units of {where}: {', '.join(outside[:10])}")
        return units

    # --- SLA -------------------------------------------------------------------------------
    def check_sla(self, now: datetime | None = None) -> SlaReport:
        """Flag overdue tickets once per stage and cycle, deliver escalations, re-judge fixes.

        Safe to call from several processes at once: the unique (ticket, cycle, stage) index
        makes the flag once-only and deliveries are claimed before they are sent.
        """
        return overdue.check_sla(self._ctx, now)

    # --- tokens ----------------------------------------------------------------------------
    def ensure_token(self, token: str, *, name: str, role: str) -> None:
        """Make ``token`` valid with ``role`` (idempotent); used to bootstrap the admin token."""
        tokens.ensure_token(self._ctx, token, name=name, role=role)

    def create_token(self, *, name: str, role: str) -> str:
        """A new random token for ``role``; only its digest is stored."""
        return tokens.create_token(self._ctx, name=name, role=role)

    def authenticate(self, token: str) -> Principal | None:
        return tokens.authenticate(self._ctx, token)
