"""A ticket's history reads in Chinese on the Chinese pages: every note the system writes has a
template (``web/history_notes.py``) and its Chinese, and what people typed stays as typed.

The notes are written by the real code: one scripted life of a fleet's tickets (telemetry,
the pooled test, complaints, fixes and their verdicts, measures, deadlines) drives the
TicketService, and every entry it leaves is read back on the zh-CN ticket page. The script must
cover every kind of entry the system writes, so a new kind (or a new wording of an old one)
fails here until it has its template.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from fastapi.testclient import TestClient

from cloud.feedback.classify import Classification
from cloud.ticketing.app import create_app
from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.db import make_engine
from cloud.ticketing.history import HistoryKind
from cloud.ticketing.policy import TicketPolicy
from cloud.ticketing.service import TicketService
from cloud.ticketing.web import history_notes, zh_cn
from cloud.ticketing.web.i18n import for_lang, use
from qloop.settings import Settings
from tests import ticketing_support as support
from tests.cloud.ticketing.test_pooled_batch_tickets import peers, pooled
from tests.ticketing_support import Clock, dev_id, finding, open_tickets

DAY, HOUR, NOW_TS = support.DAY, support.HOUR, support.NOW_TS
ADMIN = "admin-secret"
#: kinds only people write, whose note is theirs alone (a remark, a comment, a callback's words)
PEOPLES = {HistoryKind.TRANSITION, HistoryKind.COMMENT, HistoryKind.FOLLOWUP}
#: what people typed in the script: Chinese, so any English left on the page is the system's
TYPED = {
    "complaint": "空调不制冷，出风口温度18℃",
    "again": "又不制冷了，师傅还没来",
    "remark": "已与客户电话确认",
    "cause": "膨胀阀批次来料不良",
    "task": "更换膨胀阀",
    "owner": "李工",
    "record": "已更换全部膨胀阀",
    "fix": "更换膨胀阀并抽检",
    "head": "王总",
}
COOLING = Classification(
    "performance", "cooling_decline", "II", "normal", "R&D", ("R&D", "Production"), 0.9, False
)
DENTS = Classification(
    "workmanship", None, "II", "normal", "Production", ("Production",), 0.8, False
)
UNSURE = Classification("service", None, "I", "normal", "Service", ("Service",), 0.31, True)
#: a person's remark in English, worded like the system's: it stays as typed
ENGLISH_REMARK = "merged into PF202611002 — the customer says so, see mail"
ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")
DATA = re.compile(r"[A-Za-z0-9_.#/+&-]*\d[A-Za-z0-9_.#/+&-]*")  # ids, units, numbers, times
ALLOWED = {"CST", "UTC", "II", "III"}  # time zones, severities (I, II, III)


def english_left(text: str) -> list[str]:
    """English words in ``text`` other than data (ids, numbers, times), zones and severities."""
    return [w for w in ENGLISH_WORD.findall(DATA.sub(" ", text)) if w not in ALLOWED]


def complain(svc: TicketService, unit: str | None, text: str, contact: str, c=COOLING) -> str:
    fb = FeedbackIn("hotline", text, contact=contact, device=unit)
    return svc.file_feedback(fb, actor="cs-1", classification=c).ticket.id


def fix(svc: TicketService, ticket: str, effective_from: float) -> None:
    for status in ("acknowledged", "in_progress"):
        if svc.get_ticket(ticket).status != status:
            svc.transition(ticket, status, actor="lead", note=TYPED["remark"])
    svc.record_fix(ticket, description=TYPED["fix"], effective_from=effective_from, actor="lead")


def add_measure(svc: TicketService, ticket: str, what: tuple[str, str, str], due) -> int:
    term, kind, department = what
    view = svc.add_measure(
        ticket,
        term=term,
        kind=kind,
        action=TYPED["task"],
        owner=TYPED["owner"],
        department=department,
        due_at=due,
        actor="qe-1",
    )
    return view.measures[-1]["id"]


def script(svc: TicketService, clock: Clock) -> None:
    """One life of a fleet's tickets, through every kind of entry the system writes."""
    support.register_fleet(svc, batches=5)
    # batch B0: one unit alarms (a device ticket), then seven more (the batch ticket folds it),
    # a unit recovers; customers of the batch complain (joined, counted, repeated, alerted)
    svc.record_finding(finding(dev_id(0, 0), ts=NOW_TS))
    for u in range(1, 5):
        svc.record_finding(finding(dev_id(0, u), ts=NOW_TS + u))
    for u in range(5, 12):
        svc.record_finding(finding(dev_id(0, u), ts=NOW_TS + HOUR + u))
    svc.record_finding(finding(dev_id(0, 11), ts=NOW_TS + 2 * HOUR, active=False))
    (batch,) = open_tickets(svc, scope="batch", batch="B0")
    svc.comment(batch.id, ENGLISH_REMARK, actor="qe-1")
    svc.transition(batch.id, "acknowledged", actor="qe-1", note=ENGLISH_REMARK)
    happy = complain(svc, dev_id(0, 1), TYPED["complaint"], "13800000001")
    complain(svc, dev_id(0, 1), TYPED["again"], "13800000001")
    unhappy = complain(svc, dev_id(0, 2), TYPED["complaint"], "13800000002")
    # the batch ticket's loop: cause, measures, a fix the units' data verifies
    svc.set_cause(
        batch.id, five_why=["批量制冷下降", TYPED["cause"]], fishbone={}, summary=None, actor="qe-1"
    )
    due = clock.now + timedelta(days=2)
    measure = add_measure(svc, batch.id, ("short", "repair", "Service"), due)
    svc.update_measure(batch.id, measure, status="in_progress", record=None, actor="qe-1")
    add_measure(svc, batch.id, ("long", "supplier", "Purchasing"), due)  # left undone: late
    fixed_at = NOW_TS + 3 * HOUR
    fix(svc, batch.id, fixed_at)
    for u in range(12):
        svc.record_finding(finding(dev_id(0, u), ts=fixed_at + HOUR + u, active=False))
    assert svc.get_ticket(batch.id).status == "closed"
    svc.follow_up(happy, "客户表示满意", customer="张先生", actor="cs-1", score=5)
    svc.follow_up(unhappy, "客户仍不满意", customer="赵女士", actor="cs-1", score=2)
    svc.update_measure(batch.id, measure, status="done", record=TYPED["record"], actor="qe-1")
    # the fault comes back in a fixed unit: a regression reopens the batch ticket
    svc.record_finding(finding(dev_id(0, 3), ts=fixed_at + 2 * DAY))
    # a device ticket whose fix fails: the unit reports the fault again
    svc.record_finding(finding(dev_id(2, 5), ts=NOW_TS))
    (failing,) = open_tickets(svc, scope="device", batch="B2")
    fix(svc, failing.id, NOW_TS + HOUR)
    svc.record_finding(finding(dev_id(2, 5), ts=NOW_TS + 5 * HOUR))
    # and one that never clears within the verification window
    svc.record_finding(finding(dev_id(3, 7), ts=NOW_TS))
    (silent,) = open_tickets(svc, scope="device", batch="B3")
    fix(svc, silent.id, NOW_TS + HOUR)
    svc.touch_devices({dev_id(3, 7): NOW_TS + 30 * DAY})
    # the pooled shift test: opens a batch ticket, strengthens it; fixed, then it drifts again
    units = {dev_id(1, 0): 8.0, dev_id(1, 1): 7.0, dev_id(1, 2): 6.0}
    svc.record_batch_finding(pooled("B1", units))
    svc.record_batch_finding(pooled("B1", units | {dev_id(1, 3): 5.5}, ts=NOW_TS + HOUR))
    (drifting,) = open_tickets(svc, scope="batch", batch="B1")
    fix(svc, drifting.id, NOW_TS + 2 * HOUR)
    svc.record_batch_finding(pooled("B1", units, ts=NOW_TS + 3 * DAY))
    # the peer level test: B4 born short of the model's other batches, a fourth unit learns
    short = {dev_id(4, 0): 0.15, dev_id(4, 1): 0.14, dev_id(4, 2): 0.12}
    svc.record_batch_finding(peers("B4", short))
    svc.record_batch_finding(peers("B4", short | {dev_id(4, 3): 0.1}, ts=NOW_TS + HOUR))
    # a customer naming no unit, classified unsure: corrected, a fix a person checks
    lone = complain(svc, None, "售后师傅态度差，乱收费", "13900000009", c=UNSURE)
    svc.correct_classification(
        lone, actor="lead", category="service", fault=None, severity="II", note=TYPED["remark"]
    )
    fix(svc, lone, NOW_TS + HOUR)
    svc.check_fix(lone, result="needs_work", note=TYPED["remark"], actor="qe-1")
    svc.record_fix(lone, description=TYPED["fix"], effective_from=NOW_TS + 2 * HOUR, actor="lead")
    svc.check_fix(lone, result="not_effective", note=None, actor="qe-1")
    fix(svc, lone, NOW_TS + 3 * HOUR)
    svc.check_fix(lone, result="effective", note=TYPED["remark"], actor="qe-1")
    # complaints from batch B2's units: the batch stands out by them
    for u in range(10, 15):
        complain(svc, dev_id(2, u), "外壳凹陷，面板划痕", f"1370000001{u}", c=DENTS)
    # deadlines: due soon, then overdue, for tickets and measures
    for hours in (20, 35, 40):  # measures due soon; causes due soon (3 days); all overdue
        clock.now += timedelta(hours=hours)
        svc.check_sla()


