"""Repeated complaints alert the department head: the rule (pure), the outbox row written when
feedback is filed (SQLite and PostgreSQL), and its delivery by e-mail to a real SMTP server
(aiosmtpd on a free loopback port) besides the webhook, with retries when the server is down."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cloud.feedback.classify import Classification
from cloud.ticketing.alerts import Complaint, repeated
from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.db import make_engine
from cloud.ticketing.escalation import (
    DeliveryError,
    EmailNotifier,
    FanOut,
    RecipientsError,
    WebhookNotifier,
    parse_recipients,
)
from cloud.ticketing.models import SlaEscalation
from cloud.ticketing.policy import TicketPolicy
from cloud.ticketing.service import TicketService
from qloop import cli
from qloop.broker import free_port
from qloop.loading import load
from qloop.settings import Settings, SettingsError
from tests import ticketing_support as support
from tests.ticketing_support import Clock, dev_id, open_tickets, register_fleet

db_url, engine, svc, clock = support.db_url, support.engine, support.svc, support.clock

DAY = timedelta(days=1)
T = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
POLICY = TicketPolicy()
COOLING = "空调使用1个月后，制冷效果明显下降，出风口温度18℃(设定16℃)，噪音比初期增大。"
SCRATCHED = "外壳有划痕，包装破损"
RUDE = "安装师傅态度很差，乱收费"
REMOTE = "遥控器按了没反应，换了电池也不行。"
HEADS = "R&D=rd-head@example.com,Quality=q@example.com,*=quality-manager@example.com"


# --- the rule -------------------------------------------------------------------------------
def c(days: float, ticket: str = "PF1", **kw: Any) -> Complaint:
    base = {"channel": "hotline", "text": "不制冷"}
    return Complaint(T + days * DAY, ticket, **(base | kw))


def keys(new: Complaint, earlier: list[Complaint], policy: TicketPolicy = POLICY) -> list:
    return [(r.key, r.matched, r.count) for r in repeated(new, earlier, policy)]


def test_a_unit_complaining_again_within_the_window_is_repeated() -> None:
    assert keys(c(29, unit="ac-1"), [c(0, unit="ac-1")]) == [("unit", "ac-1", 2)]
    assert keys(c(31, unit="ac-1"), [c(0, unit="ac-1")]) == []
    assert keys(c(1, unit="ac-1"), [c(0, unit="ac-2")]) == []
    assert keys(c(0, unit="ac-1"), []) == []


def test_the_window_counts_both_ways_an_import_files_old_complaints_late() -> None:
    assert keys(c(0, unit="ac-1"), [c(20, unit="ac-1")]) == [("unit", "ac-1", 2)]


def test_the_same_customer_again_is_repeated_unless_their_unit_already_says_so() -> None:
    earlier = [c(0, "PF1", contact="138", text="不制冷")]
    assert keys(c(3, "PF2", contact="138"), earlier) == [("customer", "138", 2)]
    both = [c(0, "PF1", contact="138", unit="ac-1")]
    assert keys(c(3, "PF1", contact="138", unit="ac-1"), both) == [("unit", "ac-1", 2)]
    assert keys(c(3, "PF2", contact="139"), earlier) == []


def test_a_batch_is_repeated_by_several_complaints_about_one_problem() -> None:
    def unit(days: float, n: int, problem: str = "cooling_decline") -> Complaint:
        return c(days, f"PF{n}", unit=f"ac-{n}", batch=("KFR-35GW/BP2", "B1"), problem=problem)

    assert keys(unit(2, 3), [unit(0, 1), unit(1, 2)]) == [("batch", "KFR-35GW/BP2/B1", 3)]
    assert keys(unit(2, 3), [unit(0, 1)]) == []
    assert keys(unit(2, 3), [unit(0, 1), unit(1, 2, "noise_rise")]) == []
    assert keys(unit(2, 1), [unit(0, 1), unit(1, 1)]) == [("unit", "ac-1", 3)]  # one unit
    hit = repeated(unit(2, 3), [unit(1, 2), unit(0, 1)], POLICY)[0]
    assert [x.ticket for x in hit.complaints] == ["PF1", "PF2", "PF3"]  # oldest first


def test_the_thresholds_and_window_are_the_policys() -> None:
    strict = TicketPolicy(repeat_alert_unit_min=3, repeat_alert_window_s=7 * 86_400)
    assert keys(c(1, unit="ac-1"), [c(0, unit="ac-1")], strict) == []
    assert keys(c(2, unit="ac-1"), [c(0, unit="ac-1"), c(1, unit="ac-1")], strict) == [
        ("unit", "ac-1", 3)
    ]
    assert keys(c(8, unit="ac-1"), [c(0, unit="ac-1"), c(1, unit="ac-1")], strict) == []


# --- the outbox row, written when feedback is filed ------------------------------------------
@dataclass
class Recorder:
    """A notifier that keeps what it is sent."""

    max_attempts: int = 3
    retry_base: timedelta = timedelta(minutes=1)
    retry_cap: timedelta = timedelta(hours=1)
    sent: list[dict] = field(default_factory=list)

    def send(self, payload: Any) -> None:
        self.sent.append(dict(payload))


def grade(category: str, fault: str | None, *departments: str) -> Classification:
    return Classification(category, fault, "II", "normal", departments[0], departments, 0.9, False)


COOLING_CLASS = grade("performance", "cooling_decline", "R&D", "Production")
CLASSES = {
    SCRATCHED: grade("workmanship", None, "Production"),
    RUDE: grade("service", None, "Service"),
    REMOTE: grade("functional", None, "R&D"),
    "又不制冷了": grade("functional", None, "R&D"),
}


def complain(svc: TicketService, text: str = COOLING, **kw: Any):
    """File a complaint classified as written here (any other text: cooling decline), so the
    tests do not follow the shipped classifier's retraining."""
    fb = FeedbackIn(channel=kw.pop("channel", "hotline"), text=text, **kw)
    return svc.file_feedback(fb, classification=CLASSES.get(text, COOLING_CLASS))


