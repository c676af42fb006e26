"""Tokens have a lifecycle (list, revoke, expiry, unique names, one bootstrap token from the
environment) and the pages' cookie holds a session id of its own, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from cloud.ticketing.app import create_app
from cloud.ticketing.db import make_engine, migrate
from cloud.ticketing.service import TicketService
from cloud.ticketing.tokens import SESSION_TTL, hash_token
from cloud.ticketing.web import auth
from qloop.settings import Settings
from tests import ticketing_support as support
from tests.ticketing_support import Clock, run_together

db_url = support.db_url  # fixture: SQLite and PostgreSQL
clock = support.clock
ADMIN = "admin-secret"


def _app(db_url: str, clock: Clock, token: str = ADMIN):
    return create_app(Settings(db=db_url, api_token=token).api(), clock=clock)


@pytest.fixture
def api(db_url, clock):
    with TestClient(_app(db_url, clock)) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN}"
        yield c


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _new(api: TestClient, name: str, **extra) -> str:
    r = api.post("/api/v1/tokens", json={"name": name, "role": "viewer", **extra})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_an_admin_lists_tokens_without_their_secrets_and_others_may_not(api) -> None:
    ann = _new(api, "ann")
    r = api.get("/api/v1/tokens")
    assert r.status_code == 200
    items = {t["name"]: t for t in r.json()["items"]}
    assert set(items) == {"admin", "ann"}
    assert items["admin"]["bootstrap"] and not items["ann"]["bootstrap"]
    assert items["ann"] == {
        "name": "ann", "role": "viewer", "created_at": "2026-11-22T10:00:01Z",
        "expires_at": None, "bootstrap": False,
    }  # fmt: skip
    assert ann not in r.text and hash_token(ann) not in r.text
    assert api.get("/api/v1/tokens", headers=_bearer(ann)).status_code == 403


def test_a_revoked_token_is_refused_at_once(api) -> None:
    ann = _new(api, "ann")
    assert api.get("/api/v1/tickets", headers=_bearer(ann)).status_code == 200
    assert api.delete("/api/v1/tokens/ann").status_code == 204
    r = api.get("/api/v1/tickets", headers=_bearer(ann))
    assert r.status_code == 401 and r.json()["detail"] == "missing or invalid bearer token"
    assert [t["name"] for t in api.get("/api/v1/tokens").json()["items"]] == ["admin"]
    r = api.delete("/api/v1/tokens/ann")
    assert r.status_code == 404 and r.json()["detail"] == "no token named 'ann'"
    assert api.delete("/api/v1/tokens/admin", headers=_bearer(ann)).status_code == 401


def test_names_are_unique(api) -> None:
    _new(api, "ann")
    r = api.post("/api/v1/tokens", json={"name": "ann", "role": "engineer"})
    assert r.status_code == 409 and "'ann'" in r.json()["detail"]
    assert api.post("/api/v1/tokens", json={"name": "admin"}).status_code == 409
    # a revoked token's name is free again
    assert api.delete("/api/v1/tokens/ann").status_code == 204
    _new(api, "ann")


def test_a_token_expires_and_the_refusal_says_so(api, clock) -> None:
    short = _new(api, "short", ttl_s=3600)
    until = _new(api, "until", expires_at="2026-11-23T00:00:00+08:00")
    items = {t["name"]: t for t in api.get("/api/v1/tokens").json()["items"]}
    assert items["short"]["expires_at"] == "2026-11-22T11:00:01Z"
    assert items["until"]["expires_at"] == "2026-11-22T16:00:00Z"
    assert api.get("/api/v1/tickets", headers=_bearer(short)).status_code == 200
    clock.now += timedelta(hours=1)
    r = api.get("/api/v1/tickets", headers=_bearer(short))
    assert r.status_code == 401
    assert r.json()["detail"] == "token 'short' expired at 2026-11-22T11:00:01Z"
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert api.get("/api/v1/tickets", headers=_bearer(until)).status_code == 200
    clock.now += timedelta(hours=5)
    assert api.get("/api/v1/tickets", headers=_bearer(until)).status_code == 401
    assert "short" in {t["name"] for t in api.get("/api/v1/tokens").json()["items"]}


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"expires_at": "2026-11-22T10:00:00Z"}, "not in the future"),
        ({"expires_at": "2026-11-23T00:00:00"}, "timezone"),
        ({"expires_at": "9999-01-01T00:00:00Z"}, "between 2000 and 3000"),
        ({"ttl_s": 10}, "greater than or equal to 60"),
        ({"ttl_s": 10**20}, "less than or equal to"),
        ({"ttl_s": 3600, "expires_at": "2027-01-01T00:00:00Z"}, "not both"),
    ],
)
def test_an_expiry_that_cannot_be_is_a_422(api, extra, says) -> None:
    r = api.post("/api/v1/tokens", json={"name": "x", **extra})
    assert r.status_code == 422 and says in r.text


def test_a_new_bootstrap_token_replaces_the_previous_one(db_url, clock) -> None:
    with TestClient(_app(db_url, clock, "first-secret")) as first:
        assert first.get("/api/v1/tickets", headers=_bearer("first-secret")).status_code == 200
        ann = _new_as(first, "first-secret", "ann")
    with TestClient(_app(db_url, clock, "second-secret")) as second:
        assert second.get("/api/v1/tickets", headers=_bearer("first-secret")).status_code == 401
        r = second.get("/api/v1/tokens", headers=_bearer("second-secret"))
        assert [(t["name"], t["bootstrap"]) for t in r.json()["items"]] == [
            ("admin", True), ("ann", False),
        ]  # fmt: skip
        assert second.get("/api/v1/tickets", headers=_bearer(ann)).status_code == 200
    with TestClient(_app(db_url, clock, "second-secret")) as again:  # a restart: the same token
        assert again.get("/api/v1/tickets", headers=_bearer("second-secret")).status_code == 200


def test_api_processes_starting_together_bootstrap_one_token(db_url, clock) -> None:
    engine = make_engine(db_url)
    services = [TicketService(engine, clock) for _ in range(3)]
    errors = run_together(
        lambda svc: svc.bootstrap_token(ADMIN, name="admin"), [(s,) for s in services]
    )
    assert errors == []
    assert [(t.name, t.bootstrap) for t in services[0].list_tokens()] == [("admin", True)]
    engine.dispose()


def _new_as(client: TestClient, admin: str, name: str) -> str:
    r = client.post("/api/v1/tokens", json={"name": name}, headers=_bearer(admin))
    assert r.status_code == 201
    return r.json()["token"]


def test_the_bootstrap_name_held_by_another_role_is_an_error_at_start(db_url, clock) -> None:
    with TestClient(_app(db_url, clock)) as c:
        _new_as(c, ADMIN, "ops")
    settings = Settings(db=db_url, api_token="other", api_token_name="ops")
    with pytest.raises(ValueError, match="'ops' exists"):
        create_app(settings.api(), clock=clock)


def test_the_upgrade_keeps_tokens_renames_shared_names_and_drops_the_old_bootstrap(
    db_url, clock
) -> None:
    """A database of revision 0005 where QLOOP_API_TOKEN was changed once (two tokens named
    admin) and a person had a token: after the upgrade and a start with the current bootstrap
    token, the older admin token is gone, names are unique, the person's token still works."""
    engine = make_engine(db_url, upgrade=False)
    migrate(engine, "0005")
    rows = [
        (hash_token("old-admin"), "admin", "admin", "2026-01-01 00:00:00"),
        (hash_token("older-admin"), "admin", "admin", "2025-01-01 00:00:00"),
        (hash_token("ann-token"), "ann", "viewer", "2026-02-01 00:00:00"),
        (hash_token("ann-again"), "ann", "engineer", "2026-03-01 00:00:00"),
    ]
    with engine.begin() as conn:
        for digest, name, role, at in rows:
            conn.execute(
                text("INSERT INTO api_tokens VALUES (:d, :n, :r, :at)"),
                {"d": digest, "n": name, "r": role, "at": at},
            )
    migrate(engine)
    engine.dispose()
    with TestClient(_app(db_url, clock, "old-admin")) as c:
        items = c.get("/api/v1/tokens", headers=_bearer("old-admin")).json()["items"]
        assert [(t["name"], t["role"], t["bootstrap"]) for t in items] == [
            ("admin", "admin", True), ("admin~2", "admin", False),
            ("ann", "engineer", False), ("ann~2", "viewer", False),
        ]  # fmt: skip
    with TestClient(_app(db_url, clock, "new-admin")) as c:
        assert c.get("/api/v1/tickets", headers=_bearer("old-admin")).status_code == 401
        assert c.get("/api/v1/tickets", headers=_bearer("ann-token")).status_code == 200


