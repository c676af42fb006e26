"""The monthly quality report (CONTRACTS.md §4.3): its numbers agree with the tickets the API
lists for the month, computed here independently from the API's ticket list and ticket details
(SQLite and PostgreSQL); an empty month is an empty report; a bad month is a 422; the page and
the PDF (with its Chinese labels) for a bearer token and for the pages' cookie sign-in."""

from __future__ import annotations

import io
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from pypdf.generic import NameObject
from sqlalchemy.orm import Session

from cloud.anomaly.base import Finding
from cloud.ticketing.app import create_app
from cloud.ticketing.intake import DeviceRecord
from cloud.ticketing.reports import monthly_report
from cloud.ticketing.service import TicketService
from cloud.ticketing.web import report_pdf
from cloud.ticketing.web.report import render
from qloop.settings import Settings
from tests import ticketing_support as support
from tests.ticketing_support import DAY, Clock

clock, db_url, engine = support.clock, support.db_url, support.engine

ADMIN = "report-admin-secret"
MAY = (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC))
MAY_TS = datetime(2024, 5, 6, 3, 0, tzinfo=UTC).timestamp()
APRIL_TS = datetime(2024, 4, 12, tzinfo=UTC).timestamp()
RESOLVED = {"resolved", "verifying", "callback"}
LABELS = ("问题类型占比", "高频故障TOP5", "责任部门处理效率", "客户满意度趋势", "TOP3问题整改进度")
COMPLAINTS = [  # (text, received at, contact): distinct customers, so none repeats another
    ("用了1个月，制冷效果明显下降，出风口18℃。", "2024-05-03T10:00:00+08:00", "13800000001"),
    ("室外机噪音很大，晚上吵得睡不着。", "2024-05-08T09:30:00+08:00", "13800000002"),
    ("安装师傅态度很差，还多收了200元材料费", "2024-05-09T15:00:00+08:00", "13800000003"),
    ("插头冒烟，有焦味，很危险！", "2024-05-12T20:00:00+08:00", "13800000004"),
    ("外壳有明显划痕，面板颜色不均匀。", "2024-05-20T11:00:00+08:00", "13800000005"),
    ("制冷不行，开了一小时房间还是很热。", "2024-05-21T11:00:00+08:00", "13800000006"),
    ("The unit rattles loudly when the compressor starts.", "2024-05-01T08:00:00+08:00", "c7@x.cn"),
]  # fmt: skip
#: Filed in June: one on each side of the month's end in UTC (07:59 and 08:00 at +08:00).
BOUNDARY = [
    ("遥控器按键失灵，无法调温度。", "2024-06-01T07:59:00+08:00", "13800000008"),
    ("漏水，室内机一直滴水。", "2024-06-01T08:00:00+08:00", "13800000009"),
]


# --- the app and a month of tickets -------------------------------------------------------------
@pytest.fixture
def app(db_url, engine, clock):
    clock.now = datetime(2024, 4, 30, 9, 0, tzinfo=UTC)
    settings = Settings(db=db_url, api_token=ADMIN)
    return create_app(settings.api(), engine=engine, clock=clock)


@pytest.fixture
def client(app) -> TestClient:
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN}"
        yield c