def alerts(engine) -> list[SlaEscalation]:
    with engine.connect() as conn:
        rows = conn.execute(select(SlaEscalation).order_by(SlaEscalation.id)).all()
    return [r for r in rows if r.stage.startswith("repeat")]


def test_a_unit_complaining_again_alerts_once_per_cycle(svc, engine, clock: Clock) -> None:
    register_fleet(svc, batches=2, units=5)
    first = complain(svc, device=dev_id(0, 1), contact="138 0013 8000").ticket
    assert alerts(engine) == []
    clock.now += 3 * DAY
    again = complain(svc, "还是不制冷，出风18度", device=dev_id(0, 1), channel="ecommerce")
    assert (again.outcome, again.ticket.id) == ("repeat", first.id)
    (row,) = alerts(engine)
    assert (row.ticket_id, row.cycle, row.stage) == (first.id, 0, "repeat-unit")
    p = row.payload
    assert (p["event"], p["ticket"], p["key"], p["matched"], p["count"]) == (
        "repeated_complaint",
        first.id,
        "unit",
        dev_id(0, 1),
        2,
    )
    assert (p["department"], p["departments"], p["window_days"]) == (
        "R&D",
        ["R&D", "Production"],
        30,
    )
    assert p["channels"] == ["hotline", "ecommerce"] and p["tickets"] == [first.id]
    assert p["texts"] == [COOLING, "还是不制冷，出风18度"] and p["escalation_id"] == row.id
    entry = [h for h in svc.get_ticket(first.id).history if h.action == "repeat_alert"]
    assert len(entry) == 1 and "repeated complaint by unit" in entry[0].note
    assert entry[0].data == {"key": "unit", "count": 2, "escalation": row.id}
    clock.now += DAY
    third = complain(svc, "第三次打电话了，制冷效果明显下降，出风口不凉", device=dev_id(0, 1))
    assert third.ticket.id == first.id and third.ticket.repeats == 2
    assert len(alerts(engine)) == 1  # once per ticket, cycle and key