# --- the pages' session ---------------------------------------------------------------------
def _sign_in(app, token: str, base_url: str = "http://qloop.test") -> tuple[TestClient, str]:
    client = TestClient(app, base_url=base_url)
    r = client.post("/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303
    return client, r.headers["set-cookie"]


def test_the_cookie_holds_a_session_id_not_the_token(db_url, clock) -> None:
    app = _app(db_url, clock)
    client, cookie = _sign_in(app, ADMIN)
    session_id = client.cookies[auth.COOKIE]
    assert ADMIN not in cookie and hash_token(ADMIN) not in cookie
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/tickets").status_code == 200
    # the session id is no bearer token, and the raw token is no session
    with TestClient(app) as api:
        assert api.get("/api/v1/tickets", headers=_bearer(session_id)).status_code == 401
    stranger = TestClient(app, base_url="http://qloop.test", cookies={auth.COOKIE: ADMIN})
    assert stranger.get("/tickets", follow_redirects=False).status_code == 303


def test_a_session_ends_with_its_token_its_ttl_or_sign_out(db_url, clock) -> None:
    app = _app(db_url, clock)
    service = app.state.service
    ann = service.create_token(name="ann", role="viewer")
    client, _ = _sign_in(app, ann)
    assert client.get("/tickets", follow_redirects=False).status_code == 200
    service.revoke_token("ann")
    assert client.get("/tickets", follow_redirects=False).status_code == 303

    client, _ = _sign_in(app, ADMIN)
    clock.now += SESSION_TTL
    assert client.get("/tickets", follow_redirects=False).status_code == 303

    session_id = service.start_session(ADMIN)
    assert service.session_user(session_id).name == "admin"
    scope = {"type": "http", "headers": [(b"cookie", f"{auth.COOKIE}={session_id}".encode())]}
    request = Request(scope)
    request.scope["app"] = app
    response = Response()
    auth.sign_out(response, request)
    assert service.session_user(session_id) is None
    assert f'{auth.COOKIE}=""' in response.headers["set-cookie"]


def test_a_session_of_an_expiring_token_ends_with_it(db_url, clock) -> None:
    app = _app(db_url, clock)
    service = app.state.service
    short = service.create_token(name="short", role="viewer", ttl=timedelta(minutes=5))
    session_id = service.start_session(short)
    assert service.session_user(session_id).name == "short"
    clock.now += timedelta(minutes=5)
    assert service.session_user(session_id) is None
    assert service.start_session(short) is None


def test_the_cookie_is_secure_over_https(db_url, clock) -> None:
    _client, cookie = _sign_in(_app(db_url, clock), ADMIN, base_url="https://qloop.test")
    assert "Secure" in cookie


@pytest.mark.parametrize(("trusted", "secure"), [("127.0.0.1", False), ("testclient", True)])
def test_behind_a_proxy_the_cookie_is_secure_only_if_the_proxy_is_trusted(
    db_url, clock, trusted, secure
) -> None:
    """uvicorn's proxy headers middleware (on by default; FORWARDED_ALLOW_IPS names the trusted
    proxies) gives the app the scheme the proxy saw; the test client's address is "testclient"."""
    app = ProxyHeadersMiddleware(_app(db_url, clock), trusted_hosts=trusted)
    client = TestClient(app, base_url="http://qloop.test")
    r = client.post(
        "/login",
        data={"token": ADMIN},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert ("Secure" in r.headers["set-cookie"]) is secure


def test_sessions_are_kept_as_digests(db_url, clock) -> None:
    app = _app(db_url, clock)
    session_id = app.state.service.start_session(ADMIN)
    with app.state.service.engine.connect() as conn:
        stored = conn.execute(text("SELECT id_sha256 FROM page_sessions")).scalars().all()
    assert stored == [hash_token(session_id)]
