"""SLA escalations delivered to a real HTTP server (http.server in a thread), with retry, and the
API's background SLA task."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from cloud.ticketing.app import create_app
from cloud.ticketing.escalation import DeliveryError, WebhookNotifier
from cloud.ticketing.service import TicketService
from qloop.settings import Settings
from tests import ticketing_support as support
from tests.helpers import wait_for
from tests.ticketing_support import Clock, dev_id, finding, register_fleet

clock = support.clock  # fixture


class Receiver:
    """A webhook endpoint that answers with the queued status codes (then 204) and keeps bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                code = receiver.answers.pop(0) if receiver.answers else 204
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/qloop"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_overdue_ticket_is_escalated_once_with_retry(tmp_path, clock: Clock, receiver) -> None:
    from cloud.ticketing.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'sla.db'}")
    notifier = WebhookNotifier(receiver.url, retry_base=timedelta(minutes=1))
    svc = TicketService(engine, clock, notifier=notifier)
    register_fleet(svc, batches=2, units=5)
    (change,) = svc.record_finding(finding(dev_id(0, 0)))
    assert svc.check_sla().flagged == []

    receiver.answers = [500]  # the receiver is down the first time
    clock.now += timedelta(hours=2)
    report = svc.check_sla()
    assert (report.flagged, report.delivered, report.failed) == (
        [(change.ticket_id, "acknowledge")],
        0,
        1,
    )
    assert svc.check_sla().failed == 0  # not due for a retry yet
    assert len(receiver.bodies) == 1
    clock.now += timedelta(minutes=1)
    assert svc.check_sla().delivered == 1
    assert svc.check_sla().delivered == 0  # delivered: never again
    first, retry = receiver.bodies
    assert first == retry
    assert (first["event"], first["ticket"], first["stage"]) == (
        "sla_overdue",
        change.ticket_id,
        "acknowledge",
    )
    assert first["escalation_id"] >= 1 and first["departments"] == ["R&D", "Production"]
    t = svc.get_ticket(change.ticket_id)
    assert (t.overdue, t.overdue_stage) == (True, "acknowledge")
    assert [h.action for h in t.history].count("overdue") == 1
    engine.dispose()


def test_unreachable_webhook_is_a_delivery_error(receiver) -> None:
    url = receiver.url
    receiver.close()
    with pytest.raises(DeliveryError, match="unreachable"):
        WebhookNotifier(url, timeout_s=2).send({"x": 1})
    with pytest.raises(ValueError, match="http"):
        WebhookNotifier("ftp://example.org/hook")


def test_api_checks_the_sla_clocks_in_the_background(tmp_path, clock: Clock, receiver) -> None:
    settings = Settings(
        db=f"sqlite:///{tmp_path / 'api.db'}",
        api_token="t",
        escalation_webhook=receiver.url,
        sla_check_s=0.05,
    )
    app = create_app(settings.api(), clock=clock)
    svc: TicketService = app.state.service
    register_fleet(svc, batches=2, units=5)
    (change,) = svc.record_finding(finding(dev_id(1, 2), fault="overcurrent"))
    clock.now += timedelta(hours=1, minutes=1)
    with TestClient(app) as client:
        wait_for(lambda: receiver.bodies, timeout=30, what="an escalation")
        item = client.get(
            f"/api/v1/tickets/{change.ticket_id}", headers={"Authorization": "Bearer t"}
        ).json()
    (body,) = receiver.bodies
    assert (body["ticket"], body["stage"], body["priority"]) == (
        change.ticket_id,
        "acknowledge",
        "urgent",
    )
    assert (item["overdue"], item["overdue_stage"]) == (True, "acknowledge")
