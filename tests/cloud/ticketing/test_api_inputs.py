"""Bad input to the API is a 4xx that says what is wrong, never a 5xx, and the answer repeats
at most a short prefix of what was sent (inputs a hostile or broken client sent in testing)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from cloud.ticketing.api.router import ECHO_CHARS
from cloud.ticketing.service import TicketService

NON_FINITE = [b"NaN", b"Infinity", b"-Infinity"]


def _ticket(svc: TicketService) -> str:
    return svc.tickets(limit=1).items[0].id


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/comments", b'{"text": %s}'),
        ("/transitions", b'{"to": %s}'),
        ("/followups", b'{"note": %s, "customer": "c"}'),
        ("/fix", b'{"description": "d", "effective_from": %s}'),
        ("/fix", b'{"description": %s, "effective_from": 1716000000}'),
    ],
)
def test_non_finite_numbers_are_a_422_with_a_json_answer(client, seeded, path, body, value):
    url = f"/api/v1/tickets/{_ticket(seeded)}{path}"
    r = client.post(url, content=body % value, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"]  # a JSON answer that says what is wrong


@pytest.mark.parametrize("value", NON_FINITE)
def test_a_non_finite_token_name_is_a_422(client, value):
    body = b'{"name": %s, "role": "viewer"}' % value
    r = client.post("/api/v1/tokens", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"]


@pytest.mark.parametrize("when", [1e20, 1e16, -1e20, 0.0])
def test_a_fix_time_that_is_no_time_is_a_422_naming_the_field(client, seeded, when):
    tid = _ticket(seeded)
    for to in ("acknowledged", "in_progress"):
        assert client.post(f"/api/v1/tickets/{tid}/transitions", json={"to": to}).status_code == 200
    r = client.post(
        f"/api/v1/tickets/{tid}/fix", json={"description": "new TXV", "effective_from": when}
    )
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "effective_from"] and "between 2000" in error["msg"]


def test_an_oversized_input_is_not_echoed_back(client, seeded):
    big = "x" * 1_000_000
    r = client.post(f"/api/v1/tickets/{_ticket(seeded)}/comments", json={"text": big})
    assert r.status_code == 422
    assert len(r.content) < 2 * ECHO_CHARS + 500
    assert "1,000,000 characters" in json.dumps(r.json())


def test_the_answers_shape_is_the_one_openapi_documents(app):
    with TestClient(app) as c:
        schema = c.get("/openapi.json").json()
    documented = schema["components"]["schemas"]["ValidationError"]["properties"]
    assert {"loc", "msg", "type"} <= set(documented)
