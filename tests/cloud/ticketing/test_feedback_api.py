"""``POST /api/v1/feedback`` as CONTRACTS.md §4.1 gives it: 201 with a new ticket, 200 with the
open one it repeats, the customer-service role, and a clear 4xx (never a 5xx) for bad input."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.cloud.ticketing.conftest import ADMIN

BODY = {
    "channel": "hotline",
    "received_at": "2024-05-10T14:30:00+08:00",
    "text": "空调使用1个月后，制冷效果明显下降，出风口温度18℃(设定16℃)，噪音比初期增大。",
    "customer": {"name": "张先生", "contact": "13800138000"},
    "model": "KFR-35GW",
    "serial": "SN-ac-0-03",
    "purchase_date": "2024-03-15",
    "demand": "repair",
}
CLASSIFICATION = {"category", "fault", "severity", "department", "confidence", "needs_triage"}


def token(client: TestClient, role: str) -> dict[str, str]:
    r = client.post("/api/v1/tokens", json={"name": f"{role}-1", "role": role})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_feedback_opens_a_ticket_then_repeats_it(client: TestClient) -> None:
    r = client.post("/api/v1/feedback", json=BODY)
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["id"].startswith("PF202611") and t["source"] == "feedback"
    assert (t["channel"], t["scope"], t["detected_at"]) == (
        "hotline",
        "customer",
        "2024-05-10T06:30:00Z",
    )
    assert set(t["classification"]) >= CLASSIFICATION
    assert t["classification"]["category"] == "performance"
    assert t["classification"]["severity"] == "II"
    assert t["departments"] == ["R&D", "Production"]
    assert t["evidence"]["complaints"][0]["text"] == BODY["text"]
    assert t["evidence"]["unit"]["matched"] is False  # no unit announced that serial
    again = client.post("/api/v1/feedback", json=BODY | {"channel": "ecommerce"})
    assert again.status_code == 200 and again.json()["id"] == t["id"]
    assert again.json()["repeats"] == 1
    same = client.post("/api/v1/feedback", json=BODY)  # a client retrying: nothing new
    assert same.status_code == 200 and same.json()["repeats"] == 1
    listed = client.get("/api/v1/tickets", params={"source": "feedback"}).json()["items"]
    assert [x["id"] for x in listed] == [t["id"]]


def test_only_channel_and_text_are_required(client: TestClient) -> None:
    r = client.post("/api/v1/feedback", json={"channel": "survey", "text": "Too loud at night."})
    assert r.status_code == 201, r.text
    assert r.json()["detected_at"] == "2026-11-22T10:00:01Z"  # received now


def test_customer_service_files_and_corrects_but_cannot_move_tickets(client: TestClient) -> None:
    cs = token(client, "service")
    r = client.post("/api/v1/feedback", json=BODY, headers=cs)
    assert r.status_code == 201
    ticket = r.json()["id"]
    fixed = client.post(
        f"/api/v1/tickets/{ticket}/classification",
        json={"category": "workmanship", "fault": "noise_rise", "severity": "I"},
        headers=cs,
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["classification"]["corrected_by"] == "service-1"
    move = client.post(f"/api/v1/tickets/{ticket}/transitions", json={"to": "ack"}, headers=cs)
    assert move.status_code == 403
    viewer = token(client, "viewer")
    assert client.post("/api/v1/feedback", json=BODY, headers=viewer).status_code == 403
    assert client.get(f"/api/v1/tickets/{ticket}", headers=viewer).status_code == 200


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"text": ""}, "text"),
        ({"text": "   \n"}, "text"),
        ({"text": "啊" * 1_000_000}, "text"),
        ({"channel": "carrier-pigeon"}, "channel"),
        ({"received_at": "yesterday"}, "received_at"),
        ({"received_at": "2024-05-10T14:30:00"}, "received_at"),  # no time zone
        ({"received_at": "1970-01-01T00:00:00Z"}, "received_at"),
        ({"purchase_date": "2024-13-45"}, "purchase_date"),
        ({"demand": "free stuff"}, "demand"),
        ({"customer": {"contact": "1" * 500}}, "contact"),
    ],
)
def test_bad_feedback_is_a_422_naming_the_field(client: TestClient, change, where) -> None:
    r = client.post("/api/v1/feedback", json=BODY | change)
    assert r.status_code == 422, r.text
    assert where in str(r.json()["detail"])
    assert len(r.content) < 4_000  # a 1 MB text does not come back


def test_a_body_that_is_not_utf8_is_a_4xx(client: TestClient) -> None:
    raw = '{"channel": "hotline", "text": "空调不制冷"}'.encode("gb18030")
    r = client.post("/api/v1/feedback", content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text


def test_correcting_a_telemetry_ticket_or_a_missing_one(client: TestClient, seeded) -> None:
    telemetry = client.get("/api/v1/tickets", params={"scope": "batch"}).json()["items"][0]
    body = {"category": "performance", "severity": "I"}
    r = client.post(f"/api/v1/tickets/{telemetry['id']}/classification", json=body)
    assert r.status_code == 422 and "did not come from feedback" in r.text
    assert client.post("/api/v1/tickets/PF209901999/classification", json=body).status_code == 404
    r = client.post(
        f"/api/v1/tickets/{telemetry['id']}/classification", json=body | {"category": "sensor"}
    )
    assert r.status_code == 422  # not a category people's feedback can have


def test_openapi_documents_feedback(app) -> None:
    with TestClient(app) as c:
        paths = c.get("/openapi.json").json()["paths"]
    post = paths["/api/v1/feedback"]["post"]
    assert {"200", "201", "401", "403", "422"} <= set(post["responses"])
    assert "FeedbackCreate" in str(post["requestBody"])
    assert ADMIN not in str(paths)


def test_the_check_and_the_callback_over_http(client: TestClient) -> None:
    cs, viewer = token(client, "service"), token(client, "viewer")
    tid = client.post("/api/v1/feedback", json={"channel": "store", "text": "师傅乱收费"}).json()[
        "id"
    ]
    url = f"/api/v1/tickets/{tid}"
    assert client.post(f"{url}/verification", json={"result": "effective"}).status_code == 409
    for to in ("acknowledged", "in_progress"):
        assert client.post(f"{url}/transitions", json={"to": to}).status_code == 200
    fix = {"description": "refund", "effective_from": "2026-11-22T00:00:00Z"}
    assert client.post(f"{url}/fix", json=fix).status_code == 201
    assert client.post(f"{url}/verification", json={"result": "great"}).status_code == 422
    r = client.post(f"{url}/verification", json={"result": "effective"}, headers=cs)
    assert r.status_code == 403  # the check is the quality engineer's
    r = client.post(f"{url}/verification", json={"result": "effective", "note": "refunded"})
    assert r.status_code == 200 and r.json()["status"] == "callback"
    both = {"note": "n", "customer": "c", "score": 5, "satisfaction": "dissatisfied"}
    assert client.post(f"{url}/followups", json=both).status_code == 422
    body = {"note": "not happy", "customer": "c", "satisfaction": "dissatisfied"}
    assert client.post(f"{url}/followups", json=body, headers=viewer).status_code == 403
    r = client.post(f"{url}/followups", json=body, headers=cs)
    assert r.status_code == 201 and r.json()["status"] == "reopened"
    assert r.json()["evidence"]["callbacks"][0]["score"] == 2
