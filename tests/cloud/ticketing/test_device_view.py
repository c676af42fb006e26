"""Lost data in the ticket database: the worker's lost-seq counts ride on its device touches
(``touch_devices``), the API shows them on the unit's view (``/api/v1/devices/{device}``) and
the fleet's total on ``/metrics``."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cloud.ticketing.device_view import lost_seqs_total
from cloud.ticketing.models import Device
from cloud.ticketing.service import TicketService
from tests import ticketing_support as support
from tests.scrape import samples
from tests.ticketing_support import NOW_TS, dev_id, finding, register_fleet

clock, db_url, engine, svc = support.clock, support.db_url, support.engine, support.svc


def test_touches_carry_the_lost_seq_counts(svc: TicketService, engine) -> None:
    register_fleet(svc, batches=1, units=3)
    a, b, c = dev_id(0, 0), dev_id(0, 1), dev_id(0, 2)
    svc.touch_devices({a: NOW_TS + 60}, {a: 3, b: 5, "never-born": 7})
    with Session(engine) as s:
        assert [s.get(Device, d).lost_seqs for d in (a, b, c)] == [3, 5, 0]
        assert s.get(Device, a).last_seen_ts == NOW_TS + 60
        assert lost_seqs_total(s) == (8, 2)
    svc.touch_devices({}, {b: 0})  # a gap filled late: the count goes back down
    with Session(engine) as s:
        assert s.get(Device, b).lost_seqs == 0
        assert lost_seqs_total(s) == (3, 1)
    svc.touch_devices({c: NOW_TS + 60})  # a touch without counts leaves them alone
    with Session(engine) as s:
        assert s.get(Device, a).lost_seqs == 3


def test_the_api_shows_a_units_lost_seqs_and_the_fleets_total(client, seeded) -> None:
    seeded.touch_devices({}, {"ac-0-01": 4, "ac-2-05": 1})
    unit = client.get("/api/v1/devices/ac-0-01")
    assert unit.status_code == 200
    body = unit.json()
    assert body["lost_seqs"] == 4 and (body["model"], body["batch"]) == ("M1", "B0")
    assert [f["fault"] for f in body["active_faults"]] == ["cooling_decline"]
    healthy = client.get("/api/v1/devices/ac-3-00").json()
    assert healthy["lost_seqs"] == 0 and healthy["active_faults"] == []
    missing = client.get("/api/v1/devices/no-such-unit")
    assert missing.status_code == 404 and "no-such-unit" in missing.json()["detail"]
    assert client.get("/api/v1/devices/changes").json() == {"items": []}  # still the changes
    got = samples(client.get("/metrics").text)
    assert got[("qloop_lost_seqs", ())] == 5 and got[("qloop_devices_with_lost_seqs", ())] == 2


def test_a_units_view_needs_a_token(app, seeded) -> None:
    with TestClient(app) as anonymous:
        assert anonymous.get("/api/v1/devices/ac-0-01").status_code == 401


def test_findings_do_not_touch_the_count(svc: TicketService, engine) -> None:
    register_fleet(svc, batches=1, units=2)
    svc.touch_devices({}, {dev_id(0, 0): 2})
    svc.record_finding(finding(dev_id(0, 0)))
    with Session(engine) as s:
        assert s.get(Device, dev_id(0, 0)).lost_seqs == 2


def test_a_change_id_past_the_keys_range_is_refused_not_a_crash(client) -> None:
    huge = client.post("/api/v1/devices/changes/9223372036854775808", json={"decision": "accept"})
    assert huge.status_code == 422
