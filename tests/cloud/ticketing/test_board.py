"""The dashboard (``board.py``, ``targets.py``, ``/api/v1/board``, ``/dashboard``): its figures
agree with a computation of their own from the API's ticket details (SQLite and PostgreSQL),
open tickets come in triage order, the drill-down narrows everything, targets are read or refused
clearly, two missed weeks raise exactly one alert, and the page is where signing in lands."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud.anomaly.base import Finding
from cloud.ticketing.app import create_app
from cloud.ticketing.board import Board, Filters, check_targets
from cloud.ticketing.context import Context
from cloud.ticketing.intake import DeviceRecord
from cloud.ticketing.policy import TicketPolicy
from cloud.ticketing.reports import monthly_report
from cloud.ticketing.service import TicketService
from cloud.ticketing.sla import SlaPolicy
from cloud.ticketing.targets import DEFAULTS, IsoWeek, Targets, TargetsError, complete_weeks
from qloop.loading import load
from qloop.settings import SettingsError
from tests import ticketing_support as support
from tests.ticketing_support import Clock, Inbox, run_together

clock, db_url, engine = support.clock, support.db_url, support.engine

ADMIN = "board-admin-secret"
VIEWER = "board-viewer-secret"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday of ISO week 47
MONTH = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
#: acknowledge deadlines that differ by priority, so the per-priority limit is exercised
SLA = SlaPolicy(
    ack={"urgent": timedelta(hours=1), "normal": timedelta(hours=3), "low": timedelta(hours=8)}
)
COMPLAINTS = [  # (text, contact): distinct customers, so none repeats another
    ("用了1个月，制冷效果明显下降，出风口18℃。", "13900000001"),
    ("室外机噪音很大，晚上吵得睡不着。", "13900000002"),
    ("插头冒烟，有焦味，很危险！", "13900000003"),
    ("外壳有明显划痕，面板颜色不均匀。", "13900000004"),
    ("安装师傅态度很差，还多收了200元材料费", "13900000005"),
    ("制冷不行，开了一小时房间还是很热。", "13900000006"),
]
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


# --- the app and a month of tickets -------------------------------------------------------------
@pytest.fixture
def app(db_url, engine, clock):
    config = load("api", {"db": db_url, "api_token": ADMIN, "journal": ""}).api()
    config = dataclasses.replace(config, policy=TicketPolicy(sla=SLA))
    return create_app(config, engine=engine, clock=clock)


@pytest.fixture
def client(app) -> TestClient:
    with TestClient(app, base_url="http://qloop.test") as c:
        c.headers["Authorization"] = f"Bearer {ADMIN}"
        yield c


def file(client: TestClient, text: str, contact: str) -> str:
    body = {"channel": "hotline", "text": text, "customer": {"name": "客户", "contact": contact}}
    r = client.post("/api/v1/feedback", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def fix_and_check(svc: TicketService, clock: Clock, tid: str) -> None:
    """Acknowledge after 10 minutes, start, record a fix and judge it effective: callback due."""
    clock.now += timedelta(minutes=10)
    svc.transition(tid, "acknowledged", actor="lead")
    svc.transition(tid, "in_progress", actor="lead")
    clock.now += timedelta(hours=2)
    svc.record_fix(tid, description="done", effective_from=clock.now.timestamp(), actor="lead")
    svc.check_fix(tid, result="effective", note=None, actor="qe")


def measure(svc: TicketService, tid: str, department: str, due: datetime) -> int:
    t = svc.add_measure(
        tid, term="short", kind="repair", action="x", owner="o", department=department,
        due_at=due, actor="lead",
    )  # fmt: skip
    return t.measures[-1]["id"]


@pytest.fixture
def november(app, client, clock) -> dict[str, Any]:
    """October and November 2026 of tickets: complaints taken up in time, late, never and not
    due yet; callbacks scored in November (one of an October ticket) and one re-dispatching;
    measures due before and after now, done in time, late, cancelled; a batch ticket and two
    device tickets from telemetry. The clock stops at NOW."""
    svc: TicketService = app.state.service
    svc.ensure_token(VIEWER, name="viewer-1", role="viewer")
    # October: a complaint fixed then, called back in November
    clock.now = datetime(2026, 10, 28, 10, 0, tzinfo=UTC)
    october = file(client, "遥控器按键失灵，无法调温度。", "13900000000")
    fix_and_check(svc, clock, october)
    # telemetry of November: batch B0 loses cooling, two units elsewhere are noisy
    clock.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    ts = clock.now.timestamp()
    for b in range(4):
        for u in range(20):
            svc.register_device(
                DeviceRecord(f"ac-{b}-{u:02d}", "air_conditioner", "KFR-35GW", f"B{b}",
                             f"SN-{b}-{u}", "2.3.0", ts - 90 * 86_400, ts)
            )  # fmt: skip
    for u in range(8):
        svc.record_finding(Finding(f"ac-0-{u:02d}", "cooling_decline", ts + u, ts - 3600, 0.9))
    for b in (1, 2):
        svc.record_finding(Finding(f"ac-{b}-05", "noise_rise", ts + 60, ts - 3600, 0.8))
    # the complaints, one a day, taken up after 30 min, 2 h, 5 h, never; two fixed and called
    ids = []
    for day, ((text, contact), took) in enumerate(
        zip(COMPLAINTS, (0.5, 2.0, 5.0, None, None, None), strict=True)
    ):
        clock.now = datetime(2026, 11, 3 + day, 8, 0, tzinfo=UTC)
        ids.append(tid := file(client, text, contact))
        if took is not None:
            clock.now += timedelta(hours=took)
            svc.transition(tid, "acknowledged", actor="lead")
    satisfied, redispatched = ids[4], ids[5]
    for tid, score in ((satisfied, 5), (redispatched, 2)):
        fix_and_check(svc, clock, tid)
        clock.now += timedelta(hours=3)
        svc.follow_up(tid, "called", customer="客户", actor="cs", score=score)
    svc.follow_up(october, "called", customer="客户", actor="cs", score=4)
    # measures: due before now (done in time, done late, open, cancelled), after now, in October
    clock.now = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
    on_time = measure(svc, ids[0], "R&D", datetime(2026, 11, 10, tzinfo=UTC))
    late = measure(svc, ids[0], "R&D", datetime(2026, 11, 12, tzinfo=UTC))
    measure(svc, ids[1], "Production", datetime(2026, 11, 14, tzinfo=UTC))
    cancelled = measure(svc, ids[1], "Production", datetime(2026, 11, 16, tzinfo=UTC))
    measure(svc, ids[2], "Service", datetime(2026, 11, 25, tzinfo=UTC))
    measure(svc, ids[2], "Service", datetime(2026, 10, 30, tzinfo=UTC))
    svc.update_measure(ids[0], on_time, status="done", record="done", actor="o")
    svc.update_measure(ids[1], cancelled, status="cancelled", record="n/a", actor="o")
    clock.now = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)
    svc.update_measure(ids[0], late, status="done", record="done", actor="o")
    # one complaint just before now, not taken up yet: inside its deadline, not counted yet
    clock.now = NOW - timedelta(minutes=10)
    pending = file(client, "漏水，室内机一直滴水。", "13900000009")
    clock.now = NOW
    return {"ids": ids, "october": october, "pending": pending}


# --- the independent computation ----------------------------------------------------------------
def api_tickets(client: TestClient) -> list[dict[str, Any]]:
    items = client.get("/api/v1/tickets", params={"limit": 500}).json()["items"]
    return [client.get(f"/api/v1/tickets/{t['id']}").json() for t in items]


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


#: each figure's part and whole in the counts of :func:`expected`
PARTS = {
    "collection": ("collected", "feedback"),
    "completion": ("done", "measures"),
    "satisfaction": ("score_sum", "responses"),
    "recurrence": ("recurred", "tickets"),
}


def taken_after(t: dict[str, Any]) -> timedelta | None:
    """How long after its opening the ticket first left ``open`` (None: it has not)."""
    moves = [at(h["at"]) for h in t["history"] if h["from_status"] == "open"]
    return min(moves) - at(t["opened_at"]) if moves else None


def expected(tickets: list[dict], now: datetime, **narrow: str) -> dict[str, dict[str, Any]]:
    """Per department: (value, n) of each figure over November so far, from the tickets'
    details, narrowed to tickets whose fields equal ``narrow``."""
    start, end = MONTH
    mine = [t for t in tickets if all(t[k] == v for k, v in narrow.items())]
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for t in mine:
        detected = start <= at(t["detected_at"]) < end
        if detected and t["source"] == "feedback":
            took, limit = taken_after(t), SLA.ack_deadline(t["priority"])
            if took is not None or at(t["opened_at"]) + limit <= now:
                counts[t["department"]]["feedback"] += 1
                in_time = took is not None and took <= limit
                counts[t["department"]]["collected"] += in_time
        merged = any(h["action"] == "merged" for h in t["history"])
        if detected and not merged:
            counts[t["department"]]["tickets"] += 1
            came_back = any(h["action"] in ("regression", "redispatched") for h in t["history"])
            counts[t["department"]]["recurred"] += came_back
        for h in t["history"]:
            if h["action"] == "followup" and "score" in h["data"] and start <= at(h["at"]) < end:
                counts[t["department"]]["responses"] += 1
                counts[t["department"]]["score_sum"] += h["data"]["score"]
        for m in t["measures"]:
            if m["status"] != "cancelled" and start <= at(m["due_at"]) < now:
                counts[m["department"]]["measures"] += 1
                done = m["status"] == "done" and at(m["completed_at"]) < now
                counts[m["department"]]["done"] += done
    counts["all"] = sum(counts.values(), Counter())
    return {
        d: {f: (c[p] / c[w] if c[w] else None, c[w]) for f, (p, w) in PARTS.items()}
        for d, c in counts.items()
    }


def approx(value: float | None) -> Any:
    return None if value is None else pytest.approx(value, abs=1e-4)


def figures(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        row["department"]: {f: (row[f]["value"], row[f]["n"]) for f in DEFAULTS}
        for row in board["figures"]
    }


# --- the figures --------------------------------------------------------------------------------
def test_the_figures_agree_with_the_tickets_the_api_lists(client, november) -> None:
    tickets = api_tickets(client)
    for narrow in ({}, {"model": "KFR-35GW"}, {"category": "performance"}):
        board = client.get("/api/v1/board", params=narrow).json()
        want = expected(tickets, NOW, **narrow)
        got = figures(board)
        assert set(got) == {d for d in want if any(n for _, n in want[d].values())} | {"all"}
        for department, row in got.items():
            for figure, (value, n) in row.items():
                w_value, w_n = want.get(department, {}).get(figure, (None, 0))
                assert (value, n) == (approx(w_value), w_n), (narrow, department, figure)
    every = figures(client.get("/api/v1/board").json())["all"]
    # by hand: six November complaints count, the seventh is inside its deadline still; some
    # were taken up in time and some not, one of them after more than an hour but within its
    # priority's deadline; measures: 4 due by now, 1 of them cancelled, 2 done
    assert every["collection"][1] == 6 and 0 < every["collection"][0] < 1
    assert any(
        timedelta(hours=1) < (taken_after(t) or timedelta(0)) <= SLA.ack_deadline(t["priority"])
        for t in tickets
        if t["source"] == "feedback"
    )
    assert every["completion"] == (approx(2 / 3), 3)
    assert every["satisfaction"] == (approx((5 + 2 + 4) / 3), 3)  # one of an October ticket
    # the month's satisfaction and recurrence are the monthly report's
    report = monthly_report(client.app.state.service._ctx, "2026-11")
    assert every["satisfaction"][0] == approx(report.satisfaction.mean_score)
    assert every["recurrence"][0] == approx(report.recurrence_rate)
    assert every["recurrence"][1] == report.tickets


@sqlite_only
def test_targets_mark_the_figures_that_miss(client, november) -> None:
    board = client.get("/api/v1/board").json()
    every = next(r for r in board["figures"] if r["department"] == "all")
    assert every["completion"]["target"] == 0.9 and every["completion"]["missed"]  # 2/3
    assert every["satisfaction"]["op"] == ">=" and every["recurrence"]["op"] == "<="
    assert every["recurrence"]["missed"] == (every["recurrence"]["value"] > 0.05)
    r = client.get("/api/v1/board", params={"department": "R&D"}).json()
    assert [row["department"] for row in r["figures"]] == ["R&D"]
    assert r["figures"][0]["completion"] == {
        "value": 1.0, "target": 0.9, "op": ">=", "missed": False, "n": 2,
    }  # fmt: skip


# --- the open tickets ---------------------------------------------------------------------------
RANK = {"III": 0, "II": 1, "I": 2}


@sqlite_only
def test_open_tickets_come_in_triage_order_and_the_drill_down_narrows_them(
    client, november, clock
) -> None:
    clock.now = NOW + timedelta(days=2)  # some open tickets are overdue by now
    tickets = [t for t in api_tickets(client) if t["status"] != "closed"]
    for narrow in ({}, {"model": "KFR-35GW"}, {"category": "performance"},
                   {"department": "Production"}, {"model": "none-such"}):  # fmt: skip
        board = client.get("/api/v1/board", params=narrow).json()
        mine = [t for t in tickets if all(t[k] == v for k, v in narrow.items())]
        want = sorted(mine, key=lambda t: (RANK[t["severity"]], at(t["due_at"]), t["id"]))
        assert [t["id"] for t in board["triage"]] == [t["id"] for t in want], narrow
        assert board["open_tickets"] == len(mine)
        late = [t["id"] for t in mine if at(t["due_at"]) < clock.now]
        assert {t["id"] for t in board["triage"] if t["overdue"]} == set(late)
        assert board["overdue"] == len(late)
        by_department = Counter((t["department"], t["severity"]) for t in mine)
        for row in board["by_department"]:
            for severity in RANK:
                assert row[severity] == by_department[row["department"], severity]
        batches = [t["id"] for t in want if t["scope"] == "batch"]
        assert [b["id"] for b in board["batches"]] == batches
        assert Counter({c["category"]: c["tickets"] for c in board["categories"]}) == Counter(
            t["category"] for t in mine
        )
    # within a severity, the overdue come first: due soonest first puts them there
    board = client.get("/api/v1/board").json()
    for severity in RANK:
        flags = [t["overdue"] for t in board["triage"] if t["severity"] == severity]
        assert flags == sorted(flags, reverse=True)
    batch = next(b for b in board["batches"] if b["fault"] == "cooling_decline")
    assert (batch["model"], batch["batch"], batch["affected_devices"]) == ("KFR-35GW", "B0", 8)
    assert client.get("/api/v1/board", params={"limit": 2}).json()["triage"] == board["triage"][:2]


@sqlite_only
def test_the_api_serves_any_role_and_refuses_a_bad_drill_down(app, november) -> None:
    with TestClient(app) as c:
        assert c.get("/api/v1/board").status_code == 401
        viewer = {"Authorization": f"Bearer {VIEWER}"}
        assert c.get("/api/v1/board", headers=viewer).status_code == 200
        bad = c.get("/api/v1/board", params={"department": "Marketing"}, headers=viewer)
        assert bad.status_code == 422 and "department" in bad.text
        bad = c.get("/api/v1/board", params={"category": "luck"}, headers=viewer)
        assert bad.status_code == 422 and "category" in bad.text


# --- targets ------------------------------------------------------------------------------------
def test_targets_are_read_with_defaults_and_departments_own() -> None:
    t = Targets.parse(" collection >= 90% , R&D.completion>=0.95,Service.satisfaction>=4.5 ")
    assert t.target("collection").value == 0.9 and t.target("collection", "R&D").value == 0.9
    assert t.target("completion", "R&D").value == 0.95
    assert t.target("completion", "Service").value == DEFAULTS["completion"]
    assert t.target("satisfaction", "Service").value == 4.5
    assert t.target("recurrence").missed(0.06) and not t.target("recurrence").missed(0.05)
    assert Targets.parse("") == Targets()
    assert Targets.parse(str(t)) == t  # its own string reads back


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("collection", "is not [DEPARTMENT.]FIGURE>=VALUE or <=VALUE"),
        ("collection=0.9", "is not [DEPARTMENT.]FIGURE>=VALUE"),
        ("colection>=0.9", "unknown figure 'colection'"),
        ("recurrence>=0.05", "recurrence is kept low: write recurrence<=VALUE"),
        ("satisfaction<=4", "satisfaction is kept high"),
        ("RD.completion>=0.9", "unknown department 'RD'"),
        ("completion>=ninety", "'ninety' in 'completion>=ninety' is not a number"),
        ("completion>=1.5", "completion is a rate from 0 to 1"),
        ("completion>=nan", "completion is a rate from 0 to 1"),
        ("satisfaction>=6", "satisfaction is a score from 1 to 5"),
        ("satisfaction>=80%", "satisfaction is a score from 1 to 5, got '80%'"),
        ("completion>=0.9,completion>=0.8", "completion is given twice"),
        ("R&D.completion>=0.9,R&D.completion>=0.8", "R&D.completion is given twice"),
    ],
)
def test_bad_targets_are_refused_naming_the_item(text: str, message: str) -> None:
    with pytest.raises(TargetsError, match="^targets: ") as e:
        Targets.parse(text)
    assert message in str(e.value)


def test_the_targets_setting_is_refused_naming_the_option() -> None:
    with pytest.raises(SettingsError, match=r"--targets \(QLOOP_TARGETS\) from the environment"):
        load("api", environ={"QLOOP_TARGETS": "R&D.completion>=2"})
    config = load("api", environ={"QLOOP_TARGETS": "R&D.completion>=0.95"}).api()
    assert config.targets.target("completion", "R&D").value == 0.95


def test_iso_weeks_are_complete_weeks_in_utc() -> None:
    monday = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)
    assert [str(w) for w in complete_weeks(monday)] == ["2026-W45", "2026-W46"]
    before = monday - timedelta(microseconds=1)
    assert [str(w) for w in complete_weeks(before)] == ["2026-W44", "2026-W45"]
    w = IsoWeek.of(monday)
    assert (w.start, w.end) == (monday, monday + timedelta(days=7))


# --- the two-week rule --------------------------------------------------------------------------
def test_two_missed_weeks_raise_exactly_one_alert(engine, clock) -> None:
    inbox = Inbox()
    ctx = Context(engine, clock, TicketPolicy(), notifier=inbox)
    svc = TicketService(engine, clock)
    clock.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # Monday of ISO week 45
    svc.ensure_token(ADMIN, name="lead", role="admin")
    from cloud.ticketing.complaints import FeedbackIn

    tid = svc.file_feedback(FeedbackIn("dealer", "外壳凹陷，面板有划痕", contact="d-1")).ticket.id
    svc.transition(tid, "acknowledged", actor="lead")  # collected in time
    # Purchasing misses completion in weeks 45 and 46; Service only in week 46
    measure(svc, tid, "Purchasing", datetime(2026, 11, 5, tzinfo=UTC))
    measure(svc, tid, "Purchasing", datetime(2026, 11, 12, tzinfo=UTC))
    done = measure(svc, tid, "Service", datetime(2026, 11, 6, tzinfo=UTC))
    measure(svc, tid, "Service", datetime(2026, 11, 13, tzinfo=UTC))
    svc.update_measure(tid, done, status="done", record="done", actor="o")
    clock.now = datetime(2026, 11, 11, 9, 0, tzinfo=UTC)  # week 46: one week missed so far
    assert check_targets(ctx, Targets()) == [] and inbox.sent == []

    clock.now = datetime(2026, 11, 16, 0, 5, tzinfo=UTC)  # week 47: weeks 45 and 46 are done
    raised = check_targets(ctx, Targets())
    assert [(m.department, m.figure, m.weeks) for m in raised] == [
        ("Purchasing", "completion", ("2026-W45", "2026-W46"))
    ]
    assert check_targets(ctx, Targets()) == []  # once
    clock.now += timedelta(hours=5)
    assert check_targets(ctx, Targets()) == []
    assert inbox.sent == [
        {"event": "target_missed", "department": "Purchasing", "figure": "completion",
         "figure_name": "整改完成率 measure completion rate", "target": 0.9, "op": ">=",
         "weeks": ["2026-W45", "2026-W46"], "values": [0.0, 0.0], "escalation_id": "target-1"},
    ]  # fmt: skip
    board = Board(ctx, Targets()).view()
    assert [(a.department, a.figure) for a in board.alerts] == [("Purchasing", "completion")]
    assert Board(ctx, Targets()).view(Filters(department="Service")).alerts == []
    # a department's own target decides: Purchasing at 0% is fine by a target of 0
    assert check_targets(ctx, Targets.parse("Purchasing.completion>=0"), clock.now) == []
    # the week after, week 47 has no measures due: nothing to miss, no alert
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert check_targets(ctx, Targets()) == [] and len(inbox.sent) == 1


def test_several_processes_raise_an_alert_once(engine, clock) -> None:
    svc = TicketService(engine, clock)
    clock.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    from cloud.ticketing.complaints import FeedbackIn

    tid = svc.file_feedback(FeedbackIn("dealer", "外壳凹陷", contact="d-2")).ticket.id
    for due in (datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 12, tzinfo=UTC)):
        measure(svc, tid, "R&D", due)
    clock.now = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    inboxes = [Inbox() for _ in range(3)]
    contexts = [Context(engine, clock, TicketPolicy(), notifier=i) for i in inboxes]
    raised: list[list] = []
    errors = run_together(
        lambda ctx: raised.append(check_targets(ctx, Targets())), [(c,) for c in contexts]
    )
    assert errors == []
    assert sum(m.figure == "completion" and m.department == "R&D" for r in raised for m in r) == 1
    sent = [p for i in inboxes for p in i.sent if p["department"] == "R&D"]
    completion = [p for p in sent if p["figure"] == "completion"]
    assert len(completion) == 1  # raised once, delivered once


# --- the page -----------------------------------------------------------------------------------
@sqlite_only
def test_the_dashboard_is_where_a_viewer_lands_after_signing_in(app, november) -> None:
    with TestClient(app, base_url="http://qloop.test") as c:
        assert c.get("/", follow_redirects=False).headers["location"] == "/dashboard"
        r = c.get("/dashboard", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/dashboard"
        r = c.post("/login", data={"token": VIEWER}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard"
        page = c.get("/dashboard")
        assert page.status_code == 200 and "<h1>Dashboard</h1>" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert "<script" not in page.text
        nav = page.text.index('id="dashboard"')
        assert nav < page.text.index('href="/tickets">Tickets')  # the first link of the nav
        for label in ("feedback collection rate", "measure completion rate", "Target alerts"):
            assert label in page.text
        zh = c.get("/dashboard", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
        for label in ("<h1>看板</h1>", "反馈收集率", "整改完成率", "客户满意度", "同类问题重复率",
                      "目标预警", "研发部"):  # fmt: skip
            assert label in zh.text, label
        api = c.get("/api/v1/board", headers={"Authorization": f"Bearer {VIEWER}"}).json()
        rows = [line.split('"')[0] for line in page.text.split('<tr class="ticket')[1:]]
        ids = [row.split('data-id="')[1] for row in page.text.split('<tr class="ticket')[1:]]
        assert len(rows) == len(api["triage"])
        assert [i.split('"')[0] for i in ids] == [t["id"] for t in api["triage"]]
        assert 'data-figure="completion" data-missed="true"' in page.text  # 2/3 of 90%
        assert 'href="/dashboard?department=R%26D"' in page.text  # drill-down links
        narrowed = c.get("/dashboard", params={"department": "R&D", "category": "performance"})
        assert narrowed.status_code == 200 and "narrowed to category performance" in narrowed.text
        bad = c.get("/dashboard", params={"department": "Marketing"})
        assert bad.status_code == 422 and "unknown department" in bad.text
