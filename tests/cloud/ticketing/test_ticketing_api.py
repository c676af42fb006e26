"""The ticketing HTTP API (CONTRACTS.md §4) through FastAPI's TestClient; no sockets."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cloud.anomaly.base import Finding
from cloud.ticketing.app import create_app
from cloud.ticketing.service import TicketService
from qloop.loading import load
from tests.cloud.ticketing.conftest import T0

TICKET_KEYS = {
    "id", "scope", "model", "batch", "device", "fault", "category", "severity", "priority",
    "department", "departments", "status", "affected_devices", "batch_devices", "detected_at",
    "opened_at", "due_at", "evidence",
}  # fmt: skip
EXTENSIONS = {"stage", "overdue", "overdue_stage"}  # optional fields beyond the contract
FEEDBACK = {"source", "channel", "classification", "parent", "repeats"}  # §4.1
DETAIL = {"history", "fix", "cause_analysis", "measures", "measure_figures"}


def test_healthz_needs_no_token(app) -> None:
    with TestClient(app) as c:
        assert c.get("/healthz").json() == {"status": "ok"}


def test_openapi(app) -> None:
    with TestClient(app) as c:
        paths = c.get("/openapi.json").json()["paths"]
    assert {"/api/v1/tickets", "/api/v1/tickets/{ticket_id}"} <= set(paths)
    fix = paths["/api/v1/tickets/{ticket_id}/fix"]["post"]
    assert {"201", "401", "403", "404", "409", "422"} <= set(fix["responses"])
    assert "FixCreate" in str(fix["requestBody"])
    assert "404" in paths["/api/v1/tickets/{ticket_id}"]["get"]["responses"]
    assert "201" in paths["/api/v1/tickets/{ticket_id}/followups"]["post"]["responses"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc"])
def test_missing_or_bad_token_is_401(app, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    with TestClient(app) as c:
        r = c.get("/api/v1/tickets", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


def test_ticket_json_follows_the_contract(client: TestClient, seeded) -> None:
    (item,) = client.get("/api/v1/tickets", params={"scope": "batch"}).json()["items"]
    assert set(item) == TICKET_KEYS | EXTENSIONS | FEEDBACK
    assert (item["source"], item["classification"], item["repeats"]) == ("telemetry", None, 0)
    assert (item["stage"], item["overdue"], item["overdue_stage"]) == ("acknowledge", False, None)
    assert item["id"].startswith("PF202611")
    assert (item["scope"], item["batch"], item["device"]) == ("batch", "B0", None)
    assert (item["affected_devices"], item["batch_devices"]) == (8, 20)
    assert item["detected_at"] == "2023-12-14T22:13:20Z"
    assert item["opened_at"] == "2026-11-22T10:00:01Z"
    assert item["due_at"] == "2026-11-22T11:00:01Z"
    assert len(item["evidence"]["devices"]) == 8


def test_filters(client: TestClient, seeded) -> None:
    def ids(**params: str) -> set[str]:
        return {t["id"] for t in client.get("/api/v1/tickets", params=params).json()["items"]}

    everything = ids(limit="500")
    # 1 batch + 3 folded device tickets (B0 stands out at its 4th unit: the background rate) +
    # 7 noise device tickets
    assert len(everything) == 11
    assert len(ids(status="closed")) == 3
    assert len(ids(status="open", scope="device")) == 7
    assert len(ids(fault="noise_rise", batch="B1")) == 3
    assert len(ids(severity="III")) == 1
    assert ids(model="other") == set()


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"status": "opened"}, "'open'"),
        ({"severity": "IV"}, "'III'"),
        ({"scope": "fleet"}, "'batch'"),
        ({"limit": "0"}, "greater than or equal to 1"),
        ({"limit": "501"}, "less than or equal to 500"),
        ({"cursor": "not-a-cursor"}, "invalid cursor"),
    ],
)
def test_bad_filters_are_422_with_a_message(client: TestClient, params, needle: str) -> None:
    r = client.get("/api/v1/tickets", params=params)
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert needle in error["msg"]
    assert error["loc"][-1] == next(iter(params))


def test_paging_with_cursor(client: TestClient, seeded) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "5"} | ({"cursor": cursor} if cursor else {})
        body = client.get("/api/v1/tickets", params=params).json()
        seen += [t["id"] for t in body["items"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 11
    default = client.get("/api/v1/tickets").json()
    assert default["next"] is None and len(default["items"]) == 11


def test_one_ticket_with_history_and_404(client: TestClient, seeded) -> None:
    tid = client.get("/api/v1/tickets", params={"scope": "batch"}).json()["items"][0]["id"]
    body = client.get(f"/api/v1/tickets/{tid}").json()
    assert set(body) == TICKET_KEYS | EXTENSIONS | FEEDBACK | DETAIL
    assert body["fix"] is None
    assert [h["action"] for h in body["history"]][:2] == ["opened", "absorbed"]
    r = client.get("/api/v1/tickets/PF209901999")
    assert r.status_code == 404 and "PF209901999" in r.json()["detail"]


def test_transitions_comments_and_roles(client: TestClient, seeded) -> None:
    tid = client.get("/api/v1/tickets", params={"scope": "batch"}).json()["items"][0]["id"]
    url = f"/api/v1/tickets/{tid}"

    r = client.post(f"{url}/transitions", json={"to": "closed"})
    assert r.status_code == 409
    assert "legal from 'open': acknowledged" in r.json()["detail"]

    r = client.post(f"{url}/transitions", json={"to": "acknowledged", "note": "on it"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    r = client.post(f"{url}/comments", json={"text": "compressor lot 7 suspected"})
    assert r.status_code == 201
    last = r.json()["history"][-2:]
    assert [(h["actor"], h["action"], h["note"]) for h in last] == [
        ("admin", "transition", "on it"),
        ("admin", "comment", "compressor lot 7 suspected"),
    ]

    token = client.post("/api/v1/tokens", json={"name": "ann", "role": "viewer"}).json()["token"]
    viewer = {"Authorization": f"Bearer {token}"}
    assert client.get(url, headers=viewer).status_code == 200
    r = client.post(f"{url}/transitions", json={"to": "in_progress"}, headers=viewer)
    assert r.status_code == 403
    assert client.post("/api/v1/tokens", json={"name": "x"}, headers=viewer).status_code == 403
    assert (
        client.post("/api/v1/tickets/PF209901999/comments", json={"text": "x"}).status_code == 404
    )


def test_settings_come_from_qloop_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("QLOOP_API_TOKEN", "from-env")
    monkeypatch.setenv("QLOOP_DB", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("QLOOP_BROKER", "localhost:1883")  # another component's option: ignored
    monkeypatch.setenv("QLOOP_ALPHA", "0.05")
    settings = load("api")
    assert settings.ticket_policy().alpha == 0.05
    with TestClient(create_app(settings.api())) as c:
        ok = c.get("/api/v1/tickets", headers={"Authorization": "Bearer from-env"})
    assert ok.status_code == 200 and ok.json() == {"items": [], "next": None}


def test_fix_verification_and_followup(client: TestClient, seeded) -> None:
    tid = client.get("/api/v1/tickets", params={"scope": "batch"}).json()["items"][0]["id"]
    url = f"/api/v1/tickets/{tid}"
    fix = {"description": "replaced TXV lot 7", "effective_from": "2023-12-15T00:00:00Z"}
    r = client.post(f"{url}/fix", json=fix)
    assert r.status_code == 409
    assert "cannot fix on ticket" in r.json()["detail"] and "in status 'open'" in r.json()["detail"]
    for to in ("acknowledged", "in_progress"):
        assert client.post(f"{url}/transitions", json={"to": to}).status_code == 200

    r = client.post(f"{url}/fix", json={**fix, "devices": ["ac-1-00"]})
    assert r.status_code == 422 and "not units of M1 batch B0" in r.json()["detail"][0]["msg"]
    r = client.post(f"{url}/fix", json={**fix, "effective_from": "2023-12-15T00:00:00"})
    assert r.status_code == 422  # no time zone: ambiguous
    r = client.post(f"{url}/fix", json={**fix, "devices": []})
    assert r.status_code == 422

    r = client.post(f"{url}/fix", json=fix)
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "verifying" and body["stage"] == "verification"
    assert body["fix"]["outcome"] == "pending" and len(body["fix"]["devices"]) == 8
    assert body["fix"]["effective_from"] == 1702598400.0
    assert body["fix"]["summary"] == "verifying: 0/8 units back at baseline"
    assert body["history"][-1]["action"] == "fix"
    assert client.post(f"{url}/fix", json=fix).status_code == 409  # one pending fix at a time

    svc: TicketService = seeded
    for u in range(8):
        svc.record_finding(
            Finding(f"ac-0-{u:02d}", "cooling_decline", 1702598400.0 + 3600, T0, 0.0, active=False)
        )
    body = client.get(url).json()
    assert body["status"] == "closed"
    assert body["fix"]["outcome"] == "verified"
    assert body["fix"]["summary"] == "verified: 8/8 units back at baseline"
    assert {u["state"] for u in body["fix"]["units"]} == {"cleared"}

    followup = {"note": "customer confirms cooling is back", "customer": "Hotel Nord"}
    r = client.post(f"{url}/followups", json=followup)
    assert r.status_code == 201
    last = r.json()["history"][-1]
    assert (last["action"], last["note"], last["data"]) == (
        "followup",
        followup["note"],
        {"customer": "Hotel Nord"},
    )
    assert client.post(f"{url}/followups", json={"note": "x"}).status_code == 422
    r = client.post("/api/v1/tickets/PF209901999/fix", json=fix)
    assert r.status_code == 404 and r.json()["detail"] == "no ticket PF209901999"


def test_effective_from_accepts_unix_seconds() -> None:
    from cloud.ticketing.api.schemas import FixCreate

    assert FixCreate(description="x", effective_from=1702598400).effective_ts() == 1702598400.0
    iso = FixCreate(description="x", effective_from="2023-12-15T01:00:00+01:00")
    assert iso.effective_ts() == 1702598400.0
