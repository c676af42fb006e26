"""The API's /metrics (Prometheus text, any valid token) and /readyz (database answers at the
schema this code expects)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text


def _samples(body: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def test_metrics_count_requests_by_route_and_the_tickets_as_they_stand(client, seeded) -> None:
    assert client.get("/api/v1/tickets").status_code == 200
    some = client.get("/api/v1/tickets", params={"limit": 1}).json()["items"][0]["id"]
    assert client.get(f"/api/v1/tickets/{some}").status_code == 200
    assert client.get("/api/v1/tickets/PF209901999").status_code == 404
    body = client.get("/metrics")
    assert body.status_code == 200 and body.headers["content-type"].startswith("text/plain")
    got = _samples(body.text)
    route = "/api/v1/tickets/{ticket_id}"  # the template, not one series per ticket id
    assert (
        got[("qloop_api_requests_total", (("method", "GET"), ("route", route), ("status", "200")))]
        == 1
    )
    assert (
        got[("qloop_api_requests_total", (("method", "GET"), ("route", route), ("status", "404")))]
        == 1
    )
    assert (
        got[
            (
                "qloop_api_requests_total",
                (("method", "GET"), ("route", "/api/v1/tickets"), ("status", "200")),
            )
        ]
        == 2
    )
    assert not any("PF2" in str(labels) for _, labels in got)
    tickets = client.get("/api/v1/tickets", params={"limit": 500}).json()["items"]
    open_ = [t for t in tickets if t["status"] != "closed"]
    counted = sum(v for (name, _), v in got.items() if name == "qloop_tickets")
    assert counted == len(open_) > 0
    late = sum(v for (name, _), v in got.items() if name == "qloop_tickets_overdue")
    assert late == sum(1 for t in open_ if t["overdue"])
    assert got[("qloop_device_changes_pending", ())] == 0


def test_metrics_need_a_token(app) -> None:
    with TestClient(app) as anonymous:
        assert anonymous.get("/metrics").status_code == 401


def test_ready_when_the_schema_is_this_codes(client) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    engine = client.app.state.service.engine
    with engine.begin() as conn:  # a newer qloop upgraded the database
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    r = client.get("/readyz")
    assert r.status_code == 503 and "9999" in r.json()["detail"]
    assert client.get("/healthz").status_code == 200  # alive, just not ready