@pytest.fixture(scope="module")
def lived(tmp_path_factory):
    """The app over a database the script has run on, and every history entry it wrote."""
    db = f"sqlite:///{tmp_path_factory.mktemp('notes') / 'tickets.db'}"
    engine = make_engine(db)
    clock = Clock(datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC))
    policy = TicketPolicy(department_heads={"*": TYPED["head"]})
    script(TicketService(engine, clock, policy), clock)
    config = Settings(db=db, api_token=ADMIN, journal=None).api()
    app = create_app(config, engine=engine, clock=clock)
    svc: TicketService = app.state.service
    entries = [
        (t.id, h) for t in svc.tickets(limit=500).items for h in svc.get_ticket(t.id).history
    ]
    yield app, entries
    engine.dispose()


def test_the_script_writes_every_kind_of_entry_the_system_writes(lived) -> None:
    _, entries = lived
    written = {h.action for _, h in entries}
    missing = {k.value for k in HistoryKind} - written
    assert not missing, f"the script writes no {sorted(missing)}: add it, and its template"


def test_every_note_the_system_wrote_has_its_template(lived) -> None:
    _, entries = lived
    notes = [(tid, h) for tid, h in entries if h.note and h.action not in PEOPLES]
    assert len(notes) > 60
    unknown = [
        f"{tid} {h.action}: {h.note!r}"
        for tid, h in notes
        if history_notes.match(h.note, h.action) is None
    ]
    assert not unknown, "notes no template knows:\n" + "\n".join(unknown)
    used = {history_notes.match(h.note, h.action) for _, h in notes}
    unused = [n.english for n in history_notes.NOTES if n not in used]
    assert not unused, f"templates the script never exercised: {unused}"
    failures = [
        item
        for _, h in notes
        if h.action == "verification_failed"
        for item in h.note.split(" units failed: ", 1)[1].split("; ")
    ]
    reasons = {history_notes.match(item, notes=history_notes.REASONS) for item in failures}
    assert reasons == set(history_notes.REASONS), f"unit verdicts without a template: {failures}"


