"""The closed loop against SQLite and PostgreSQL: fix record, verification from the units' data,
reopening, regression after close, SLA clocks and overdue flags, and concurrent writers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert

from cloud.ticketing.db import make_engine
from cloud.ticketing.errors import InvalidFix
from cloud.ticketing.history import ChangeKind
from cloud.ticketing.lifecycle import IllegalAction
from cloud.ticketing.models import FindingRecord
from cloud.ticketing.service import TicketService
from tests import ticketing_support as support
from tests.ticketing_support import (
    DAY,
    HOUR,
    MODEL,
    NOW_TS,
    Clock,
    dev_id,
    finding,
    open_tickets,
    register_fleet,
    run_together,
)

clock, db_url, engine, svc = support.clock, support.db_url, support.engine, support.svc  # fixtures

FIX_TS = NOW_TS + 2 * HOUR  # the fix applies from here in the units' data
AFFECTED = [dev_id(0, u) for u in range(8)]


def batch_ticket(svc: TicketService) -> str:
    """Batch B0 stands out with 8 of 20 units; the ticket's id."""
    register_fleet(svc)
    for u, device in enumerate(AFFECTED):
        svc.record_finding(finding(device, ts=NOW_TS + u))
    (ticket,) = open_tickets(svc, scope="batch")
    return ticket.id


def work_on(svc: TicketService, tid: str) -> None:
    svc.transition(tid, "acknowledged", actor="ann")
    svc.transition(tid, "in_progress", actor="ann")


def clear(svc: TicketService, devices: list[str], ts: float = FIX_TS + 6 * HOUR) -> list:
    changes = []
    for i, device in enumerate(devices):
        changes += svc.record_finding(finding(device, ts=ts + i, active=False))
    return changes


def test_fix_then_all_units_clear_closes_as_verified(svc: TicketService) -> None:
    tid = batch_ticket(svc)
    t = svc.get_ticket(tid)
    assert (t.severity, t.priority, t.department) == ("III", "urgent", "R&D")
    work_on(svc, tid)

    t = svc.record_fix(tid, description="replaced TXV lot 7", effective_from=FIX_TS, actor="ann")
    assert t.status == "verifying"
    assert (t.fix.devices, t.fix.outcome, t.fix.actor) == (AFFECTED, "pending", "ann")
    assert t.fix.summary == "verifying: 0/8 units back at baseline"
    fix_entry = t.history[-1]
    assert (fix_entry.action, fix_entry.from_status, fix_entry.to_status) == (
        "fix",
        "in_progress",
        "verifying",
    )
    assert "replaced TXV lot 7" in fix_entry.note and fix_entry.data["effective_from"] == FIX_TS

    assert clear(svc, AFFECTED[:7])[-1].kind is ChangeKind.RECOVERED
    t = svc.get_ticket(tid)
    assert t.status == "verifying"
    assert t.fix.summary == "verifying: 7/8 units back at baseline"
    waiting = [u["device"] for u in t.fix.units if u["state"] == "waiting"]
    assert waiting == [AFFECTED[7]]

    changes = clear(svc, AFFECTED[7:])
    assert ChangeKind.VERIFIED in [c.kind for c in changes]
    t = svc.get_ticket(tid)
    assert t.status == "closed"
    assert (t.history[-1].action, t.history[-1].note) == (
        "verified",
        "verified: 8/8 units back at baseline",
    )
    assert t.fix.outcome == "verified" and t.fix.decided_at is not None
    assert open_tickets(svc) == []


def test_clears_already_in_the_database_verify_at_fix_time(svc: TicketService) -> None:
    tid = batch_ticket(svc)
    work_on(svc, tid)
    svc.transition(tid, "resolved", actor="ann", note="cause: TXV lot 7; plan: replace")
    clear(svc, AFFECTED)  # the simulator runs faster than people click
    t = svc.record_fix(tid, description="TXV replaced", effective_from=FIX_TS, actor="ann")
    assert t.status == "closed"
    assert [h.action for h in t.history[-2:]] == ["fix", "verified"]


def test_fix_on_some_units_and_units_recovered_before_it(svc: TicketService) -> None:
    tid = batch_ticket(svc)
    work_on(svc, tid)
    fixed = AFFECTED[:2]
    svc.record_fix(tid, description="x", effective_from=FIX_TS, devices=fixed, actor="a")
    assert svc.get_ticket(tid).fix.devices == fixed
    clear(svc, fixed, ts=FIX_TS - HOUR)  # back at baseline before the fix applied: nothing to clear
    t = svc.get_ticket(tid)
    assert t.status == "closed"
    assert {u["reason"] for u in t.fix.units} == {"not in the fault when the fix applied"}
    # the six unfixed units still in the fault do not open a second ticket on the next finding
    svc.record_finding(finding(dev_id(1, 0), ts=FIX_TS + HOUR))
    assert open_tickets(svc, scope="batch") == []
    # a fixed unit relapsing after the fix brings the same ticket back
    svc.record_finding(finding(fixed[0], ts=FIX_TS + DAY))
    (again,) = open_tickets(svc, scope="batch")
    assert again.id == tid


