"""Hostile or broken input to the API is a 4xx with a reason, never a 5xx: text that is no text
(NUL, lone surrogates), bodies over the size cap, bodies that are not JSON, huge numbers; the
answer repeats at most a short prefix of what was sent and the log holds no traceback for it."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from cloud.ticketing.api.limits import MAX_BODY_BYTES
from cloud.ticketing.api.router import ECHO_CHARS
from cloud.ticketing.app import create_app
from qloop.settings import Settings
from tests import ticketing_support as support

db_url = support.db_url  # fixture: SQLite and PostgreSQL
JSON = {"Content-Type": "application/json"}
NOT_TEXT = [b'"a\\u0000b"', b'"\\ud800"', b'"x\\udfff"']


def _ticket(client: TestClient) -> str:
    return client.get("/api/v1/tickets?limit=1").json()["items"][0]["id"]


@pytest.fixture
def tid(client, seeded) -> str:
    return _ticket(client)


@pytest.mark.parametrize("text", NOT_TEXT)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/tokens", b'{"name": %s}'),
        ("/tickets/{tid}/comments", b'{"text": %s}'),
        ("/tickets/{tid}/followups", b'{"note": "n", "customer": %s}'),
        ("/tickets/{tid}/fix", b'{"description": %s, "effective_from": 1716000000}'),
        ("/tickets/{tid}/measures", b'{"term": "short", "kind": "repair", "action": %s, '
         b'"owner": "o", "department": "R&D", "due_at": "2026-12-01T00:00:00Z"}'),
        ("/feedback", b'{"channel": "hotline", "text": "t", "customer": {"name": %s}}'),
    ],
)  # fmt: skip
def test_text_that_is_no_text_is_a_422_naming_where(client, tid, path, body, text) -> None:
    url = "/api/v1" + path.format(tid=tid)
    r = client.post(url, content=body % text, headers=JSON)
    assert r.status_code == 422, r.text
    assert "NUL or a lone surrogate" in r.text


def test_a_nul_in_a_name_is_a_422_on_postgresql_too(db_url) -> None:
    app = create_app(Settings(db=db_url, api_token="adm").api())
    with TestClient(app, headers={"Authorization": "Bearer adm"}) as c:
        r = c.post("/api/v1/tokens", content=b'{"name": "a\\u0000"}', headers=JSON)
        assert r.status_code == 422, r.text


def test_a_body_over_the_cap_is_a_413_without_reading_it(client, tid) -> None:
    big = b'{"text": "' + b"x" * MAX_BODY_BYTES + b'"}'
    r = client.post(f"/api/v1/tickets/{tid}/comments", content=big, headers=JSON)
    assert r.status_code == 413
    assert r.json() == {"detail": f"request body over {MAX_BODY_BYTES:,} bytes"}


def test_a_streamed_body_over_the_cap_is_a_413(client, tid) -> None:
    """No Content-Length (chunked): the cap is counted as the body arrives."""

    def chunks():
        yield b'{"text": "'
        for _ in range(MAX_BODY_BYTES // 65_536 + 1):
            yield b"x" * 65_536
        yield b'"}'

    r = client.post(f"/api/v1/tickets/{tid}/comments", content=chunks(), headers=JSON)
    assert r.status_code == 413 and "over" in r.json()["detail"]


def test_a_body_under_the_cap_is_read(client, tid) -> None:
    r = client.post(f"/api/v1/tickets/{tid}/comments", json={"text": "x" * 9_000})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the parser goes
        b'{"name": ' + b"9" * 5_000 + b"}",  # more digits than Python reads
        b'{"name": "\xff\xfe"}',  # not UTF-8
    ],
)
def test_a_body_that_cannot_be_read_is_a_documented_400(client, body) -> None:
    r = client.post("/api/v1/tokens", content=body, headers=JSON)
    assert r.status_code == 400 and isinstance(r.json()["detail"], str)
    schema = client.get("/openapi.json").json()
    assert "400" in schema["paths"]["/api/v1/tokens"]["post"]["responses"]
    assert "413" in schema["paths"]["/api/v1/tokens"]["post"]["responses"]


def test_a_huge_number_is_not_echoed_whole(client) -> None:
    body = b'{"name": ' + str(10**400).encode() + b"}"
    r = client.post("/api/v1/tokens", content=body, headers=JSON)
    assert r.status_code == 422
    assert len(r.content) < ECHO_CHARS + 400
    assert "401 characters" in json.dumps(r.json())


def test_input_errors_leave_no_traceback_in_the_log(client, tid, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    bad = [
        ("/api/v1/tokens", b'{"name": "\\ud800"}'),
        ("/api/v1/tokens", b'{"name": NaN}'),
        ("/api/v1/tokens", b"[" * 100_000),
        (f"/api/v1/tickets/{tid}/fix", b'{"description": "d", "effective_from": 1e20}'),
        (f"/api/v1/tickets/{tid}/comments", b'{"text": "' + b"x" * MAX_BODY_BYTES + b'"}'),
    ]
    for path, body in bad:
        assert 400 <= client.post(path, content=body, headers=JSON).status_code < 500
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
