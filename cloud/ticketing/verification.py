"""Closed-loop fix verification: the rule as a pure function, and its decisions on tickets.

The rule (:func:`judge`, no database) takes findings in and gives a verdict out.

A fix names units and an ``effective_from`` (event time in the units' own data). Each fixed unit is

- **failed** when it reports the fault ACTIVE with ``ts > effective_from`` (detectors report a fault
  once per episode, so this is the fault standing again after the fix), or when its data runs more
  than ``window_s`` past ``effective_from`` (``last_seen_ts``) without it clearing;
- **cleared** when it reports the fault inactive with ``ts > effective_from`` (the detector found
  the indicator back at the unit's own baseline), or when it was not in the fault at
  ``effective_from`` at all (never affected, or recovered before: nothing to clear, and a later
  relapse still fails it as above);
- **waiting** otherwise.

The fix is verified when every unit is cleared, failed as soon as one unit failed, else pending.
The verdict depends only on the findings log and the units' last event times, never on the order
in which they arrived, so evaluating again is harmless (idempotent).

Applied to tickets (:func:`decide`, :func:`verify_pending`): a fix record (``actions.record_fix``)
moves its ticket to ``verifying`` and is judged at once (the findings may already be in), again
whenever a finding or a ``touch_devices`` concerns a fixed unit, and by ``check_sla`` as a safety
net. Verified closes the ticket ("verified: N/N units back at baseline"); failed reopens it. The
decision is a compare-and-set on the pending fix row, so it is taken once even when several
workers judge the same fix. A person reopening a verifying ticket, or its folding into a batch
ticket, withdraws the pending fix (:func:`withdraw_fix`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.ticketing.closing import close_verified
from cloud.ticketing.context import serialize
from cloud.ticketing.cycles import reopen
from cloud.ticketing.history import ChangeKind, HistoryKind, TicketChange, change
from cloud.ticketing.lifecycle import Action, Status, check_action
from cloud.ticketing.models import Device, FindingRecord, Ticket, TicketFix
from cloud.ticketing.policy import TicketPolicy


# --- the rule ----------------------------------------------------------------------------------
class UnitState(StrEnum):
    CLEARED = "cleared"
    WAITING = "waiting"
    FAILED = "failed"


class Outcome(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"  # reopened by a person, or folded into a batch ticket, while pending


@dataclass(frozen=True, slots=True)
class UnitVerdict:
    device: str
    state: UnitState
    ts: float | None  # event time that decided it (the clearing or the relapse), if any
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {
            "device": self.device,
            "state": self.state.value,
            "ts": self.ts,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    units: tuple[UnitVerdict, ...]

    def count(self, state: UnitState) -> int:
        return sum(u.state is state for u in self.units)

    def summary(self) -> str:
        n = len(self.units)
        if self.outcome is Outcome.VERIFIED:
            return f"verified: {n}/{n} units back at baseline"
        failed = [u for u in self.units if u.state is UnitState.FAILED]
        if self.outcome is Outcome.FAILED:
            return f"not verified: {len(failed)}/{n} units failed: " + "; ".join(
                f"{u.device} {u.reason}" for u in failed
            )
        if n == 0:
            return "waiting for the quality engineer's check: no units' data to judge by"
        return f"verifying: {self.count(UnitState.CLEARED)}/{n} units back at baseline"


def judge_unit(
    device: str,
    findings: Iterable[tuple[float, bool]],
    last_seen_ts: float | None,
    effective_from: float,
    window_s: float,
) -> UnitVerdict:
    """The verdict on one unit from its findings ``(ts, active)`` for the ticket's fault."""
    ordered = sorted(findings)
    after = [(ts, active) for ts, active in ordered if ts > effective_from]
    relapse = next((ts for ts, active in after if active), None)
    if relapse is not None:
        return UnitVerdict(
            device, UnitState.FAILED, relapse, f"reported the fault at {relapse:.0f}"
        )
    cleared = next((ts for ts, active in after if not active), None)
    if cleared is not None:
        return UnitVerdict(device, UnitState.CLEARED, cleared, "fault cleared after the fix")
    before = [active for ts, active in ordered if ts <= effective_from]
    if not before or not before[-1]:
        return UnitVerdict(device, UnitState.CLEARED, None, "not in the fault when the fix applied")
    if last_seen_ts is not None and last_seen_ts - effective_from > window_s:
        hours = window_s / 3600.0
        return UnitVerdict(
            device, UnitState.FAILED, None, f"no clear within {hours:g} h of data after the fix"
        )
    return UnitVerdict(device, UnitState.WAITING, None, "waiting for the fault to clear")