def test_unit_reporting_the_fault_again_reopens(svc: TicketService, clock: Clock) -> None:
    tid = batch_ticket(svc)
    work_on(svc, tid)
    svc.record_fix(tid, description="re-torqued mounts", effective_from=FIX_TS, actor="ann")
    clear(svc, AFFECTED[:3])
    clock.now += timedelta(hours=5)
    changes = svc.record_finding(finding(AFFECTED[1], ts=FIX_TS + 20 * HOUR))  # back again
    assert ChangeKind.REOPENED in [c.kind for c in changes]
    t = svc.get_ticket(tid)
    assert t.status == "reopened" and t.cycle == 1
    last = t.history[-1] if t.history[-1].action == "verification_failed" else t.history[-2]
    assert last.action == "verification_failed"
    assert last.note.startswith("not verified: 1/8 units failed: ac-0-01 reported the fault")
    assert t.fix.outcome == "failed"
    assert (t.stage, t.due_at) == ("acknowledge", clock.now + timedelta(hours=1))  # re-dispatched
    # the engineer works it again: a second fix, verified this time
    work_on(svc, tid)
    svc.record_fix(tid, description="new mounts", effective_from=FIX_TS + DAY, actor="ann")
    clear(svc, AFFECTED, ts=FIX_TS + 2 * DAY)
    assert svc.get_ticket(tid).status == "closed"


def test_no_clear_within_the_window_reopens(svc: TicketService) -> None:
    tid = batch_ticket(svc)
    work_on(svc, tid)
    svc.record_fix(tid, description="firmware 2.3.1", effective_from=FIX_TS, actor="ann")
    clear(svc, AFFECTED[:6])
    window = svc.policy.verify_window_s
    assert svc.touch_devices({d: FIX_TS + window - 60 for d in AFFECTED}) == []  # not yet
    assert svc.get_ticket(tid).status == "verifying"
    changes = svc.touch_devices({AFFECTED[7]: FIX_TS + window + 60})
    assert [c.kind for c in changes] == [ChangeKind.REOPENED]
    t = svc.get_ticket(tid)
    assert t.status == "reopened"
    failed = next(h for h in reversed(t.history) if h.action == "verification_failed")
    assert (
        failed.note
        == "not verified: 1/8 units failed: ac-0-07 no clear within 48 h of data after the fix"
    )
    # deciding again changes nothing (idempotent)
    before = len(t.history)
    svc.touch_devices({d: FIX_TS + 3 * window for d in AFFECTED})
    svc.check_sla()
    assert len(svc.get_ticket(tid).history) == before


def test_regression_after_close_reopens_the_same_ticket(svc: TicketService) -> None:
    tid = batch_ticket(svc)
    work_on(svc, tid)
    svc.record_fix(tid, description="TXV replaced", effective_from=FIX_TS, actor="ann")
    clear(svc, AFFECTED)
    assert svc.get_ticket(tid).status == "closed"

    # a unit of the batch that was never affected now shows the fault
    changes = svc.record_finding(finding(dev_id(0, 15), ts=FIX_TS + 3 * DAY))
    assert changes[0].kind is ChangeKind.REOPENED and changes[0].ticket_id == tid
    (t,) = open_tickets(svc)
    assert t.id == tid and t.status == "reopened"
    t = svc.get_ticket(tid)
    regression = next(h for h in t.history if h.action == "regression")
    assert regression.note.startswith("regression: ac-0-15 reported cooling_decline")
    assert dev_id(0, 15) in {e["device"] for e in t.evidence["devices"] if e["active"]}
    assert len(svc.tickets(scope="batch").items) == 1  # not duplicated


def test_device_ticket_regression(svc: TicketService) -> None:
    register_fleet(svc)
    device = dev_id(2, 4)
    (change,) = svc.record_finding(finding(device, fault="noise_rise"))
    tid = change.ticket_id
    work_on(svc, tid)
    svc.record_fix(tid, description="fan blade", effective_from=FIX_TS, actor="bo")
    svc.record_finding(finding(device, fault="noise_rise", ts=FIX_TS + HOUR, active=False))
    assert svc.get_ticket(tid).status == "closed"
    changes = svc.record_finding(finding(device, fault="noise_rise", ts=FIX_TS + 5 * DAY))
    assert [(c.kind, c.ticket_id) for c in changes][0] == (ChangeKind.REOPENED, tid)
    assert [t.id for t in open_tickets(svc)] == [tid]


