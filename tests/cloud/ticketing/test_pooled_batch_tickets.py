"""A batch finding of the pooled shift test (cloud/anomaly/pooled.py), or of the peer level test
(cloud/anomaly/peers.py), in ticketing: it opens one batch ticket that says which test opened it
and with what evidence, folds the batch's device tickets, takes the units' later alarms, and the
same finding twice changes nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cloud.anomaly.peers import TEST as PEERS_TEST
from cloud.anomaly.peers import PeerFinding
from cloud.anomaly.pooled import TEST, BatchFinding
from cloud.ticketing.history import ChangeKind
from cloud.ticketing.service import TicketService
from tests import ticketing_support as support
from tests.cloud.ticketing.conftest import ADMIN
from tests.ticketing_support import (
    MODEL,
    NOW_TS,
    dev_id,
    finding,
    open_tickets,
    register_fleet,
)

clock, db_url, engine, svc = support.clock, support.db_url, support.engine, support.svc  # fixtures


def pooled(batch: str, units: dict[str, float], ts: float = NOW_TS) -> BatchFinding:
    return BatchFinding(
        MODEL, batch, "cooling_decline", ts, TEST, 20, len(units), 60, 180.0, 0.0, 2e-5, 6e-5,
        0.01, 5.0, units,
    )  # fmt: skip


def test_pooled_finding_opens_one_batch_ticket_with_its_evidence(svc: TicketService) -> None:
    register_fleet(svc)
    svc.record_finding(finding(dev_id(0, 10)))  # one unit alarmed: a device ticket
    assert len(open_tickets(svc, scope="device")) == 1
    shifts = {dev_id(0, 1): 14.2, dev_id(0, 2): 9.5, dev_id(0, 3): 6.1}

    changes = svc.record_batch_finding(pooled("B0", shifts))

    assert [c.kind for c in changes][:1] == [ChangeKind.OPENED]
    [ticket] = open_tickets(svc, scope="batch")
    t = svc.get_ticket(ticket.id)
    assert (t.model, t.batch, t.fault, t.batch_devices) == (MODEL, "B0", "cooling_decline", 20)
    assert t.evidence["opened_by"] == TEST
    assert t.evidence["pooled"]["statistic"] == 3
    assert t.evidence["pooled"]["p_adjusted"] == 6e-5
    assert t.evidence["pooled"]["shifts"] == shifts
    listed = {e["device"]: e for e in t.evidence["devices"]}
    assert set(listed) == {*shifts, dev_id(0, 10)}  # the drifting units and the alarmed one
    assert all(listed[d]["basis"] == "pooled" and not listed[d]["active"] for d in shifts)
    assert listed[dev_id(0, 10)]["active"]
    assert t.affected_devices == 4
    assert t.history[0].note.startswith("pooled shift")
    # the unit's device ticket was folded into the batch ticket
    assert open_tickets(svc, scope="device") == []


def test_the_same_pooled_finding_twice_changes_nothing(svc: TicketService) -> None:
    register_fleet(svc)
    f = pooled("B1", {dev_id(1, 0): 8.0, dev_id(1, 1): 7.0, dev_id(1, 2): 6.0})
    assert svc.record_batch_finding(f)
    [ticket] = open_tickets(svc, scope="batch")
    before = svc.get_ticket(ticket.id)

    assert svc.record_batch_finding(f) == []

    after = svc.get_ticket(ticket.id)
    assert len(open_tickets(svc, scope="batch")) == 1
    assert after.evidence == before.evidence
    assert len(after.history) == len(before.history)


def test_stronger_evidence_and_later_alarms_join_the_same_ticket(svc: TicketService) -> None:
    register_fleet(svc)
    three = {dev_id(2, 0): 8.0, dev_id(2, 1): 7.0, dev_id(2, 2): 6.0}
    svc.record_batch_finding(pooled("B2", three))
    [ticket] = open_tickets(svc, scope="batch")

    # a fourth unit beyond the level: the evidence grows, no second ticket
    four = three | {dev_id(2, 3): 5.5}
    changes = svc.record_batch_finding(pooled("B2", four, ts=NOW_TS + 3600))
    assert ChangeKind.UPDATED in [c.kind for c in changes]
    # a listed unit's own alarm: it joins as active (added, not "reactivated"), no device ticket
    svc.record_finding(finding(dev_id(2, 0), ts=NOW_TS + 7200))

    assert [t.id for t in open_tickets(svc, scope="batch")] == [ticket.id]
    assert open_tickets(svc, scope="device") == []
    t = svc.get_ticket(ticket.id)
    assert t.evidence["pooled"]["shifts"] == four
    assert t.evidence["opened_by"] == TEST  # the test that opened it stays named
    listed = {e["device"]: e for e in t.evidence["devices"]}
    assert set(listed) == set(four)
    assert listed[dev_id(2, 0)]["active"] and "basis" not in listed[dev_id(2, 0)]
    assert t.affected_devices == 4
    assert not any("reactivated" in (h.note or "") for h in t.history)


def test_a_batch_with_no_registered_unit_opens_nothing(svc: TicketService) -> None:
    register_fleet(svc)
    assert svc.record_batch_finding(pooled("B9", {"x-1": 9.0, "x-2": 8.0, "x-3": 7.0})) == []
    assert open_tickets(svc, scope="batch") == []


def test_the_ticket_page_shows_the_drifting_units_and_the_test(app) -> None:
    service: TicketService = app.state.service
    register_fleet(service)
    units = {dev_id(3, 0): 8.0, dev_id(3, 1): 7.0, dev_id(3, 2): 6.0}
    service.record_batch_finding(pooled("B3", units))
    [ticket] = open_tickets(service, scope="batch")

    with TestClient(app, base_url="http://qloop.test") as browser:
        signed = browser.post("/login", data={"token": ADMIN}, follow_redirects=False)
        assert signed.status_code == 303
        page = browser.get(f"/tickets/{ticket.id}")

    assert page.status_code == 200 and f'id="ticket-id">{ticket.id}' in page.text
    assert page.text.count('data-state="drifting"') == 3  # not "recovered": they never alarmed
    assert 'data-stat="opened_by" data-test="pooled"' in page.text
    # the pooled test's numbers are labelled, not a Python dict's repr
    assert 'id="pooled"' in page.text and 'data-pooled="p_adjusted">6e-05<' in page.text
    assert "{&#x27;" not in page.text and "&#x27;shifts&#x27;" not in page.text


def test_the_pooled_evidence_reads_in_chinese(app) -> None:
    service: TicketService = app.state.service
    register_fleet(service)
    service.record_batch_finding(pooled("B3", {dev_id(3, i): 7.0 - i for i in range(3)}))
    [ticket] = open_tickets(service, scope="batch")

    with TestClient(app, base_url="http://qloop.test") as browser:
        browser.post("/login", data={"token": ADMIN}, follow_redirects=False)
        page = browser.get(f"/tickets/{ticket.id}", headers={"accept-language": "zh-CN"})

    assert "合并漂移检验" in page.text and "本批次 20 台中有 3 台" in page.text
    assert 'data-pooled="reference">同型号其他批次<' in page.text
    assert "units beyond the level now" not in page.text


def peers(batch: str, units: dict[str, float], ts: float = NOW_TS) -> PeerFinding:
    return PeerFinding(
        MODEL, batch, "cooling_decline", ts, 20, len(units), 40, 1, 9.1, 7.8, 0.08, 3e-6, 1e-5,
        0.01, units,
    )  # fmt: skip


def test_a_peer_finding_opens_a_batch_ticket_listing_the_short_units(app) -> None:
    """The peer level test's finding (cloud/anomaly/peers.py) comes the pooled test's way: one
    batch ticket naming the test, its units listed short of their peers, no alarm of their own;
    the page says so in English and in Chinese."""
    service: TicketService = app.state.service
    register_fleet(service)
    short = {dev_id(1, 0): 0.16, dev_id(1, 1): 0.15, dev_id(1, 2): 0.12}
    changes = service.record_batch_finding(peers("B1", short))

    assert [c.kind for c in changes][:1] == [ChangeKind.OPENED]
    [ticket] = open_tickets(service, scope="batch")
    t = service.get_ticket(ticket.id)
    assert t.evidence["opened_by"] == PEERS_TEST and t.evidence["pooled"]["kind"] == "peers"
    listed = {e["device"]: e for e in t.evidence["devices"]}
    assert set(listed) == set(short)
    assert all(e["basis"] == "peers" and not e["active"] for e in listed.values())
    assert listed[dev_id(1, 0)]["evidence"] == {"shortfall": 0.16}
    # a fourth unit short: the same ticket, its note says what the peer test found
    service.record_batch_finding(peers("B1", short | {dev_id(1, 3): 0.1}, ts=NOW_TS + 3600))
    assert [x.id for x in open_tickets(service, scope="batch")] == [ticket.id]
    notes = [h.note or "" for h in service.get_ticket(ticket.id).history]
    assert any(n.startswith("peer level test: 4 of 20 units short") for n in notes), notes

    with TestClient(app, base_url="http://qloop.test") as browser:
        browser.post("/login", data={"token": ADMIN}, follow_redirects=False)
        page = browser.get(f"/tickets/{ticket.id}")
        zh = browser.get(f"/tickets/{ticket.id}", headers={"accept-language": "zh-CN"})

    assert page.text.count('data-state="short"') == 4
    assert 'data-stat="opened_by" data-test="peers"' in page.text
    assert "Peer level test" in page.text and "8 % or more short" in page.text
    assert 'data-pooled="reference_level">9.1<' in page.text
    assert "同型号批次对比检验" in zh.text and "低于同型号其他批次" in zh.text
    assert "本批次 20 台中有 4 台" in zh.text and "Peer level test" not in zh.text