def test_another_problem_of_the_same_unit_alerts_on_its_own_ticket(svc, engine, clock) -> None:
    register_fleet(svc, batches=2, units=5)
    first = complain(svc, device=dev_id(0, 2)).ticket
    clock.now += DAY
    other = complain(svc, "又不制冷了", device=dev_id(0, 2)).ticket  # functional, no fault
    assert other.id != first.id
    (row,) = alerts(engine)
    assert (row.ticket_id, row.stage, row.payload["count"]) == (other.id, "repeat-unit", 2)
    assert row.payload["tickets"] == [first.id, other.id]


def test_no_alert_outside_the_window(svc, engine, clock: Clock) -> None:
    register_fleet(svc, batches=2, units=5)
    first = complain(svc, device=dev_id(1, 2)).ticket
    clock.now += 31 * DAY
    again = complain(svc, "制冷效果还是很差，出风口温度18℃", device=dev_id(1, 2))
    assert again.ticket.id == first.id and again.ticket.repeats == 1
    assert alerts(engine) == []


def test_old_complaints_imported_late_alert_no_one(svc, engine, clock: Clock) -> None:
    register_fleet(svc, batches=2, units=5)
    long_ago = clock.now - 90 * DAY
    complain(svc, device=dev_id(1, 3), received_at=long_ago)
    again = complain(svc, "还是不制冷，出风18度", device=dev_id(1, 3), received_at=long_ago + DAY)
    assert again.outcome == "repeat" and alerts(engine) == []


def test_the_same_customer_about_another_problem_alerts(svc, engine, clock: Clock) -> None:
    first = complain(svc, RUDE, contact="138 0013 8000").ticket
    clock.now += 5 * DAY
    other = complain(svc, REMOTE, contact="+86 (138) 0013-8000", channel="online").ticket
    assert other.id != first.id
    (row,) = alerts(engine)
    assert (row.ticket_id, row.stage) == (other.id, "repeat-customer")
    assert (row.payload["matched"], row.payload["count"]) == ("13800138000", 2)
    assert row.payload["tickets"] == [first.id, other.id]
    complain(svc, REMOTE, contact="13900000000", channel="online")  # someone else
    assert len(alerts(engine)) == 1
    complain(svc, RUDE, contact="Li_Wei@Example.com")
    complain(svc, REMOTE, contact="liXwei@example.com")  # not the same: _ is no wildcard
    assert len(alerts(engine)) == 1
    by_mail = complain(svc, REMOTE, contact=" li_wei@example.com").ticket
    assert [(r.ticket_id, r.payload["matched"]) for r in alerts(engine)][1:] == [
        (by_mail.id, "li_wei@example.com")
    ]


def test_a_batch_complained_about_three_times_alerts(svc, engine, clock: Clock) -> None:
    register_fleet(svc)
    tickets = []
    for n in range(3):
        tickets.append(complain(svc, SCRATCHED, device=dev_id(1, n), contact=f"1390000000{n}"))
        clock.now += DAY
        if n < 2:
            assert alerts(engine) == []
    assert all(t.ticket.parent is None for t in tickets)
    (row,) = alerts(engine)
    assert (row.ticket_id, row.stage) == (tickets[2].ticket.id, "repeat-batch")
    assert (row.payload["matched"], row.payload["count"], row.payload["units"]) == (
        f"{support.MODEL}/B1",
        3,
        3,
    )
    assert (row.payload["department"], row.payload["category"]) == ("Production", "workmanship")
    complain(svc, COOLING, device=dev_id(1, 5))  # another problem in the same batch
    complain(svc, SCRATCHED, device=dev_id(1, 6))  # the batch was alerted in this window
    assert len(alerts(engine)) == 1
    clock.now += 31 * DAY
    for n in range(7, 10):  # a month on, three more units: the batch is alerted again, on
        # the batch ticket its complaints opened by now (complaint_batches.py)
        last = complain(svc, SCRATCHED, device=dev_id(1, n), contact=f"1370000000{n}").ticket
    assert last.parent is not None
    assert [(r.ticket_id, r.payload["count"]) for r in alerts(engine)][1:] == [(last.parent, 3)]


