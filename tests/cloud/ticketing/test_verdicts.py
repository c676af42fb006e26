"""Verdicts on a fix from people (SQLite and PostgreSQL): the quality engineer's check where no
units' data can judge, the customer's callback after the fix is verified, and the re-dispatch a
low score brings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.errors import InvalidFix, TicketConflict
from cloud.ticketing.lifecycle import IllegalAction
from cloud.ticketing.service import TicketService
from tests import ticketing_support as support
from tests.ticketing_support import HOUR, NOW_TS, dev_id, finding, open_tickets, register_fleet

clock, db_url, engine, svc = support.clock, support.db_url, support.engine, support.svc

FIX_TS = NOW_TS + 2 * HOUR
RUDE = "安装师傅态度很差，还多收了200元材料费"


def complaint(svc: TicketService, text: str = RUDE, **fields) -> str:
    return svc.file_feedback(FeedbackIn("hotline", text, **fields)).ticket.id


def fixed(svc: TicketService, tid: str, description: str = "refunded, installer retrained") -> None:
    svc.transition(tid, "acknowledged", actor="cs")
    svc.transition(tid, "in_progress", actor="cs")
    t = svc.record_fix(tid, description=description, effective_from=FIX_TS, actor="lead")
    assert t.status == "verifying" and t.fix.devices == [] and "quality engineer" in t.fix.summary


def test_a_complaint_through_check_callback_redispatch_and_close(svc, clock) -> None:
    tid = complaint(svc, contact="13800138000")
    fixed(svc, tid)
    t = svc.check_fix(tid, result="effective", note="customer refunded", actor="qe")
    assert t.status == "callback" and t.stage == "callback"
    assert t.due_at - clock.now >= timedelta(days=3)  # three working days
    assert t.fix.outcome == "verified" and t.history[-1].data["result"] == "effective"
    t = svc.follow_up(
        tid, "still unhappy with the attitude", customer="张先生", actor="cs", score=2
    )
    assert (t.status, t.cycle) == ("reopened", 1)
    assert t.history[-1].action == "redispatched" and "scored 2" in t.history[-1].note
    assert t.department in t.history[-1].note
    assert [c["score"] for c in t.evidence["callbacks"]] == [2]
    fixed(svc, tid, "apology visit by the branch manager")
    svc.check_fix(tid, result="effective", note=None, actor="qe")
    t = svc.follow_up(tid, "satisfied now", customer="张先生", actor="cs", score=5)
    assert t.status == "closed" and t.history[-1].action == "satisfied"
    assert [c["score"] for c in t.evidence["callbacks"]] == [2, 5]


@pytest.mark.parametrize(
    ("result", "status"), [("not_effective", "reopened"), ("needs_work", "in_progress")]
)
def test_the_check_can_send_the_work_back(svc, result, status) -> None:
    tid = complaint(svc)
    fixed(svc, tid)
    t = svc.check_fix(tid, result=result, note="not yet", actor="qe")
    assert t.status == status and t.fix.outcome == "failed"


def test_a_fix_the_units_data_judges_is_not_for_a_check(svc) -> None:
    register_fleet(svc)
    for u in range(8):
        svc.record_finding(finding(dev_id(0, u), ts=NOW_TS + u))
    (batch,) = open_tickets(svc, scope="batch")
    svc.transition(batch.id, "acknowledged", actor="a")
    svc.transition(batch.id, "in_progress", actor="a")
    svc.record_fix(batch.id, description="TXV", effective_from=FIX_TS, actor="a")
    with pytest.raises(TicketConflict, match="judged by its units' data"):
        svc.check_fix(batch.id, result="effective", note=None, actor="qe")
    with pytest.raises(InvalidFix):
        svc.check_fix(batch.id, result="great", note=None, actor="qe")


def test_a_check_needs_a_verifying_ticket(svc) -> None:
    tid = complaint(svc)
    with pytest.raises(IllegalAction):
        svc.check_fix(tid, result="effective", note=None, actor="qe")


def test_a_verified_batch_fix_calls_back_the_customers_who_complained(svc) -> None:
    register_fleet(svc)
    for u in range(8):
        svc.record_finding(finding(dev_id(0, u), ts=NOW_TS + u))
    (batch,) = open_tickets(svc, scope="batch")
    child = complaint(svc, "空调不制冷，出风口温度18℃(设定16℃)", device=dev_id(0, 1))
    assert svc.get_ticket(child).parent == batch.id
    svc.transition(batch.id, "acknowledged", actor="a")
    svc.transition(batch.id, "in_progress", actor="a")
    svc.record_fix(batch.id, description="TXV", effective_from=FIX_TS, actor="a")
    for u in range(8):
        svc.record_finding(finding(dev_id(0, u), ts=FIX_TS + HOUR + u, active=False))
    assert svc.get_ticket(batch.id).status == "closed"  # a batch ticket has no one to call
    c = svc.get_ticket(child)
    assert c.status == "callback" and c.history[-1].action == "parent_verified"


def test_a_telemetry_ticket_without_customers_still_closes_on_verification(svc) -> None:
    register_fleet(svc)
    svc.record_finding(finding(dev_id(1, 3), ts=NOW_TS))
    (t,) = open_tickets(svc, scope="device")
    svc.transition(t.id, "acknowledged", actor="a")
    svc.transition(t.id, "in_progress", actor="a")
    svc.record_fix(t.id, description="x", effective_from=FIX_TS, actor="a")
    svc.record_finding(finding(dev_id(1, 3), ts=FIX_TS + HOUR, active=False))
    assert svc.get_ticket(t.id).status == "closed"


def test_an_early_score_is_recorded_and_changes_nothing(svc) -> None:
    tid = complaint(svc)
    t = svc.follow_up(tid, "called to say we are on it", customer="c", actor="cs", score=3)
    assert t.status == "open" and t.evidence["callbacks"][0]["score"] == 3
    with pytest.raises(InvalidFix, match="1 to 5"):
        svc.follow_up(tid, "x", customer="c", actor="cs", score=6)


def test_a_callback_not_done_in_time_is_overdue(svc, clock) -> None:
    tid = complaint(svc)
    fixed(svc, tid)
    svc.check_fix(tid, result="effective", note=None, actor="qe")
    clock.now += timedelta(days=6)  # past three working days whatever the weekday
    report = svc.check_sla()
    assert (tid, "callback") in report.flagged
    assert svc.get_ticket(tid).overdue_stage == "callback"
