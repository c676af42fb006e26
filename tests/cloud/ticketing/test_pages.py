"""The ticketing pages through FastAPI's TestClient: sign-in, the ticket list and its filters,
paging, the ticket page, escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from cloud.anomaly.base import Finding
from cloud.ticketing.app import create_app
from cloud.ticketing.intake import DeviceRecord
from cloud.ticketing.service import TicketService
from cloud.ticketing.web import auth
from cloud.ticketing.web.pages import ticket_list_page
from qloop.settings import Settings

ADMIN = "admin-secret"
DAY = 86_400.0
T0 = 1_700_000_000.0
NOW = datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC)


# --- the pages through TestClient ---------------------------------------------------------------
@pytest.fixture
def app(tmp_path):
    settings = Settings(db=f"sqlite:///{tmp_path / 'pages.db'}", api_token=ADMIN, journal=None)
    return create_app(settings.api(), clock=lambda: NOW)


@pytest.fixture
def browser(app) -> TestClient:
    """A TestClient that signed in through the form."""
    with TestClient(app, base_url="http://qloop.test") as c:
        r = c.post("/login", data={"token": ADMIN, "next": "/tickets"}, follow_redirects=False)
        assert r.status_code == 303
        yield c


def _ids(html: str) -> list[str]:
    return re.findall(r'<tr class="ticket[^"]*" data-id="([^"]+)"', html)


def test_create_app_serves_the_pages(app) -> None:
    with TestClient(app) as c:
        r = c.get("/login")
    assert r.status_code == 200 and "<form" in r.text, (
        "create_app must call cloud.ticketing.web.mount_pages(app, service, settings)"
    )


@pytest.mark.usefixtures("seeded")
def test_unauthenticated_pages_redirect_to_login_and_back(app) -> None:
    with TestClient(app, base_url="http://qloop.test") as c:
        assert c.get("/", follow_redirects=False).headers["location"] == auth.HOME == "/dashboard"
        r = c.get("/tickets/PF202611001?x=1", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=/tickets/PF202611001%3Fx%3D1"
        form = c.get(r.headers["location"])
        assert form.status_code == 200 and 'name="token" type="password"' in form.text
        assert 'name="next" value="/tickets/PF202611001?x=1"' in form.text
        bad = c.post("/login", data={"token": "wrong", "next": "/tickets"}, follow_redirects=False)
        assert (
            bad.status_code == 401 and "not valid" in bad.text and "set-cookie" not in bad.headers
        )
        ok = c.post(
            "/login", data={"token": ADMIN, "next": "/tickets/PF202611001"}, follow_redirects=False
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/tickets/PF202611001"
        cookie = ok.headers["set-cookie"]
        assert cookie.startswith(f"{auth.COOKIE}=") and "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        assert c.get("/tickets/PF202611001").status_code == 200
        session = c.cookies.get(auth.COOKIE)
        c.post("/logout", headers={"Origin": "https://evil.example"}, follow_redirects=False)
        assert c.get("/tickets/PF202611001").status_code == 200  # another site cannot sign out
        out = c.post("/logout", follow_redirects=False)
        assert out.headers["location"] == "/login"
        assert c.get("/tickets", follow_redirects=False).status_code == 303
        c.cookies.set(auth.COOKIE, session)  # the old cookie, kept: its session ended
        assert c.get("/tickets", follow_redirects=False).status_code == 303


def test_login_refuses_open_redirects_and_cross_site_posts(app) -> None:
    with TestClient(app, base_url="http://qloop.test") as c:
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            r = c.post("/login", data={"token": ADMIN, "next": target}, follow_redirects=False)
            assert r.headers["location"] == "/dashboard", target
        r = c.post(
            "/login",
            data={"token": ADMIN},
            headers={"Origin": "https://evil.example"},
            follow_redirects=False,
        )
        assert r.status_code == 403 and "set-cookie" not in r.headers


def test_cookie_is_for_pages_only_and_bearer_is_for_the_api_only(browser: TestClient) -> None:
    assert browser.get("/api/v1/tickets").status_code == 401  # the cookie is not an API credential
    with TestClient(browser.app) as other:
        r = other.get(
            "/tickets", headers={"Authorization": f"Bearer {ADMIN}"}, follow_redirects=False
        )
        assert r.status_code == 303


@pytest.mark.usefixtures("seeded")
def test_ticket_list_shows_the_columns_and_filters(browser: TestClient) -> None:
    r = browser.get("/tickets")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src" not in r.headers["content-security-policy"]  # no script allowed at all
    assert len(_ids(r.text)) == 11
    batch = browser.get("/tickets", params={"scope": "batch"}).text
    (tid,) = _ids(batch)
    row = re.search(rf'data-id="{tid}".*?</tr>', batch, re.S).group(0)
    for text in ("cooling_decline", "M1", "B0", "sev-III", "urgent", "R&amp;D", "8 / 20"):
        assert text in row, text
    assert "2023-12-14 22:13 UTC" in row  # detected_at: event time of the earliest evidence
    assert len(_ids(browser.get("/tickets", params={"status": "closed"}).text)) == 3
    noisy = browser.get("/tickets", params={"fault": "noise_rise", "batch": "B1"}).text
    assert len(_ids(noisy)) == 3 and '<option value="noise_rise"' in noisy
    assert 'value="B1"' in noisy  # the form keeps the filter
    assert _ids(browser.get("/tickets", params={"model": "other", "status": ""}).text) == []


@pytest.mark.usefixtures("seeded")
def test_bad_filters_get_a_clear_message(browser: TestClient) -> None:
    r = browser.get("/tickets", params={"severity": "IV", "batch": "B1"})
    assert r.status_code == 422 and "unknown severity &#x27;IV&#x27;; one of I, II, III" in r.text
    assert 'value="B1"' in r.text
    r = browser.get("/tickets", params={"cursor": "garbage"})
    assert r.status_code == 422 and "invalid cursor" in r.text
    assert "from 1 to 500" in browser.get("/tickets", params={"limit": "0"}).text


@pytest.mark.usefixtures("seeded")
def test_paging_follows_the_api_cursor(browser: TestClient) -> None:
    seen, url = [], "/tickets?limit=5"
    while url:
        html = browser.get(url.replace("&amp;", "&")).text
        seen += _ids(html)
        nxt = re.search(r'rel="next" href="([^"]+)"', html)
        url = nxt.group(1) if nxt else None
    assert len(seen) == 11 and len(set(seen)) == 11


def test_overdue_tickets_are_highlighted() -> None:
    base = {
        "id": "PF202611001", "scope": "batch", "model": "M1", "batch": "B0", "device": None,
        "fault": "noise_rise", "category": "workmanship", "severity": "I", "priority": "low",
        "department": "Quality", "departments": ["Quality"], "status": "open",
        "affected_devices": 3, "batch_devices": 20, "detected_at": "2026-11-20T08:00:00Z",
        "opened_at": "2026-11-21T08:00:00Z", "due_at": "2026-11-21T09:00:00Z", "evidence": {},
    }  # fmt: skip
    html = ticket_list_page(
        [{**base, "overdue": True}, {**base, "id": "PF202611002"}], {}, None, paged=False
    )
    assert html.count('class="ticket overdue"') == 1 and html.count("badge late") == 1
    assert 'class="ticket" data-id="PF202611002"' in html  # no field: not highlighted


@pytest.mark.usefixtures("seeded")
def test_ticket_page_shows_everything_an_engineer_needs(browser: TestClient) -> None:
    tid = _ids(browser.get("/tickets", params={"scope": "batch"}).text)[0]
    html = browser.get(f"/tickets/{tid}").text
    assert f'<h1 id="ticket-id">{tid}' in html
    for field, text in [("scope", "batch"), ("batch", "B0"), ("category", "performance"),
                        ("lead department", "R&amp;D"), ("affected units", "8 of 20")]:  # fmt: skip
        assert re.search(rf"<dt>{field}</dt><dd[^>]*>(<[^>]+>)?{re.escape(text)}", html), field
    assert 'data-stat="p_adjusted"' in html and 'data-stat="share">40.0%<' in html
    assert html.count("<tr data-device=") == 8
    assert "merged tickets" in html  # the folded device tickets, linked
    assert 'class="timeline"' in html and "<b>opened</b>" in html and "<b>absorbed</b>" in html
    assert "no store is configured" in html  # this app has no store: said, not hidden


@pytest.mark.usefixtures("seeded")
def test_unknown_ticket_is_an_html_404(browser: TestClient) -> None:
    r = browser.get("/tickets/PF209912999")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "No ticket PF209912999" in r.text


def test_values_are_escaped(app) -> None:
    svc: TicketService = app.state.service
    for u in range(3):
        svc.register_device(
            DeviceRecord(
                f"x-{u}", "air_conditioner", "<i>M</i>", "<script>", "SN", "1", T0, T0 + DAY
            )
        )
    svc.record_finding(Finding("x-0", "noise_rise", T0 + DAY, T0, 0.8))
    with TestClient(app, base_url="http://qloop.test") as c:
        c.post("/login", data={"token": ADMIN})
        for html in (
            c.get("/tickets").text,
            c.get("/tickets/" + _ids(c.get("/tickets").text)[0]).text,
        ):
            assert "<script>" not in html and "&lt;script&gt;" in html and "<i>M</i>" not in html
