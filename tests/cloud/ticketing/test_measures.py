"""Corrective and preventive measures, the cause analysis and their clocks (SQLite and
PostgreSQL), and over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.errors import InvalidFix
from cloud.ticketing.service import TicketService
from tests import ticketing_support as support
from tests.ticketing_support import Inbox

clock, db_url, engine, svc = support.clock, support.db_url, support.engine, support.svc


def ticket(svc: TicketService) -> str:
    text = "到货的空调面板有划痕，外壳凹陷"
    return svc.file_feedback(FeedbackIn("dealer", text, contact="d-1")).ticket.id


def test_measures_with_owners_figures_and_the_cause(svc, clock) -> None:
    tid = ticket(svc)
    due = clock.now + timedelta(days=5)
    svc.add_measure(
        tid, term="short", kind="replace", action="replace the 5 panels", owner="王工",
        department="Service", due_at=due, actor="lead",
    )  # fmt: skip
    t = svc.add_measure(
        tid, term="long", kind="process", action="padding in the packing line", owner="李工",
        department="Production", due_at=due + timedelta(days=10), actor="lead",
    )  # fmt: skip
    assert [m["department"] for m in t.measures] == ["Service", "Production"]
    assert t.measure_figures["completion_rate"] == 0.0
    first = t.measures[0]["id"]
    svc.update_measure(tid, first, status="in_progress", record=None, actor="王工")
    clock.now = due + timedelta(days=1)  # done a day late
    t = svc.update_measure(tid, first, status="done", record="replaced on site", actor="王工")
    assert t.measures[0]["status"] == "done" and t.measures[0]["record"] == "replaced on site"
    assert t.measure_figures == {
        "measures": 2, "done": 1, "open_overdue": 0, "completion_rate": 0.5, "delay_rate": 0.5,
    }  # fmt: skip
    with pytest.raises(InvalidFix, match="cannot go from done to in_progress"):
        svc.update_measure(tid, first, status="in_progress", record=None, actor="x")
    with pytest.raises(InvalidFix, match="needs a record"):
        svc.update_measure(tid, t.measures[1]["id"], status="done", record=" ", actor="x")
    t = svc.set_cause(
        tid,
        five_why=["panels scratched", "rubbed in transit", "no padding", "packing spec lacks it"],
        fishbone={"method": ["packing spec"], "material": ["thin film"]},
        summary="packing",
        actor="qe",
    )
    assert t.cause_analysis["five_why"][-1] == "packing spec lacks it"
    assert t.history[-1].action == "cause_analysis"
    figures = svc.measure_figures()
    assert figures["Service"].completion_rate == 1.0 and figures["Service"].delay_rate == 1.0
    assert [m["id"] for m in svc.measures(department="Production")] == [t.measures[1]["id"]]


def test_a_late_measure_is_reminded_then_escalated_once(engine, clock) -> None:
    inbox = Inbox()
    svc = TicketService(engine, clock, notifier=inbox)
    tid = ticket(svc)
    t = svc.add_measure(
        tid, term="long", kind="supplier", action="new film supplier", owner="赵工",
        department="Purchasing", due_at=clock.now + timedelta(days=3), actor="lead",
    )  # fmt: skip
    mid = t.measures[0]["id"]
    assert svc.check_sla().reminded == []  # due in 3 days: no reminder yet
    clock.now += timedelta(days=1, hours=12)
    assert (tid, f"m-soon-{mid}") in svc.check_sla().reminded
    assert svc.check_sla().reminded == []  # once
    clock.now += timedelta(days=2)
    assert (tid, f"m-late-{mid}") in svc.check_sla().reminded
    events = [(p["event"], p.get("department")) for p in inbox.sent if "measure" in p]
    assert events == [("measure_due_soon", "Purchasing"), ("measure_overdue", "Purchasing")]
    history = [h.action for h in svc.get_ticket(tid).history]
    assert "measure_due_soon" in history and "measure_overdue" in history
    assert svc.measures(overdue=True)[0]["id"] == mid


def test_a_stage_near_its_deadline_is_announced_once(engine, clock) -> None:
    inbox = Inbox()
    svc = TicketService(engine, clock, notifier=inbox)
    tid = ticket(svc)
    svc.transition(tid, "acknowledged", actor="a")
    svc.transition(tid, "in_progress", actor="a")  # cause and plan due in 3 days
    clock.now += timedelta(days=2, hours=12)  # 18 h of 72 left: a quarter
    report = svc.check_sla()
    assert (tid, "cause-soon") in report.reminded and report.flagged == []
    assert svc.check_sla().reminded == []
    assert [p["event"] for p in inbox.sent] == ["sla_due_soon"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"term": "mid"}, "term"),
        ({"kind": "prayer"}, "kind"),
        ({"department": "Marketing"}, "department"),
        ({"due_at": "2026-12-01T00:00:00"}, "due_at"),
        ({"due_at": "2300-01-01T00:00:00Z"}, "due_at"),
    ],
)
def test_bad_measures_are_422s_naming_the_field(client: TestClient, body, field) -> None:
    tid = client.post("/api/v1/feedback", json={"channel": "dealer", "text": "外壳凹陷"}).json()
    good = {
        "term": "short", "kind": "repair", "action": "fix", "owner": "w",
        "department": "Service", "due_at": "2026-12-01T00:00:00Z",
    }  # fmt: skip
    r = client.post(f"/api/v1/tickets/{tid['id']}/measures", json=good | body)
    assert r.status_code == 422 and field in r.text


def test_measures_and_cause_over_http(client: TestClient) -> None:
    tid = client.post("/api/v1/feedback", json={"channel": "dealer", "text": "外壳凹陷"}).json()[
        "id"
    ]
    body = {
        "term": "long", "kind": "design", "action": "stiffer casing", "owner": "李工",
        "department": "R&D", "due_at": "2026-12-20T00:00:00+08:00",
    }  # fmt: skip
    r = client.post(f"/api/v1/tickets/{tid}/measures", json=body)
    assert r.status_code == 201, r.text
    mid = r.json()["measures"][0]["id"]
    r = client.patch(f"/api/v1/tickets/{tid}/measures/{mid}", json={"status": "cancelled"})
    assert r.status_code == 422 and "record" in r.text
    r = client.patch(
        f"/api/v1/tickets/{tid}/measures/{mid}", json={"status": "done", "record": "done"}
    )
    assert r.status_code == 200 and r.json()["measure_figures"]["completion_rate"] == 1.0
    assert (
        client.patch(
            f"/api/v1/tickets/{tid}/measures/999", json={"status": "done", "record": "x"}
        ).status_code
        == 404
    )  # noqa: E501
    past_any_key = client.patch(
        f"/api/v1/tickets/{tid}/measures/{2**63}", json={"status": "done", "record": "x"}
    )
    assert past_any_key.status_code == 404  # not a 500 from the database's integer bind
    cause = {"five_why": ["dent", "thin sheet"], "fishbone": {"material": ["0.5 mm sheet"]}}
    r = client.put(f"/api/v1/tickets/{tid}/cause", json=cause)
    assert r.status_code == 200 and r.json()["cause_analysis"]["fishbone"] == cause["fishbone"]
    assert (
        client.put(f"/api/v1/tickets/{tid}/cause", json={"fishbone": {"luck": ["x"]}}).status_code
        == 422
    )  # noqa: E501
    listed = client.get("/api/v1/measures", params={"department": "R&D"}).json()
    assert [m["id"] for m in listed] == [mid]
    figures = client.get("/api/v1/measures/figures").json()
    assert figures == [
        {"department": "R&D", "measures": 1, "done": 1, "open_overdue": 0,
         "completion_rate": 1.0, "delay_rate": 0.0},
    ]  # fmt: skip


def test_the_monthly_report_counts_each_departments_measures(svc, clock) -> None:
    from cloud.ticketing.reports import monthly_report

    tid = ticket(svc)
    due = clock.now + timedelta(days=5)
    for owner, department in (("a", "Service"), ("b", "Service"), ("c", "Purchasing")):
        t = svc.add_measure(
            tid, term="short", kind="repair", action="x", owner=owner, department=department,
            due_at=due, actor="lead",
        )  # fmt: skip
    svc.update_measure(tid, t.measures[0]["id"], status="done", record="done", actor="a")
    svc.update_measure(tid, t.measures[2]["id"], status="cancelled", record="n/a", actor="c")
    report = monthly_report(svc._ctx, clock.now.strftime("%Y-%m")).as_dict()
    rates = {
        d["department"]: (d["measures"], d["measure_completion_rate"])
        for d in report["departments"]
    }  # noqa: E501
    assert rates["Service"] == (2, 0.5)
    assert "Purchasing" not in rates or rates["Purchasing"] == (0, None)


def test_a_stage_announced_due_soon_is_still_flagged_when_overdue(engine, clock) -> None:
    inbox = Inbox()
    svc = TicketService(engine, clock, notifier=inbox)
    tid = ticket(svc)
    svc.transition(tid, "acknowledged", actor="a")
    svc.transition(tid, "in_progress", actor="a")
    clock.now += timedelta(days=2, hours=12)
    assert (tid, "cause-soon") in svc.check_sla().reminded
    clock.now += timedelta(days=1)
    assert (tid, "cause") in svc.check_sla().flagged
    assert [p["event"] for p in inbox.sent] == ["sla_due_soon", "sla_overdue"]