def test_fix_needs_the_right_status_and_units(svc: TicketService) -> None:
    tid = batch_ticket(svc)
    with pytest.raises(IllegalAction, match="cannot fix on ticket .* in status 'open'"):
        svc.record_fix(tid, description="x", effective_from=FIX_TS, actor="a")
    work_on(svc, tid)
    with pytest.raises(InvalidFix, match="not units of KFR-35GW batch B0: ac-1-00"):
        svc.record_fix(tid, description="x", effective_from=FIX_TS, devices=["ac-1-00"], actor="a")
    with pytest.raises(InvalidFix, match="finite"):
        svc.record_fix(tid, description="x", effective_from=float("nan"), actor="a")
    assert svc.get_ticket(tid).status == "in_progress"


def test_reopening_by_hand_withdraws_the_pending_fix(svc: TicketService) -> None:
    tid = batch_ticket(svc)
    work_on(svc, tid)
    svc.record_fix(tid, description="x", effective_from=FIX_TS, actor="a")
    t = svc.transition(tid, "reopened", actor="a", note="wrong lot")
    assert (t.status, t.fix.outcome) == ("reopened", "withdrawn")
    clear(svc, AFFECTED)  # nothing pending any more: the ticket stays reopened
    assert svc.get_ticket(tid).status == "reopened"


def test_concurrent_deciders_decide_once(db_url: str, clock: Clock) -> None:
    engines = [make_engine(db_url) for _ in range(2)]
    services = [TicketService(e, clock) for e in engines]
    tid = batch_ticket(services[0])
    work_on(services[0], tid)
    services[0].record_fix(tid, description="x", effective_from=FIX_TS, actor="a")
    with engines[0].begin() as conn:  # clears land without triggering a decision
        conn.execute(
            insert(FindingRecord),
            [
                dict(device=d, model=MODEL, batch="B0", fault="cooling_decline", ts=FIX_TS + HOUR,
                     onset_ts=FIX_TS, score=0.0, evidence={}, active=False, received_at=clock.now)
                for d in AFFECTED
            ],
        )  # fmt: skip
    errors = run_together(TicketService.check_sla, [(s,) for s in services])
    assert errors == []
    t = services[1].get_ticket(tid)
    assert t.status == "closed"
    assert [h.action for h in t.history].count("verified") == 1
    for e in engines:
        e.dispose()


# --- SLA clocks -------------------------------------------------------------------------------
def test_due_at_follows_the_stage(svc: TicketService, clock: Clock) -> None:
    tid = batch_ticket(svc)  # urgent
    opened = svc.get_ticket(tid).opened_at
    t = svc.get_ticket(tid)
    assert (t.stage, t.due_at) == ("acknowledge", opened + timedelta(hours=1))
    clock.now += timedelta(minutes=30)
    t = svc.transition(tid, "acknowledged", actor="a")
    assert (t.stage, t.due_at) == ("containment", opened + timedelta(hours=24))
    t = svc.transition(tid, "in_progress", actor="a")
    assert (t.stage, t.due_at) == ("cause", opened + timedelta(days=3))
    t = svc.transition(tid, "resolved", actor="a")
    assert (t.stage, t.due_at) == ("fix", opened + timedelta(days=14))
    clock.now += timedelta(days=1)
    t = svc.record_fix(tid, description="x", effective_from=FIX_TS, actor="a")
    assert (t.stage, t.due_at) == ("verification", clock.now + timedelta(hours=48))
    assert not t.overdue


def test_overdue_is_flagged_once_per_stage(svc: TicketService, clock: Clock) -> None:
    tid = batch_ticket(svc)
    assert svc.check_sla().flagged == []
    clock.now += timedelta(hours=2)
    t = svc.get_ticket(tid)
    assert (t.overdue, t.overdue_stage) == (True, "acknowledge")
    report = svc.check_sla()
    assert (tid, "acknowledge") in report.flagged
    assert svc.check_sla().flagged == []  # once
    assert [h.action for h in svc.get_ticket(tid).history].count("overdue") == 1
    svc.transition(tid, "acknowledged", actor="a")  # containment is due in 24 h from opening
    assert svc.check_sla().flagged == []
    clock.now += timedelta(days=1)
    assert (tid, "containment") in svc.check_sla().flagged


def test_two_writers_racing_on_one_batch_open_one_ticket(pg_url: str, clock: Clock) -> None:
    """Acceptance: two cloud-worker-like writers, each with its own service and connection pool,
    record findings of the same batch at the same time on PostgreSQL."""
    engines = [make_engine(pg_url) for _ in range(2)]
    workers = [TicketService(e, clock) for e in engines]
    register_fleet(workers[0], units=40)

    def work(service: TicketService, units: range) -> None:
        for u in units:
            service.record_finding(finding(dev_id(0, u), ts=NOW_TS + u))

    errors = run_together(work, [(workers[0], range(0, 24, 2)), (workers[1], range(1, 24, 2))])
    assert errors == []
    batch = [t for t in open_tickets(workers[1], scope="batch") if t.batch == "B0"]
    assert len(batch) == 1
    assert (batch[0].affected_devices, batch[0].batch_devices) == (24, 40)
    assert open_tickets(workers[1], scope="device") == []  # every early device ticket folded in
    for e in engines:
        e.dispose()
