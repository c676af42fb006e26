"""Feedback from people becomes tickets: classified, routed, joined to its unit's batch ticket,
merged as a repeat, and checked against the unit's telemetry (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from cloud.anomaly.base import Finding
from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.errors import InvalidFeedback, TicketConflict
from cloud.ticketing.models import Feedback, FeedbackCorrection
from tests import ticketing_support as support
from tests.ticketing_support import (
    MODEL,
    NOW_TS,
    T0,
    dev_id,
    open_tickets,
    register_fleet,
)

db_url, engine, svc, clock = support.db_url, support.engine, support.svc, support.clock

PROCEDURE = "空调使用1个月后，制冷效果明显下降，出风口温度18℃(设定16℃)，噪音比初期增大。"
RECEIVED = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)


def complaint(**fields) -> FeedbackIn:
    base = {"channel": "hotline", "text": PROCEDURE, "received_at": RECEIVED}
    return FeedbackIn(**(base | fields))


def decline(device: str, active: bool = True) -> Finding:
    evidence = {"baseline": 11.2, "current": 7.9, "change": -3.3}
    return Finding(device, "cooling_decline", NOW_TS, T0 + 10 * 86_400, 0.9, evidence, active)


@pytest.fixture
def leaking(svc):
    """Batch B0 loses cooling in 8 of 20 units: an open batch ticket."""
    register_fleet(svc)
    for u in range(8):
        svc.record_finding(decline(dev_id(0, u)))
    (batch,) = open_tickets(svc, scope="batch")
    return batch


def test_the_procedures_complaint_joins_the_leaking_batch(svc, leaking) -> None:
    filed = svc.file_feedback(complaint(serial=f"SN-{dev_id(0, 3)}"), actor="cs-1")
    t = filed.ticket
    assert filed.outcome == "opened" and t.id != leaking.id and t.id.startswith("PF202611")
    assert (t.source, t.channel, t.scope, t.device) == ("feedback", "hotline", "device", "ac-0-03")
    assert (t.model, t.batch, t.fault, t.category) == (
        MODEL,
        "B0",
        "cooling_decline",
        "performance",
    )
    assert (t.severity, t.department, t.departments) == ("II", "R&D", ["R&D", "Production"])
    assert t.classification["needs_triage"] is False and 0 < t.classification["confidence"] <= 1
    assert t.detected_at == RECEIVED and t.parent == leaking.id
    assert t.evidence["complaints"][0]["text"] == PROCEDURE  # verbatim
    assert t.evidence["extracted"]["temperatures"][0]["value_c"] == 18.0
    verdict = t.evidence["telemetry"]
    assert verdict["status"] == "confirms"
    assert "fell from 11.2 to 7.9 K since 2023-11-24" in verdict["text"]
    batch = svc.get_ticket(leaking.id)
    assert [c["ticket"] for c in batch.evidence["complaints"]] == [t.id]
    assert batch.history[-1].action == "complaint"


def test_the_same_complaint_for_a_healthy_unit_says_the_data_is_normal(svc, leaking) -> None:
    t = svc.file_feedback(complaint(device=dev_id(2, 5))).ticket
    assert t.parent is None and t.batch == "B2"
    assert t.evidence["telemetry"]["status"] == "normal"
    assert "check installation or usage" in t.evidence["telemetry"]["text"]


def test_a_recovered_unit_is_said_to_have_recovered(svc, leaking) -> None:
    svc.record_finding(Finding(dev_id(0, 1), "cooling_decline", NOW_TS + 3600, T0, 0.0, {}, False))
    t = svc.file_feedback(complaint(device=dev_id(0, 1))).ticket
    assert t.evidence["telemetry"]["status"] == "recovered"


def test_repeats_merge_into_the_open_ticket(svc, leaking, engine) -> None:
    first = svc.file_feedback(complaint(contact="138 0013 8000")).ticket
    assert first.scope == "customer" and first.device is None and first.batch is None
    again = svc.file_feedback(
        complaint(channel="ecommerce", contact="+86 13800138000", text="还是不制冷，出风18度")
    )
    assert again.outcome == "repeat" and again.ticket.id == first.id
    assert again.ticket.repeats == 1 and len(again.ticket.evidence["complaints"]) == 2
    assert "repeat" in [h.action for h in again.ticket.history[-2:]]  # then maybe an alert
    other = svc.file_feedback(complaint(contact="13800138000", text="安装师傅态度很差，乱收费"))
    assert other.outcome == "opened" and other.ticket.category == "service"
    with engine.connect() as conn:
        outcomes = conn.execute(select(Feedback.outcome).order_by(Feedback.id)).scalars().all()
    assert outcomes == ["opened", "repeat", "opened"]


def test_a_customer_naming_no_unit_repeats_the_ticket_of_their_unit(svc, leaking) -> None:
    first = svc.file_feedback(complaint(device=dev_id(0, 2), contact="13800138000")).ticket
    again = svc.file_feedback(
        complaint(channel="ecommerce", contact="138-0013-8000", text="还是不制冷")
    )
    assert again.outcome == "repeat" and again.ticket.id == first.id
    other_unit = svc.file_feedback(complaint(device=dev_id(1, 2), contact="13800138000"))
    assert other_unit.outcome == "opened"  # the same customer's other unit: another problem


def test_filing_the_same_feedback_twice_creates_nothing(svc, leaking, engine) -> None:
    one = svc.file_feedback(complaint(contact="x@example.com"))
    two = svc.file_feedback(complaint(contact="x@example.com"))
    assert (two.outcome, two.ticket.id, two.ticket.repeats) == ("duplicate", one.ticket.id, 0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Feedback)).scalar() == 1


def test_near_identical_words_about_one_unit_from_another_channel_repeat(svc, leaking) -> None:
    unit = dev_id(3, 1)
    first = svc.file_feedback(complaint(device=unit, text="遥控器按了没反应，换了电池也不行。"))
    again = svc.file_feedback(
        complaint(device=unit, channel="online", text="遥控器按了没反应 换了电池也不行")
    )
    assert again.outcome == "repeat" and again.ticket.id == first.ticket.id


def test_a_complaint_about_what_a_device_ticket_already_shows_repeats_it(svc) -> None:
    register_fleet(svc)
    svc.record_finding(decline(dev_id(1, 4)))
    (device_ticket,) = open_tickets(svc, scope="device")
    filed = svc.file_feedback(complaint(device=dev_id(1, 4)))
    assert filed.outcome == "repeat" and filed.ticket.id == device_ticket.id
    assert filed.ticket.source == "telemetry" and filed.ticket.repeats == 1


def test_a_batch_ticket_opening_later_adopts_the_complaints(svc) -> None:
    register_fleet(svc)
    t = svc.file_feedback(complaint(device=dev_id(0, 15))).ticket
    assert t.parent is None
    for u in range(8):
        svc.record_finding(decline(dev_id(0, u)))
    batch = next(x for x in open_tickets(svc) if x.scope == "batch")
    child = svc.get_ticket(t.id)
    assert child.parent == batch.id and child.status == "open"  # not folded: a customer waits
    assert [c["ticket"] for c in svc.get_ticket(batch.id).evidence["complaints"]] == [t.id]


def test_danger_is_safety_and_urgent(svc) -> None:
    t = svc.file_feedback(complaint(text="插头发烫，还有焦味", channel="store")).ticket
    assert (t.category, t.severity, t.priority, t.department) == (
        "safety",
        "III",
        "urgent",
        "Quality",
    )
    assert t.classification["rule"] in ("发烫", "焦味")


def test_a_serial_that_matches_nothing_is_marked(svc, leaking) -> None:
    t = svc.file_feedback(complaint(serial="SN-NOBODY", model="KFR-26GW")).ticket
    assert (t.scope, t.model, t.device) == ("customer", "KFR-26GW", None)
    assert t.evidence["unit"] == {"device": None, "serial": "SN-NOBODY", "matched": False}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"channel": "pigeon"}, "channel"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 20_001}, "text"),
        ({"demand": "money"}, "demand"),
    ],
)
def test_feedback_the_service_cannot_take_names_the_field(svc, fields, field) -> None:
    with pytest.raises(InvalidFeedback) as info:
        svc.file_feedback(complaint(**fields))
    assert info.value.field == field


def test_a_correction_regrades_reroutes_and_is_kept_for_training(svc, leaking, engine) -> None:
    t = svc.file_feedback(complaint(text="外机运行时嗡嗡响得厉害", contact="1")).ticket
    fixed = svc.correct_classification(
        t.id, actor="lead", category="workmanship", fault="noise_rise", severity="II"
    )
    assert (fixed.category, fixed.fault, fixed.severity) == ("workmanship", "noise_rise", "II")
    assert fixed.departments[0] == "Production" and fixed.classification["needs_triage"] is False
    assert fixed.history[-1].action == "reclassified" and fixed.history[-1].actor == "lead"
    with engine.connect() as conn:
        row = conn.execute(select(FeedbackCorrection)).one()
    assert (row.text, row.category, row.fault) == (
        "外机运行时嗡嗡响得厉害",
        "workmanship",
        "noise_rise",
    )
    with pytest.raises(InvalidFeedback, match="not in category"):
        svc.correct_classification(
            t.id, actor="lead", category="service", fault="noise_rise", severity="I"
        )
    with pytest.raises(InvalidFeedback, match="did not come from feedback"):
        svc.correct_classification(
            leaking.id, actor="lead", category="performance", fault=None, severity="I"
        )


def test_a_correction_onto_an_open_key_is_a_conflict(svc) -> None:
    register_fleet(svc)
    svc.record_finding(Finding(dev_id(2, 2), "noise_rise", NOW_TS, T0, 0.9, {}, True))
    t = svc.file_feedback(complaint(device=dev_id(2, 2), text="遥控器失灵")).ticket
    with pytest.raises(TicketConflict, match="already has an open ticket"):
        svc.correct_classification(
            t.id, actor="lead", category="workmanship", fault="noise_rise", severity="I"
        )


def test_the_triage_queue_lists_only_unsure_feedback(svc) -> None:
    sure = svc.file_feedback(complaint()).ticket
    queue = svc.tickets(needs_triage=True).items
    listed = {t.id for t in queue}
    assert sure.id not in listed
    assert all(t.classification["needs_triage"] for t in queue)
    assert sure.id in {t.id for t in svc.tickets(needs_triage=False).items}


# --- batches that stand out by their complaints ------------------------------------------------
DENTS = "外壳凹陷，面板划痕"


def test_complaints_from_one_batch_open_its_batch_ticket(svc) -> None:
    register_fleet(svc)
    filed = [svc.file_feedback(complaint(device=dev_id(1, u), text=DENTS)).ticket for u in range(5)]
    batch = open_tickets(svc, scope="batch")
    assert len(batch) == 1, "later complaints joined the batch ticket the earlier ones opened"
    (b,) = batch
    assert (b.source, b.batch, b.fault, b.category) == ("feedback", "B1", None, "workmanship")
    assert b.evidence["basis"] == "complaints" and b.departments[0] == "Production"
    assert b.affected_devices >= 3 and b.batch_devices == 20
    children = {t.id for t in svc.tickets(parent=b.id).items}
    assert children == {t.id for t in filed}
    assert len(svc.get_ticket(b.id).evidence["complaints"]) == 5


def test_complaints_spread_over_the_model_open_no_batch_ticket(svc) -> None:
    register_fleet(svc)
    for b in range(4):
        svc.file_feedback(complaint(device=dev_id(b, 7), text=DENTS))
    assert open_tickets(svc, scope="batch") == []


def test_telemetry_joins_a_batch_ticket_that_complaints_opened(svc) -> None:
    register_fleet(svc)
    for u in range(5):
        svc.file_feedback(complaint(device=dev_id(2, u)))
    (b,) = open_tickets(svc, scope="batch")
    assert (b.source, b.fault) == ("feedback", "cooling_decline")
    for u in range(10, 18):
        svc.record_finding(decline(dev_id(2, u)))
    (same,) = open_tickets(svc, scope="batch")
    assert same.id == b.id  # one ticket per (model, batch, fault): both kinds of evidence
    assert same.evidence["devices"] and len(same.evidence["complaints"]) == 5