def file(client: TestClient, text: str, received_at: str, contact: str) -> str:
    body = {"channel": "hotline", "text": text, "received_at": received_at,
            "customer": {"name": "客户", "contact": contact}}  # fmt: skip
    r = client.post("/api/v1/feedback", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def fix_and_check(svc: TicketService, clock: Clock, tid: str) -> None:
    """Acknowledge after 1.5 h, start, record a fix 4 h later and judge it effective."""
    clock.now += timedelta(hours=1.5)
    svc.transition(tid, "acknowledged", actor="lead")
    svc.transition(tid, "in_progress", actor="lead")
    clock.now += timedelta(hours=4)
    svc.record_fix(tid, description="done", effective_from=MAY_TS + 10 * DAY, actor="lead")
    svc.check_fix(tid, result="effective", note=None, actor="qe")


def register(svc: TicketService) -> None:
    first, last = datetime(2024, 1, 5, tzinfo=UTC).timestamp(), MAY_TS + 20 * DAY
    for b in range(4):
        for u in range(20):
            svc.register_device(
                DeviceRecord(f"ac-{b}-{u:02d}", "air_conditioner", "KFR-35GW", f"B{b}",
                             f"SN-{b}-{u}", "2.3.0", first, last)
            )  # fmt: skip


@pytest.fixture
def may(app, client, clock) -> dict[str, Any]:
    """April, May and June 2024 of tickets: telemetry and complaints, worked on, called back,
    re-dispatched, some overdue. Returns the May ticket ids by role."""
    svc: TicketService = app.state.service
    # April: a telemetry ticket, a complaint and its callback (scored in April)
    register(svc)
    svc.record_finding(Finding("ac-3-19", "vibration_rise", APRIL_TS, APRIL_TS - DAY, 0.8))
    april = file(client, "空调不制冷了。", "2024-05-01T07:59:00+08:00", "13800000000")
    svc.follow_up(april, "called", customer="客户", actor="cs", score=3)
    # May: a batch of 8 losing cooling, two noisy units, the complaints
    clock.now = datetime(2024, 5, 7, 1, 0, tzinfo=UTC)
    for u in range(8):
        svc.record_finding(Finding(f"ac-0-{u:02d}", "cooling_decline", MAY_TS + u, MAY_TS, 0.9))
    for b in (1, 2):
        svc.record_finding(Finding(f"ac-{b}-05", "noise_rise", MAY_TS + DAY, MAY_TS, 0.8))
    clock.now = datetime(2024, 5, 22, 0, 0, tzinfo=UTC)
    ids = [file(client, *c) for c in COMPLAINTS]
    satisfied, redispatched, resolved = ids[0], ids[1], ids[2]
    fix_and_check(svc, clock, satisfied)
    fix_and_check(svc, clock, redispatched)
    clock.now += timedelta(hours=2)
    svc.follow_up(satisfied, "fixed, thanks", customer="客户", actor="cs", score=5)
    svc.follow_up(redispatched, "still noisy", customer="客户", actor="cs", score=2)
    clock.now += timedelta(hours=30)
    svc.transition(resolved, "acknowledged", actor="lead")
    svc.transition(resolved, "in_progress", actor="lead")
    svc.transition(resolved, "resolved", actor="lead", note="cause: installer")
    batch = next(t.id for t in svc.tickets(scope="batch").items if t.fault == "cooling_decline")
    svc.transition(batch, "acknowledged", actor="lead")
    clock.now = datetime(2024, 5, 29, tzinfo=UTC)
    svc.check_sla()  # what is late by now is flagged overdue
    # June: the complaints at the month's end, and a callback scored in June
    clock.now = datetime(2024, 6, 2, tzinfo=UTC)
    boundary = [file(client, *c) for c in BOUNDARY]
    svc.follow_up(resolved, "called again", customer="客户", actor="cs", score=4)
    return {"ids": ids, "batch": batch, "boundary": boundary, "april": april}


# --- the independent computation ----------------------------------------------------------------
def api_tickets(client: TestClient) -> list[dict[str, Any]]:
    """Every ticket, in detail, as the API gives them."""
    items, cursor = [], None
    while True:
        params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/tickets", params=params).json()
        items += page["items"]
        if not (cursor := page["next"]):
            break
    return [client.get(f"/api/v1/tickets/{t['id']}").json() for t in items]


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def hours(t: dict[str, Any], moved: set[str]) -> float | None:
    """Hours from the ticket's opening to its first history entry moving it into ``moved``."""
    first = min((at(h["at"]) for h in t["history"] if h["to_status"] in moved), default=None)
    return None if first is None else (first - at(t["opened_at"])) / timedelta(hours=1)


def expected(tickets: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, Any]:
    detected = [t for t in tickets if start <= at(t["detected_at"]) < end]
    # device tickets folded into their batch ticket are counted apart (the batch stands for them)
    merged = [t for t in detected if any(h["action"] == "merged" for h in t["history"])]
    month = [t for t in detected if t not in merged]
    per_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in month:
        per_key[t["fault"] or t["category"]].append(t)
    faults = sorted(
        ((k, len(ts), sum(t["affected_devices"] for t in ts)) for k, ts in per_key.items()),
        key=lambda f: (-f[1], -f[2], f[0]),
    )
    departments = {}
    for name in {t["department"] for t in month}:
        led = [t for t in month if t["department"] == name]
        ack = [h for t in led if (h := hours(t, {"acknowledged"})) is not None]
        fixed = [h for t in led if (h := hours(t, RESOLVED)) is not None]
        late = [t for t in led if any(h["action"] == "overdue" for h in t["history"])]
        departments[name] = {
            "tickets": len(led),
            "mean_ack_h": statistics.mean(ack) if ack else None,
            "mean_resolve_h": statistics.mean(fixed) if fixed else None,
            "on_time_rate": 1 - len(late) / len(led),
        }
    scores = [
        h["data"]["score"]
        for t in tickets
        for h in t["history"]
        if h["action"] == "followup" and "score" in h["data"] and start <= at(h["at"]) < end
    ]
    recurred = [
        t for t in month if any(h["action"] in ("regression", "redispatched") for h in t["history"])
    ]
    return {
        "tickets": len(month),
        "merged": len(merged),
        "by_category": Counter(t["category"] for t in month),
        "by_source": Counter(t["source"] for t in month),
        "faults": faults,
        "departments": departments,
        "satisfaction": (
            len(scores),
            statistics.mean(scores) if scores else None,
            sum(s <= 3 for s in scores),
        ),  # fmt: skip
        "recurrence_rate": len(recurred) / len(month) if month else None,
        "statuses": {k: Counter(t["status"] for t in ts) for k, ts in per_key.items()},
    }


def approx(value: float | None) -> Any:
    return None if value is None else pytest.approx(value, abs=0.006)


#: for tests whose subject does not depend on the database: SQLite only
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


# --- tests --------------------------------------------------------------------------------------
def test_the_report_agrees_with_the_tickets_the_api_lists(client, may) -> None:
    r = client.get("/api/v1/reports/monthly", params={"month": "2024-05"})
    assert r.status_code == 200, r.text
    report = r.json()
    want = expected(api_tickets(client), *MAY)
    # by hand: the batch ticket, two device tickets and the seven complaints (one at 00:00 UTC
    # on the 1st, the last at 23:59 UTC on the 31st); the April and June ones stay out
    assert report["month"] == "2024-05"
    assert report["tickets"] == want["tickets"] == 3 + len(COMPLAINTS) + 1
    assert report["merged"] == want["merged"] == 4  # units' tickets before the batch stood out
    assert report["by_source"] == {"telemetry": 3, "feedback": len(COMPLAINTS) + 1}
    assert {k: n for k, n in report["by_category"].items() if n} == want["by_category"]
    assert sum(report["by_category"].values()) == report["tickets"]

    def ranked(faults: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
        return [(f["key"], f["tickets"], f["units"]) for f in faults]

    assert ranked(report["top_faults"]) == want["faults"][:5]
    assert ranked(report["faults"]) == want["faults"]
    by_units = sorted(want["faults"], key=lambda f: (-f[2], -f[1], f[0]))[:5]
    assert ranked(report["top_faults_by_units"]) == by_units
    # by hand: the batch ticket's 8 units lead; complaints naming no unit add none
    assert report["top_faults_by_units"][0] == {"key": "cooling_decline"} | {
        "tickets": dict((k, n) for k, n, _ in want["faults"])["cooling_decline"],
        "units": 8,
    }

    departments = {d["department"]: d for d in report["departments"]}
    assert set(departments) == set(want["departments"])
    for name, d in want["departments"].items():
        got = departments[name]
        assert got["tickets"] == d["tickets"], name
        for field in ("mean_ack_h", "mean_resolve_h", "on_time_rate"):
            assert got[field] == approx(d[field]), (name, field)
        assert got["measure_completion_rate"] is None
    assert [d["tickets"] for d in report["departments"]] == sorted(
        (d["tickets"] for d in report["departments"]), reverse=True
    )
    assert any(d["on_time_rate"] < 1 for d in report["departments"])  # check_sla flagged some
    assert any(d["mean_ack_h"] is not None for d in report["departments"])

    sat = report["satisfaction"]
    assert (sat["responses"], sat["mean_score"], sat["low_scores"]) == (
        want["satisfaction"][0], approx(want["satisfaction"][1]), want["satisfaction"][2]
    )  # fmt: skip
    assert (sat["responses"], sat["mean_score"], sat["low_scores"]) == (2, 3.5, 1)  # 5 and 2
    trend = {p["month"]: p for p in sat["trend"]}
    assert len(sat["trend"]) == 12 and sat["trend"][-1]["month"] == "2024-05"
    assert (trend["2024-04"]["responses"], trend["2024-04"]["mean_score"]) == (1, 3.0)
    assert report["recurrence_rate"] == approx(want["recurrence_rate"])
    assert report["recurrences"] == 1  # the re-dispatched complaint

    assert len(report["top_problems"]) == 3
    for p, (key, n, _units) in zip(report["top_problems"], want["faults"], strict=False):
        assert (p["key"], p["tickets"]) == (key, n)
        assert p["statuses"] == dict(want["statuses"][key])
    ticket_trend = {p["month"]: p for p in report["trend"]}
    assert ticket_trend["2024-05"]["tickets"] == report["tickets"]
    april = expected(api_tickets(client), datetime(2024, 4, 1, tzinfo=UTC), MAY[0])
    assert ticket_trend["2024-04"]["tickets"] == april["tickets"] == 2


def test_a_month_without_tickets_is_an_empty_report(client) -> None:
    r = client.get("/api/v1/reports/monthly", params={"month": "2021-01"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["tickets"] == 0 and set(report["by_category"].values()) == {0}
    assert report["by_source"] == {"telemetry": 0, "feedback": 0}
    assert report["top_faults"] == report["departments"] == report["top_problems"] == []
    assert report["satisfaction"]["responses"] == 0 and report["satisfaction"]["mean_score"] is None
    assert report["recurrence_rate"] is None


@sqlite_only
@pytest.mark.parametrize("month", ["2024-13", "abc", "2024-5", "2024-00", "", "2024-05-01"])
def test_a_bad_month_is_a_422(client, month) -> None:
    r = client.get("/api/v1/reports/monthly", params={"month": month})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "month"]
    assert client.get("/api/v1/reports/monthly").status_code == 422  # month is required
    pdf = client.get("/reports/monthly.pdf", params={"month": month})
    assert pdf.status_code == 422 and pdf.json()["detail"][0]["loc"] == ["query", "month"]


@sqlite_only
def test_the_report_needs_a_token(app) -> None:
    with TestClient(app) as anonymous:
        assert anonymous.get("/api/v1/reports/monthly?month=2024-05").status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert anonymous.get("/reports/monthly.pdf?month=2024-05", headers=bad).status_code == 401
        page = anonymous.get("/reports/monthly?month=2024-05", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")


def _identity_h(resources: Any) -> None:
    for font in (resources.get("/Font") or {}).values():
        font = font.get_object()
        if font.get("/Subtype") == "/Type0":
            font[NameObject("/Encoding")] = NameObject("/Identity-H")
    for xobject in (resources.get("/XObject") or {}).values():
        if "/Resources" in (xobject := xobject.get_object()):
            _identity_h(xobject["/Resources"])


def pdf_text(content: bytes) -> str:
    """The PDF's text as its fonts' ToUnicode maps give it (what a viewer copies or searches),
    without whitespace. fpdf2 embeds a CFF-outline font (Noto CJK) with an explicit encoding
    CMap of two-byte codes, which pypdf's extraction does not read (it takes one byte at a
    time): the reader is told the codes are two bytes, as they are, before extracting."""
    pages = PdfReader(io.BytesIO(content)).pages
    for p in pages:
        _identity_h(p["/Resources"])
    return "".join("".join(p.extract_text() for p in pages).split())


@sqlite_only
def test_the_pdf_for_a_bearer_token_has_the_chinese_labels(client, may) -> None:
    assert report_pdf.find_cjk_font() is not None, "no CJK font: apt-get install fonts-noto-cjk"
    r = client.get("/reports/monthly.pdf", params={"month": "2024-05", "lang": "zh-CN"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
    text = pdf_text(r.content)
    for label in (*LABELS, "月度售后质量报告", "制冷下降", "研发部", "2024-05"):
        assert label in text, label
    assert "Problemtypes" not in text  # one language, the one asked for
    tickets = client.get("/api/v1/reports/monthly", params={"month": "2024-05"}).json()["tickets"]
    assert f"工单{tickets}" in text
    english = pdf_text(client.get("/reports/monthly.pdf", params={"month": "2024-05"}).content)
    assert "Problemtypes" in english and "Top5faults" in english and f"Tickets{tickets}" in english
    assert "问题类型占比" not in english


@sqlite_only
def test_without_a_cjk_font_the_pdf_says_so_in_english(client, monkeypatch) -> None:
    monkeypatch.setattr(report_pdf, "find_cjk_font", lambda: None)
    r = client.get("/reports/monthly.pdf", params={"month": "2021-01", "lang": "zh-CN"})
    assert r.status_code == 200
    text = pdf_text(r.content)
    assert "Monthlyafter-salesqualityreport" in text
    assert "noCJKfontisinstalled" in text and "问题" not in text


@sqlite_only
def test_the_page_and_its_pdf_with_the_cookie_sign_in(app, may) -> None:
    with TestClient(app) as browser:
        r = browser.post("/login", data={"token": ADMIN, "next": "/reports/monthly"},
                         follow_redirects=False)  # fmt: skip
        assert r.status_code == 303 and r.headers["location"] == "/reports/monthly"
        page = browser.get("/reports/monthly")  # the latest month with tickets
        assert page.status_code == 200 and 'id="report-month">2024-06' in page.text
        page = browser.get("/reports/monthly", params={"month": "2024-05"})
        assert page.status_code == 200 and "Problem types" in page.text
        switched = browser.get(
            "/lang", params={"to": "zh-CN", "next": "/reports/monthly?month=2024-05"}
        )
        assert switched.url.path == "/reports/monthly"  # back where the switch was pressed
        page = browser.get("/reports/monthly", params={"month": "2024-05"})  # remembered
        for label in LABELS:
            assert label in page.text, label
        assert page.text.count("<svg") == 5 and 'id="monthly-report"' in page.text
        assert 'href="/reports/monthly.pdf?month=2024-05"' in page.text
        assert "script" not in page.headers["content-security-policy"]
        pdf = browser.get("/reports/monthly.pdf", params={"month": "2024-05"})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        bad = browser.get("/reports/monthly", params={"month": "2024-13"})
        assert bad.status_code == 422 and "month must be YYYY-MM" in bad.text
        empty = browser.get("/reports/monthly", params={"month": "2021-01", "lang": "en"})
        assert empty.status_code == 200 and "No tickets were detected in 2021-01" in empty.text


@sqlite_only
def test_render_gives_the_cli_each_format(app, may) -> None:
    with Session(app.state.service.engine) as s:
        report = monthly_report(s, "2024-05")
    assert render(report, "json").startswith(b"{") and b'"month": "2024-05"' in render(
        report, "json"
    )
    assert render(report, "html").startswith(b"<!doctype html>")
    assert render(report, "pdf").startswith(b"%PDF")
    with pytest.raises(ValueError, match="json, html, pdf"):
        render(report, "xml")  # type: ignore[arg-type]