def test_every_template_has_its_chinese_with_the_same_fields() -> None:
    fields = re.compile(r"{(\w+)}")
    for note in (*history_notes.NOTES, *history_notes.REASONS):
        if re.fullmatch(r"\{\w+\}", note.english):  # a lone value, named by its own translation
            continue
        chinese = zh_cn.MESSAGES.get(note.english)
        assert chinese, f"no Chinese for {note.english!r}"
        assert set(fields.findall(chinese)) == set(fields.findall(note.english)), note.english
        assert chinese.count("[") == note.english.count("["), note.english  # optional parts


def _page_notes(app, ticket: str, lang: str) -> list[tuple[str, str, str]]:
    """The history of ``ticket`` on its page: (action, note shown, note stored) each."""
    with TestClient(app, base_url="http://qloop.test") as browser:
        browser.post("/login", data={"token": ADMIN}, follow_redirects=False)
        page = browser.get(f"/tickets/{ticket}", params={"lang": lang})
    assert page.status_code == 200
    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', page.text, re.S)[1]
    found = []
    for item in re.findall(r"<li (.*?)</li>", timeline, re.S):
        action = re.search(r'data-action="([^"]+)"', item)[1]
        m = re.search(r'<div class="note-text"(?: title="([^"]*)")?>(.*?)</div>', item, re.S)
        if m:
            shown = unescape(m[2])
            found.append((action, shown, unescape(m[1]) if m[1] is not None else shown))
    return found