def judge(
    devices: Sequence[str],
    findings: Mapping[str, Iterable[tuple[float, bool]]],
    last_seen: Mapping[str, float],
    effective_from: float,
    window_s: float,
) -> Verdict:
    """The verdict on a fix over ``devices``.

    >>> v = judge(["a", "b"], {"a": [(5.0, True), (20.0, False)]}, {"b": 30.0}, 10.0, 100.0)
    >>> v.outcome.value, v.summary()
    ('verified', 'verified: 2/2 units back at baseline')
    >>> judge(["a"], {"a": [(5.0, True)]}, {"a": 200.0}, 10.0, 100.0).outcome.value
    'failed'
    """
    units = tuple(
        judge_unit(d, findings.get(d, ()), last_seen.get(d), effective_from, window_s)
        for d in devices
    )
    if not units:  # nothing for the data to say: a person judges it
        return Verdict(Outcome.PENDING, units)
    if any(u.state is UnitState.FAILED for u in units):
        return Verdict(Outcome.FAILED, units)
    if all(u.state is UnitState.CLEARED for u in units):
        return Verdict(Outcome.VERIFIED, units)
    return Verdict(Outcome.PENDING, units)


# --- decisions on tickets ------------------------------------------------------------------------
def judge_fix(s: Session, t: Ticket, fix: TicketFix, window_s: float) -> Verdict:
    """The verdict on ``fix`` of ``t`` from the findings log and the units' last event times."""
    findings: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    rows = s.execute(
        select(FindingRecord.device, FindingRecord.ts, FindingRecord.active).where(
            FindingRecord.fault == t.fault, FindingRecord.device.in_(fix.devices)
        )
    )
    for device, ts, active in rows:
        findings[device].append((ts, active))
    last_seen = {
        device: ts
        for device, ts in s.execute(
            select(Device.device, Device.last_seen_ts).where(Device.device.in_(fix.devices))
        )
    }
    return judge(fix.devices, findings, last_seen, fix.effective_from, window_s)


_EFFECTIVE = {"result": "effective"}  # 有效; not effective: 无效; needs further work: 需进一步优化


def decide(
    s: Session, policy: TicketPolicy, t: Ticket, fix: TicketFix, now: datetime
) -> list[TicketChange]:
    """Close (or send to callback) or reopen ``t`` if ``fix`` is decided; the pending row is
    the compare-and-set. A fix with no units is for the quality engineer to judge
    (``verdicts.check_fix``), never the data."""
    if t.status != Status.VERIFYING or not fix.devices:
        return []
    verdict = judge_fix(s, t, fix, policy.verify_window_s)
    if verdict.outcome is Outcome.PENDING:
        return []
    summary = verdict.summary()
    units = [u.as_dict() for u in verdict.units]
    claimed = s.execute(
        update(TicketFix)
        .where(TicketFix.id == fix.id, TicketFix.outcome == Outcome.PENDING.value)
        .values(outcome=verdict.outcome.value, decided_at=now, units=units, note=summary)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        return []  # someone decided it first
    s.refresh(fix)
    data = {"fix": fix.id, "units": units}
    if verdict.outcome is Outcome.VERIFIED:
        return close_verified(s, policy, t, now, note=summary, data=data | _EFFECTIVE)
    check_action(t.status, Action.NOT_VERIFIED, t.id)
    data |= {"result": "not_effective"}
    reopen(s, t, policy.sla, now, HistoryKind.VERIFICATION_FAILED, note=summary, data=data)
    return [change(ChangeKind.REOPENED, t, summary)]


def verify_pending(
    s: Session,
    policy: TicketPolicy,
    now: datetime,
    devices: set[str] | None = None,
    fault: str | None = None,
) -> list[TicketChange]:
    """Decide the pending fixes that concern ``devices`` (all when None) for ``fault``."""
    query = (
        select(TicketFix, Ticket)
        .join(Ticket, Ticket.id == TicketFix.ticket_id)
        .where(TicketFix.outcome == Outcome.PENDING.value)
    )
    if fault is not None:
        query = query.where(Ticket.fault == fault)
    pending = [
        (fix, t)
        for fix, t in s.execute(query)
        if devices is None or not devices.isdisjoint(fix.devices)
    ]
    changes: list[TicketChange] = []
    for fix, t in sorted(pending, key=lambda p: (p[1].model, p[1].fault, p[1].id)):
        serialize(s, t.model, t.fault)
        s.refresh(t, with_for_update=True)
        s.refresh(fix)
        if fix.outcome == Outcome.PENDING:
            changes += decide(s, policy, t, fix, now)
    return changes


def withdraw_fix(s: Session, t: Ticket, now: datetime, note: str) -> None:
    """Mark the pending fix of ``t`` (if any) withdrawn: it will not be decided."""
    s.execute(
        update(TicketFix)
        .where(TicketFix.ticket_id == t.id, TicketFix.outcome == Outcome.PENDING.value)
        .values(outcome=Outcome.WITHDRAWN.value, decided_at=now, note=note)
        .execution_options(synchronize_session=False)
    )