def test_a_batch_alert_goes_on_the_batch_ticket_the_complaints_joined(
    svc, engine, clock: Clock
) -> None:
    register_fleet(svc)
    for u in range(8):
        svc.record_finding(support.finding(dev_id(0, u)))
    (batch,) = open_tickets(svc, scope="batch")
    for n in range(4):
        t = complain(svc, device=dev_id(0, n), contact=f"1380000000{n}").ticket
        assert t.parent == batch.id
        clock.now += DAY
    (row,) = alerts(engine)  # the fourth complaint: the batch was alerted already
    assert (row.ticket_id, row.stage, row.payload["count"]) == (batch.id, "repeat-batch", 3)
    assert [h.action for h in svc.get_ticket(batch.id).history].count("repeat_alert") == 1


def test_the_sla_check_delivers_the_alert_with_the_department_head(engine, clock: Clock) -> None:
    recorder = Recorder()
    heads = parse_recipients(HEADS)
    svc = TicketService(engine, clock, TicketPolicy(department_heads=heads), notifier=recorder)
    register_fleet(svc, batches=2, units=5)
    first = complain(svc, device=dev_id(0, 3)).ticket
    complain(svc, "还是不制冷，出风18度", device=dev_id(0, 3))
    report = svc.check_sla()
    assert (report.delivered, report.failed) == (1, 0)
    (sent,) = recorder.sent
    assert (sent["event"], sent["ticket"], sent["department_head"]) == (
        "repeated_complaint",
        first.id,
        "rd-head@example.com",
    )
    assert svc.check_sla().delivered == 0  # delivered once
    (row,) = alerts(engine)
    assert row.delivered_at == clock.now and row.attempts == 1


def test_an_alert_never_hides_the_tickets_own_overdue_flag(engine, clock: Clock) -> None:
    # the overdue check skips a ticket whose outbox has a row due when the ticket is due
    svc = TicketService(engine, clock)
    register_fleet(svc, batches=2, units=5)
    t = complain(svc, device=dev_id(1, 1)).ticket
    clock.now = t.due_at  # the repeat comes exactly at the acknowledge deadline
    complain(svc, "还是不制冷", device=dev_id(1, 1))
    clock.now += timedelta(minutes=1)
    assert svc.check_sla().flagged == [(t.id, "acknowledge")]