def test_a_tickets_history_reads_in_chinese_on_the_chinese_page(lived) -> None:
    app, entries = lived
    stored = {(tid, h.action, h.note) for tid, h in entries if h.note}
    checked, left = 0, []
    for ticket in sorted({tid for tid, _ in entries}):
        for action, shown, note in _page_notes(app, ticket, "zh-CN"):
            assert (ticket, action, note) in stored  # the page's English on hover is the note
            if action not in PEOPLES and english_left(shown):
                left.append(f"{ticket} {action}: {shown}")
            if action not in PEOPLES:
                assert shown != note, f"{ticket} {action}: {note!r} shown in English"
            checked += 1
    assert checked > 60
    assert not left, "English left in the Chinese history:\n" + "\n".join(left)


def test_the_english_page_shows_the_notes_as_stored(lived) -> None:
    app, entries = lived
    ticket = next(tid for tid, h in entries if h.action == "regression")
    shown = _page_notes(app, ticket, "en")
    assert shown and all(s == n for _, s, n in shown)
    assert any(english_left(s) for _, s, _ in shown)  # the check above can fail


@pytest.mark.parametrize(
    ("note", "action", "chinese"),
    [
        ("joined batch ticket PF202611001", "joined", "已关联批次工单 PF202611001"),
        ("merged into PF202611002", "merged", "已合并到批次工单 PF202611002"),
        ("3 affected of 20", "updated", "20 台中 3 台受影响"),
        ("fault indicator back at baseline: ac-1, ac-2", "recovered",
         "故障指标已恢复到基线：ac-1、ac-2"),
        ("acknowledge overdue: was due 2026-11-22T08:00:00Z", "overdue",
         "受理阶段超期：原定 2026-11-22 16:00 CST 到期"),
        ("the customer scored 2: closed", "satisfied", "客户评分 2：关闭"),
        ("measure #3 (short-term repair): change the valve — Li, Service, due "
         "2026-11-24T10:00:01Z", "measure",
         "措施 #3（短期（已售机组），维修）：change the valve — Li，售后服务部，期限 "
         "2026-11-24 18:00 CST"),
        ("repeat #2 via hotline: still broken, please come", "repeat",
         "第 2 次重复反馈（热线）：still broken, please come"),
        ("checked by qe: effective: customer refunded", "verified",
         "qe 人工验证：有效：customer refunded"),
        ("hotline: service (confidence 0.31: needs triage)", "opened",
         "热线：服务（置信度 0.31：需人工分诊）"),
    ],
)  # fmt: skip
def test_the_values_are_put_back_and_what_people_typed_stays(note, action, chinese) -> None:
    with use(for_lang("zh-CN")):
        assert history_notes.translate(note, action=action) == chinese
    assert history_notes.translate(note, action=action) == note  # English: as stored


def test_a_persons_remark_is_never_taken_for_the_systems_wording() -> None:
    with use(for_lang("zh-CN")):
        for action in ("transition", "comment", "followup"):  # typed to look like the system's
            assert history_notes.translate(ENGLISH_REMARK, action=action) == ENGLISH_REMARK
            remark = "merged into PF202611002"
            assert history_notes.translate(remark, action=action) == remark
        unknown = "something new the system says"
        assert history_notes.translate(unknown, action="opened") == unknown


def test_a_persons_remark_stays_as_typed_on_the_chinese_page(lived) -> None:
    app, entries = lived
    (ticket,) = {tid for tid, h in entries if h.note == ENGLISH_REMARK}
    shown = _page_notes(app, ticket, "zh-CN")
    assert ("comment", ENGLISH_REMARK, ENGLISH_REMARK) in shown
    assert ("transition", ENGLISH_REMARK, ENGLISH_REMARK) in shown


def test_what_people_typed_is_never_read_as_a_template_and_odd_values_show_as_stored() -> None:
    with use(for_lang("zh-CN")):
        typed = "checked by qe: needs work: see {ticket} [draft] {0}"
        assert history_notes.translate(typed, action="checked") == (
            "qe 人工验证：需进一步优化：see {ticket} [draft] {0}"
        )
        odd = "acknowledge overdue: was due 2026-13-45T08:00:00Z"  # no such day
        assert history_notes.translate(odd, action="overdue") == odd
