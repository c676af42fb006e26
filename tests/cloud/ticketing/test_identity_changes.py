"""A birth that announces another batch does not move the unit: it waits for a person, who
accepts it (the unit's faults then count in the new batch) or rejects it; a forged birth cannot
empty or fill a batch ticket by itself."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cloud.ticketing.errors import TicketConflict
from cloud.ticketing.identity import ChangeNotFound
from cloud.ticketing.models import Device
from cloud.ticketing.service import TicketService
from tests import ticketing_support as support
from tests.cloud.ticketing.conftest import signed_in
from tests.ticketing_support import dev_id, finding, open_tickets, record, register_fleet

clock, db_url, engine, svc = support.clock, support.db_url, support.engine, support.svc


def _device(svc: TicketService, device: str) -> Device:
    with Session(svc.engine) as s:
        return s.get(Device, device)


def test_a_new_batch_is_held_for_a_person_and_moves_nothing(svc: TicketService) -> None:
    register_fleet(svc)
    for u in range(8):  # batch B0 stands out
        svc.record_finding(finding(dev_id(0, u)))
    (batch,) = open_tickets(svc, scope="batch")
    assert batch.batch == "B0" and batch.affected_devices == 8
    forged = record(dev_id(0, 3), "EVIL-BATCH")
    assert svc.register_device(forged) == []
    assert svc.register_device(forged) == []  # announced again: still one change
    assert _device(svc, dev_id(0, 3)).batch == "B0"  # the unit stays where it was
    (change,) = svc.identity_changes()
    assert change["device"] == dev_id(0, 3) and change["status"] == "pending"
    assert change["previous"]["batch"] == "B0" and change["announced"]["batch"] == "EVIL-BATCH"
    assert [t.batch for t in open_tickets(svc, scope="batch")] == ["B0"]
    assert svc.get_ticket(batch.id).affected_devices == 8

    decided, _ = svc.decide_identity_change(change["id"], "reject", actor="qe", note="forged")
    assert decided["status"] == "rejected" and decided["decided_by"] == "qe"
    assert svc.identity_changes() == [] and _device(svc, dev_id(0, 3)).batch == "B0"
    with pytest.raises(TicketConflict, match="rejected already"):
        svc.decide_identity_change(change["id"], "accept", actor="qe")
    with pytest.raises(ChangeNotFound):
        svc.decide_identity_change(999, "accept", actor="qe")


def test_an_accepted_change_moves_the_unit_and_its_faults(svc: TicketService) -> None:
    register_fleet(svc)
    for u in range(8):
        svc.record_finding(finding(dev_id(1, u), "noise_rise"))
    svc.register_device(record(dev_id(1, 0), "B9"))  # the unit was labelled wrongly at the line
    (change,) = svc.identity_changes()
    decided, _ = svc.decide_identity_change(change["id"], "accept", actor="qe")
    assert decided["status"] == "accepted" and _device(svc, dev_id(1, 0)).batch == "B9"
    svc.register_device(record(dev_id(1, 0), "B9"))  # its births now agree: nothing new held
    assert svc.identity_changes() == []
    assert len(svc.identity_changes(status=None)) == 1


def test_announcing_the_old_identity_again_withdraws_the_change(svc: TicketService) -> None:
    register_fleet(svc, batches=1, units=2)
    svc.register_device(record(dev_id(0, 0), "B7"))
    svc.register_device(record(dev_id(0, 0), "B0"))  # a glitch, put right by the unit itself
    assert svc.identity_changes() == []
    (withdrawn,) = svc.identity_changes(status="withdrawn")
    assert withdrawn["decided_by"] == "system"


def test_the_api_lists_them_and_engineers_decide(app) -> None:
    service: TicketService = app.state.service
    register_fleet(service, batches=1, units=3)
    service.register_device(record(dev_id(0, 1), "B-NEW"))
    with TestClient(app) as c:
        c.headers["Authorization"] = "Bearer admin-secret"
        listed = c.get("/api/v1/devices/changes").json()["items"]
        assert [(x["device"], x["announced"]["batch"]) for x in listed] == [(dev_id(0, 1), "B-NEW")]
        cid = listed[0]["id"]
        viewer = service.create_token(name="v", role="viewer")
        refused = c.post(
            f"/api/v1/devices/changes/{cid}", json={"decision": "accept"},
            headers={"Authorization": f"Bearer {viewer}"},
        )  # fmt: skip
        assert refused.status_code == 403
        bad = c.post(f"/api/v1/devices/changes/{cid}", json={"decision": "maybe"})
        assert bad.status_code == 422
        ok = c.post(f"/api/v1/devices/changes/{cid}", json={"decision": "accept", "note": "ok"})
        assert ok.status_code == 200 and ok.json()["status"] == "accepted"
        again = c.post(f"/api/v1/devices/changes/{cid}", json={"decision": "reject"})
        assert again.status_code == 409 and "accepted already" in again.json()["detail"]
        assert (
            c.post("/api/v1/devices/changes/424242", json={"decision": "accept"}).status_code == 404
        )
        assert c.get("/api/v1/devices/changes", params={"status": "accepted"}).json()["items"]
        assert c.get("/api/v1/devices/changes", params={"status": "nope"}).status_code == 422


def test_the_dashboard_flags_them_and_an_engineer_decides_there(app) -> None:
    service: TicketService = app.state.service
    register_fleet(service, batches=1, units=3)
    service.register_device(record(dev_id(0, 2), "EVIL-BATCH"))
    with signed_in(app, "engineer") as engineer:
        page = engineer.get("/dashboard").text
        section = re.search(r'<section[^>]*id="identity-changes".*?</section>', page, re.S)[0]
        assert dev_id(0, 2) in section and "EVIL-BATCH" in section and 'value="reject"' in section
        cid = re.search(r'data-change="(\d+)"', section)[1]
        r = engineer.post(f"/devices/changes/{cid}", data={"decision": "reject"},
                          follow_redirects=False)  # fmt: skip
        assert r.status_code == 303
        assert 'id="identity-changes"' not in engineer.get("/dashboard").text
    with signed_in(app, "viewer") as viewer:
        service.register_device(record(dev_id(0, 1), "B-OTHER"))
        page = viewer.get("/dashboard").text
        assert "B-OTHER" in page and 'value="accept"' not in page  # seen, not decided
        assert (
            viewer.post(f"/devices/changes/{cid}", data={"decision": "accept"}).status_code == 403
        )
