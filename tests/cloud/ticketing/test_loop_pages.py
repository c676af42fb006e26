"""The loop on a ticket's page: measures, cause, the engineer's check and the callback, shown
and recorded with the pages' forms by the roles allowed to."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.service import TicketService


@pytest.fixture
def tid(app) -> str:
    svc: TicketService = app.state.service
    t = svc.file_feedback(FeedbackIn("dealer", "到货面板有划痕，外壳凹陷", contact="d"))
    for to in ("acknowledged", "in_progress"):
        svc.transition(t.ticket.id, to, actor="e")
    return t.ticket.id


def post(client: TestClient, path: str, form: dict) -> int:
    return client.post(path, data=form, follow_redirects=False).status_code


def test_an_engineer_works_the_loop_on_the_page(app, engineer, cs, tid) -> None:
    url = f"/tickets/{tid}"
    measure = {
        "term": "short", "kind": "replace", "action": "换面板 <b>", "owner": "王工",
        "department": "Service", "due_date": "2026-11-25",
    }  # fmt: skip
    assert post(engineer, f"{url}/measures", measure) == 303
    page = engineer.get(url).text
    row = re.search(r'<tr data-measure="(\d+)">.*?</tr>', page, re.S)
    assert row and "换面板 &lt;b&gt;" in row.group(0) and "王工" in row.group(0)
    assert 'id="measure-figures"' in page
    assert post(engineer, f"{url}/measures/{row.group(1)}", {"status": "done"}) == 422  # no record
    record = {"status": "done", "record": "已更换"}
    assert post(engineer, f"{url}/measures/{row.group(1)}", record) == 303
    cause = {"five_why": "划伤\n运输摩擦\n无护角", "fishbone_method": "包装规范", "summary": "包装"}
    assert post(engineer, f"{url}/cause", cause) == 303
    page = engineer.get(url).text
    assert "<li>无护角</li>" in page and ">method<" in page and "completion rate 100%" in page
    zh = engineer.get(url, headers={"Accept-Language": "zh-CN"}).text
    assert ">法<" in zh and "完成率 100%" in zh and "纠正与预防措施" in zh and ">已完成<" in zh
    app.state.service.record_fix(tid, description="x", effective_from=1.76e9, actor="e")
    assert 'id="check"' in engineer.get(url).text
    assert post(engineer, f"{url}/verification", {"result": "effective"}) == 303
    page = cs.get(url).text
    assert "Callback due" in page and 'action="/tickets/' + tid + '/followups"' in page
    assert post(cs, f"{url}/measures", measure) == 403  # customer service records callbacks only
    assert post(cs, f"{url}/followups", {"customer": "d", "score": "2", "note": "还有划痕"}) == 303
    assert app.state.service.get_ticket(tid).status == "reopened"
    assert post(cs, f"{url}/followups", {"customer": "d", "score": "x", "note": "n"}) == 422


def test_refusals_are_pages_that_say_why(engineer, tid) -> None:
    url = f"/tickets/{tid}"
    r = engineer.post(f"{url}/verification", data={"result": "effective"}, follow_redirects=False)
    assert r.status_code == 409 and "cannot" in r.text  # not verifying
    bad = {"term": "short", "kind": "design", "action": "a", "owner": "o",
           "department": "Service", "due_date": "2026-11-25"}  # fmt: skip
    r = engineer.post(f"{url}/measures", data=bad, follow_redirects=False)
    assert r.status_code == 422 and "short-term measure is one of" in r.text
    r = engineer.post("/tickets/PF209901999/cause", data={"five_why": "x"}, follow_redirects=False)
    assert r.status_code == 404
    other = TestClient(engineer.app, base_url="http://qloop.test", cookies=engineer.cookies)
    r = other.post(
        f"{url}/cause", data={"five_why": "x"}, headers={"Origin": "http://evil.example"},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 403