# --- e-mail: a real SMTP server ---------------------------------------------------------------
class Inbox:
    """An aiosmtpd handler that keeps every message with its envelope recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, port: int) -> None:
        from aiosmtpd.controller import Controller

        self.port = port
        self.inbox = Inbox()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    yield server
    server.stop()


def mailer(port: int, clock: Clock, **kw: Any) -> EmailNotifier:
    return EmailNotifier(
        "127.0.0.1", parse_recipients(HEADS), sender="qloop@example.com", port=port,
        timeout_s=5, clock=clock, **kw,
    )  # fmt: skip


def sqlite_service(tmp_path, clock: Clock, notifier: Any) -> TicketService:
    engine = make_engine(f"sqlite:///{tmp_path / 'alerts.db'}")
    return TicketService(engine, clock, TicketPolicy(department_heads=parse_recipients(HEADS)),
                         notifier=notifier)  # fmt: skip


def json_part(msg: email.message.EmailMessage) -> dict:
    text = msg.get_content().replace("\r\n", "\n")
    return json.loads(text.split("\n-- \n", 1)[1])


def test_alerts_and_overdue_tickets_are_emailed_to_each_departments_head(
    tmp_path, clock: Clock, smtp: SmtpServer
) -> None:
    svc = sqlite_service(tmp_path, clock, mailer(smtp.port, clock))
    register_fleet(svc, batches=2, units=5)
    cooling = complain(svc, device=dev_id(0, 1), contact="13800138000").ticket
    complain(svc, "还是不制冷，出风18度", device=dev_id(0, 1), channel="ecommerce")
    rude = complain(svc, RUDE, contact="13911112222").ticket
    assert svc.check_sla().delivered == 1  # the alert; nothing is overdue yet
    clock.now += timedelta(hours=2)
    report = svc.check_sla()
    assert (report.delivered, report.failed) == (2, 0)  # both tickets' acknowledge stage

    by_subject = {m["Subject"]: (to, m) for to, m in smtp.inbox.messages}
    assert set(by_subject) == {
        f"[qloop] 重复投诉 repeated complaint {cooling.id} (R&D)",
        f"[qloop] 超期 overdue {cooling.id} acknowledge (R&D)",
        f"[qloop] 超期 overdue {rude.id} acknowledge (Service)",
    }
    to, alert = by_subject[f"[qloop] 重复投诉 repeated complaint {cooling.id} (R&D)"]
    assert to == ["rd-head@example.com"] and alert["To"] == "rd-head@example.com"
    payload = json_part(alert)
    assert (payload["ticket"], payload["key"], payload["count"]) == (cooling.id, "unit", 2)
    assert "还是不制冷，出风18度" in alert.get_content()  # the customer's words, readable
    assert alert["Message-ID"] == f"<qloop-escalation-{payload['escalation_id']}@example.com>"
    assert alert["Date"].datetime == clock.now - timedelta(hours=2)
    to, overdue = by_subject[f"[qloop] 超期 overdue {rude.id} acknowledge (Service)"]
    assert to == ["quality-manager@example.com"]  # no head named for Service: the default
    assert json_part(overdue)["ticket"] == rude.id
    assert json_part(overdue)["event"] == "sla_overdue"


def test_an_smtp_server_that_is_down_is_retried_later(tmp_path, clock: Clock) -> None:
    port = free_port()  # nothing listens here yet
    svc = sqlite_service(tmp_path, clock, mailer(port, clock, retry_base=timedelta(minutes=1)))
    register_fleet(svc, batches=2, units=5)
    t = complain(svc, device=dev_id(1, 4)).ticket
    complain(svc, "制冷效果还是很差，出风口温度18℃", device=dev_id(1, 4))
    assert (svc.check_sla().failed, svc.check_sla().failed) == (1, 0)  # then not due yet
    clock.now += timedelta(minutes=2)
    assert svc.check_sla().failed == 1
    (row,) = alerts(svc.engine)
    assert row.attempts == 2 and row.delivered_at is None
    assert f"smtp://127.0.0.1:{port}" in row.last_error
    server = SmtpServer(port)  # the server is back
    try:
        clock.now += timedelta(minutes=5)
        assert svc.check_sla().delivered == 1
        (row,) = alerts(svc.engine)
        assert (row.attempts, row.last_error, row.delivered_at) == (3, None, clock.now)
        ((to, msg),) = server.inbox.messages
        assert to == ["rd-head@example.com"] and json_part(msg)["ticket"] == t.id
    finally:
        server.stop()


def test_starttls_required_but_not_offered_is_a_delivery_error(
    clock: Clock, smtp: SmtpServer
) -> None:
    payload = {"event": "sla_overdue", "ticket": "PF1", "department": "R&D"}
    with pytest.raises(DeliveryError, match="STARTTLS"):
        mailer(smtp.port, clock, starttls=True).send(payload)
    assert smtp.inbox.messages == []


def test_fan_out_tries_every_notifier_and_fails_if_one_does(clock: Clock, smtp) -> None:
    webhook_down = WebhookNotifier(f"http://127.0.0.1:{free_port()}/hook", timeout_s=2)
    both = FanOut((webhook_down, mailer(smtp.port, clock)))
    payload = {"event": "repeated_complaint", "ticket": "PF7", "department": "Quality"}
    with pytest.raises(DeliveryError, match="WebhookNotifier: http://127.0.0.1"):
        both.send(payload)
    ((to, _msg),) = smtp.inbox.messages  # the e-mail went all the same
    assert to == ["q@example.com"]
    recorder = Recorder()
    FanOut((recorder, mailer(smtp.port, clock))).send(payload)
    assert recorder.sent == [payload] and len(smtp.inbox.messages) == 2


# --- configuration --------------------------------------------------------------------------
def test_recipients_are_department_address_pairs_with_a_default() -> None:
    assert parse_recipients(HEADS)["*"] == "quality-manager@example.com"
    assert parse_recipients("") == {}
    for bad, says in [
        ("R&D rd@example.com", "is not DEPARTMENT=ADDRESS"),
        ("R&D=rd-head", "is not an e-mail address"),
        ("R&D=a@example.com,R&D=b@example.com", "named twice"),
    ]:
        with pytest.raises(RecipientsError, match=says):
            parse_recipients(bad)
    with pytest.raises(RecipientsError, match=r"a default \(\*=ADDRESS\)"):
        EmailNotifier("smtp.example.com", {"R&D": "rd@example.com"})


def test_settings_build_webhook_and_email_together_and_the_policy() -> None:
    s = Settings(
        escalation_webhook="http://127.0.0.1:9/hook",
        smtp_host="smtp.example.com",
        smtp_port=587,
        smtp_starttls=True,
        smtp_user="qloop",
        smtp_password="secret",
        alert_emails=HEADS,
        escalation_max_attempts=4,
        repeat_alert_window_s=7 * 86_400,
        repeat_alert_batch_min=5,
    )
    notifier = s.api().notifier
    assert isinstance(notifier, FanOut) and notifier.max_attempts == 4
    webhook, mail = notifier.notifiers
    assert isinstance(webhook, WebhookNotifier) and isinstance(mail, EmailNotifier)
    assert (mail.port, mail.starttls, mail.user, mail.password) == (587, True, "qloop", "secret")
    assert "secret" not in repr(mail)
    policy = s.ticket_policy()
    assert (policy.repeat_alert_window_s, policy.repeat_alert_batch_min) == (7 * 86_400, 5)
    assert policy.department_heads["R&D"] == "rd-head@example.com"
    assert isinstance(Settings(smtp_host="h", alert_emails=HEADS).notifier(), EmailNotifier)
    assert Settings().notifier() is None
    defaults = Settings().ticket_policy()
    assert defaults.repeat_alert_unit_min == TicketPolicy().repeat_alert_unit_min == 2
    assert defaults.department_heads == {}


def test_bad_email_settings_are_refused_naming_the_option() -> None:
    with pytest.raises(SettingsError, match=r"--alert-emails \(QLOOP_ALERT_EMAILS\) from the env"):
        load("api", environ={"QLOOP_ALERT_EMAILS": "R&D rd@example.com"})
    with pytest.raises(SettingsError, match=r"needs a default, \*=ADDRESS"):
        Settings(smtp_host="smtp.example.com", alert_emails="R&D=rd@example.com").notifier()
    with pytest.raises(SettingsError, match="--smtp-from"):
        Settings(smtp_host="smtp.example.com", alert_emails=HEADS, smtp_from="qloop").notifier()


def test_the_commands_that_file_feedback_take_the_alert_options() -> None:
    parser = cli.build_parser()
    api = parser.parse_args(["api", "--smtp-host", "mail", "--alert-emails", HEADS])
    assert (api.smtp_host, api.alert_emails) == ("mail", HEADS)
    imp = parser.parse_args(["feedback", "import", "x.csv", "--repeat-alert-window-s", "86400"])
    assert imp.repeat_alert_window_s == "86400"
    with pytest.raises(SystemExit):  # a password on the command line would show in ps
        parser.parse_args(["api", "--smtp-password", "x"])
