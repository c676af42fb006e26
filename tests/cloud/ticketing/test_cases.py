"""Past cases (SQLite and PostgreSQL): which closed tickets are cases, a new ticket's similar
cases in Chinese and English, whether a fix worked, the queries it costs; and the API and pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from cloud.ticketing.cases import MIN_SHARE
from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.errors import TicketNotFound
from cloud.ticketing.service import TicketService
from cloud.ticketing.web import auth
from tests import ticketing_support as support
from tests.ticketing_support import HOUR, NOW_TS, dev_id, finding, open_tickets, register_fleet

clock, db_url, engine, svc = support.clock, support.db_url, support.engine, support.svc

FIX_TS = NOW_TS + 2 * HOUR
GAS = "空调制冷效果很差，开了两个小时出风口还是18℃，设定16℃"
NOISE = "室内机噪音很大，晚上嗡嗡响，吵得睡不着觉"
DRIP = "The indoor unit is leaking water, it drips onto the floor under the unit"
RUDE = "The installer was rude to my wife and overcharged us for copper pipe"


def complaint(svc: TicketService, text: str) -> str:
    return svc.file_feedback(FeedbackIn("hotline", text)).ticket.id


def work(svc: TicketService, tid: str, fix: str) -> None:
    """Acknowledge, start and record a fix the quality engineer checks effective."""
    svc.transition(tid, "acknowledged", actor="cs")
    svc.transition(tid, "in_progress", actor="cs")
    svc.record_fix(tid, description=fix, effective_from=FIX_TS, actor="lead")
    svc.check_fix(tid, result="effective", note=None, actor="qe")


def solved(
    svc: TicketService, text: str, *, whys: list[str], measure: str, fix: str, kind: str = "repair"
) -> str:
    """A complaint with a cause, a measure and a fix that held: closed by a satisfied customer."""
    tid = complaint(svc, text)
    svc.set_cause(tid, five_why=whys, fishbone={"material": [whys[-1]]}, summary=None, actor="qe")
    due = svc._ctx.now() + timedelta(days=5)
    svc.add_measure(
        tid, term="short", kind=kind, action=measure, owner="王工", department="Service",
        due_at=due, actor="lead",
    )  # fmt: skip
    work(svc, tid, fix)
    assert svc.follow_up(tid, "ok", customer="c", actor="cs", score=5).status == "closed"
    return tid


@pytest.fixture
def past(svc) -> dict[str, str]:
    """Four solved cases, two in Chinese and two in English."""
    return {
        "gas": solved(
            svc, GAS, whys=["制冷差", "冷媒不足", "铜管焊点泄漏"], measure="补焊铜管焊点，加注冷媒",
            fix="更换连接管并加注R32冷媒",
        ),
        "noise": solved(
            svc, NOISE, whys=["噪音大", "风扇叶片松动"], measure="紧固风扇叶片",
            fix="更换贯流风扇",
        ),
        "drip": solved(
            svc, DRIP, whys=["water on the floor", "drain pipe blocked"],
            measure="clear the drain pipe and re-slope it", fix="drain pipe cleared",
        ),
        "rude": solved(
            svc, RUDE, whys=["customer upset", "installer charged for pipe"],
            measure="refund the pipe charge", fix="refunded, installer retrained",
            kind="compensation",
        ),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("空调不怎么制冷了，出风口温度有20℃", "gas"),
        ("空调晚上噪音特别大，嗡嗡的响", "noise"),
        ("Water is dripping from the indoor unit onto our carpet", "drip"),
        ("Your installer overcharged me for the pipe and was rude", "rude"),
    ],
)
def test_a_new_complaint_lists_its_past_case_first(svc, past, text, expected) -> None:
    tid = complaint(svc, text)
    cases = svc.similar_cases(tid)
    assert cases[0].id == past[expected]
    assert tid not in {c.id for c in cases} and len(cases) <= 5
    assert [c.score for c in cases] == sorted((c.score for c in cases), reverse=True)
    best = cases[0]
    assert best.worked and best.fix is not None and best.fix.outcome == "verified"
    assert best.measures[0].action and best.measures[0].status == "planned"
    assert best.root_cause == svc.get_ticket(past[expected]).cause_analysis["five_why"][-1]
    assert all(c.score >= best.score * MIN_SHARE for c in cases)


def test_a_case_that_shares_a_word_or_two_is_not_similar(svc, past) -> None:
    tid = complaint(svc, "空调不怎么制冷了，出风口温度有20℃")
    assert [c.id for c in svc.similar_cases(tid)] == [past["gas"]]
    assert len(svc.search_cases("制冷 噪音")) == 2  # a search lists every match


def test_a_search_finds_cases_by_cause_and_measure(svc, past) -> None:
    assert svc.search_cases("焊点泄漏")[0].id == past["gas"]  # the cause's words
    assert svc.search_cases("drain pipe")[0].id == past["drip"]  # the measure's
    assert svc.search_cases("贯流风扇", k=1)[0].id == past["noise"]  # the fix's
    assert svc.search_cases("遥控器") == [] and svc.search_cases("  ") == []
    with pytest.raises(TicketNotFound):
        svc.similar_cases("PF209901999")


def test_only_closed_tickets_whose_problem_was_solved_are_cases(svc, past) -> None:
    still_open = complaint(svc, GAS + "。")
    dismissed = complaint(svc, GAS + "！")
    svc.transition(dismissed, "acknowledged", actor="cs")
    svc.transition(dismissed, "closed", actor="cs")
    found = {c.id for c in svc.search_cases("制冷 冷媒")}
    assert past["gas"] in found and not {still_open, dismissed} & found


def test_a_telemetry_case_meets_complaints_in_either_language(svc) -> None:
    register_fleet(svc)
    for u in range(8):
        svc.record_finding(finding(dev_id(0, u), ts=NOW_TS + u))
    (batch,) = open_tickets(svc, scope="batch")
    svc.transition(batch.id, "acknowledged", actor="a")
    svc.transition(batch.id, "in_progress", actor="a")
    svc.record_fix(batch.id, description="TXV replaced", effective_from=FIX_TS, actor="a")
    for u in range(8):
        svc.record_finding(finding(dev_id(0, u), ts=FIX_TS + HOUR + u, active=False))
    assert svc.get_ticket(batch.id).status == "closed"
    merged = [t.id for t in svc.tickets(scope="device", limit=500).items]
    for query in ("制冷下降", "cooling decline"):
        (case,) = svc.search_cases(query)
        assert case.id == batch.id and case.worked and case.source == "telemetry"
        assert case.problem.startswith("cooling_decline") and case.fix.description == "TXV replaced"
    assert not set(merged) & {c.id for c in svc.search_cases("cooling")}


def test_a_fix_that_did_not_hold_is_marked(svc) -> None:
    tid = complaint(svc, GAS)
    work(svc, tid, "加注冷媒")
    svc.follow_up(tid, "还是不冷", customer="c", actor="cs", score=2)  # re-dispatched
    work(svc, tid, "更换压缩机")
    svc.follow_up(tid, "好了", customer="c", actor="cs", score=5)
    again = complaint(svc, GAS + "！")
    work(svc, again, "加注冷媒")
    svc.follow_up(again, "又不冷了", customer="c", actor="cs", score=1)
    svc.transition(again, "acknowledged", actor="cs")
    svc.transition(again, "closed", actor="cs")  # dismissed after all: a fix that did not hold
    cases = {c.id: c for c in svc.search_cases("冷媒 压缩机")}
    assert [(f.description, f.worked) for f in cases[tid].fixes] == [
        ("加注冷媒", False),
        ("更换压缩机", True),
    ]
    assert cases[tid].worked and not cases[again].worked


def test_the_index_costs_the_same_queries_whatever_the_number_of_cases(svc, engine, clock) -> None:
    selects: list[str] = []

    def count(_conn, _cursor, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    def queries_for(query: str) -> tuple[int, list[str]]:
        selects.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            found = [c.id for c in svc.search_cases(query)]
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(selects), found

    first = solved(svc, GAS, whys=["冷媒不足"], measure="加注冷媒", fix="补焊")
    assert queries_for("冷媒") == (5, [first])  # what changed, then the cases in four
    for n in range(3):
        solved(svc, f"{GAS} ({n})", whys=["冷媒不足"], measure="加注冷媒", fix="补焊")
    assert queries_for("冷媒")[0] == 5
    assert queries_for("冷媒")[0] == 1  # nothing changed: the index is kept
    clock.now += timedelta(minutes=1)
    svc.set_cause(first, five_why=["电子膨胀阀卡死"], fishbone={}, summary=None, actor="qe")
    assert queries_for("膨胀阀") == (5, [first])  # a case changed: built again


# --- over HTTP ----------------------------------------------------------------------------------
def test_the_api_searches_and_lists_similar_cases(client) -> None:
    service: TicketService = client.app.state.service
    case = solved(
        service, DRIP, whys=["water on the floor", "drain pipe blocked"],
        measure="clear the drain pipe", fix="drain pipe cleared",
    )  # fmt: skip
    new = complaint(service, "Water drips from the unit")
    r = client.get("/api/v1/cases", params={"q": "drain pipe", "limit": 3})
    assert r.status_code == 200
    (item,) = r.json()["items"]
    assert item["id"] == case and item["worked"] is True and item["score"] > 0
    assert item["fix"]["description"] == "drain pipe cleared"
    assert item["measures"][0]["kind"] == "repair" and item["root_cause"] == "drain pipe blocked"
    r = client.get(f"/api/v1/tickets/{new}/similar")
    assert r.status_code == 200 and [c["id"] for c in r.json()["items"]] == [case]
    assert client.get("/api/v1/tickets/PF209901999/similar").status_code == 404
    for bad in ({"q": ""}, {"q": "   "}, {}, {"q": "x", "limit": 0}, {"q": "x" * 501}):
        assert client.get("/api/v1/cases", params=bad).status_code == 422, bad
    assert client.get(f"/api/v1/tickets/{new}/similar?limit=0").status_code == 422
    client.headers.pop("Authorization")
    assert client.get("/api/v1/cases", params={"q": "x"}).status_code == 401


def test_the_ticket_page_shows_similar_cases_and_the_search_page_finds_them(client) -> None:
    service: TicketService = client.app.state.service
    case = solved(
        service, NOISE, whys=["噪音大", "风扇叶片松动"], measure="紧固风扇叶片",
        fix="更换贯流风扇",
    )  # fmt: skip
    new = complaint(service, "室内机噪音大")
    token = client.headers["Authorization"].split()[1]
    client.cookies.set(auth.COOKIE, service.start_session(token))  # signed in to the pages
    page = client.get(f"/tickets/{new}").text
    assert "Similar past cases" in page and f'href="/tickets/{case}"' in page
    assert "相似历史案例" in client.get(f"/tickets/{new}", params={"lang": "zh-CN"}).text
    assert "风扇叶片松动" in page and "紧固风扇叶片" in page and 'data-worked="true"' in page
    search = client.get("/cases", params={"q": "风扇"})
    assert search.status_code == 200 and f'data-id="{case}"' in search.text
    empty = client.get("/cases")
    assert empty.status_code == 200 and 'id="cases"' not in empty.text
    assert "无匹配案例" in client.get("/cases", params={"q": "遥控器", "lang": "zh-CN"}).text
    assert client.get("/cases", params={"q": "x" * 501}).status_code == 422
