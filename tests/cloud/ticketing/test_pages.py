"""The ticketing pages: the chart module, the HTML through FastAPI's TestClient, and a real
headless Chromium driven over the DevTools protocol against ``qloop api`` in its own process.

The DevTools client is a few lines over the ``websockets`` package (installed as a dependency of
amqtt). The journal behind the evidence chart is filled the way the worker fills it: real
telemetry payloads (``contract.protocol.encode``) of a simulated fleet with leaking units.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from cloud.anomaly.base import Finding
from cloud.store.journal import Journal
from cloud.ticketing.app import create_app
from cloud.ticketing.db import make_engine
from cloud.ticketing.intake import DeviceRecord
from cloud.ticketing.service import TicketService
from cloud.ticketing.web import auth
from cloud.ticketing.web.chart import (
    Marker,
    Series,
    bucket_means,
    bucket_width,
    line_chart,
    nice_ticks,
)
from cloud.ticketing.web.evidence import SIGNALS, build_chart, chart_for_ticket, signal_for
from cloud.ticketing.web.pages import ticket_list_page
from contract import protocol
from qloop.broker import free_port, wait_port
from qloop.settings import Settings
from simulators.fleet import Fleet
from simulators.scenario import parse_scenario
from tests.cloud.ticketing.test_ticketing_api import seeded  # noqa: F401 - the API tests' fleet, as a fixture
from tests.helpers import wait_for
from tests.scenarios import batch, fault, scenario

ADMIN = "admin-secret"
DAY = 86_400.0
T0 = 1_700_000_000.0
NOW = datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


# --- the chart module ---------------------------------------------------------------------------
def _path_points(svg: str) -> list[list[tuple[float, float]]]:
    """Each series' path as runs of (x, y), split at every move-to."""
    runs = []
    for d in re.findall(r'<path class="series[^"]*" d="([^"]+)"', svg):
        for run in re.findall(r"M[^M]+", d):
            runs.append([(float(a), float(b)) for a, b in re.findall(r"([\d.]+),([\d.]+)", run)])
    return runs


def test_bucket_means_average_finite_values_per_bucket() -> None:
    points = [(0.0, 1.0), (1800.0, 3.0), (3599.0, None), (3600.0, math.nan), (7300.0, 5.0)]
    assert bucket_means(points, 3600.0) == [(1800.0, 2.0), (9000.0, 5.0)]
    assert bucket_means([], 3600.0) == []
    with pytest.raises(ValueError, match="positive"):
        bucket_means(points, 0.0)


def test_bucket_width_keeps_charts_small() -> None:
    assert bucket_width(2 * DAY) == 3600.0
    for span in (DAY, 12 * DAY, 90 * DAY, 3 * 365 * DAY):
        assert span / bucket_width(span) <= 240


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    for lo, hi in [(11.3, 14.8), (-0.7, 0.2), (0.031, 0.052), (5.0, 5.0), (100.0, 4321.0)]:
        ticks = nice_ticks(lo, hi)
        assert ticks[0] <= min(lo, hi) and ticks[-1] >= max(lo, hi)
        steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
        assert len(steps) == 1 and 3 <= len(ticks) <= 11


def test_line_chart_draws_one_path_per_series_inside_the_plot() -> None:
    rising = Series("ac-1", [(T0 + h * 3600, 10.0 + h) for h in range(48)])
    flat = Series("ac-2", [(T0 + h * 3600, 12.0) for h in range(48)])
    svg = line_chart([rising, flat, Series("empty", [])], y_label="ΔT (K)", width=600, height=300)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    runs = _path_points(svg)
    assert len(runs) == 2  # the empty series is left out
    ys = [y for _, y in runs[0]]
    assert ys == sorted(ys, reverse=True)  # a rising value goes up the page
    assert all(0 < x < 600 and 0 < y < 300 for run in runs for x, y in run)
    assert ">ac-1<" in svg and ">ac-2<" in svg and "ΔT (K)" in svg


def test_line_chart_breaks_lines_at_gaps_and_draws_markers_in_range() -> None:
    pts = [(T0 + h * 3600, 1.0) for h in range(10)] + [(T0 + h * 3600, 2.0) for h in range(30, 40)]
    svg = line_chart(
        [Series("ac-1", pts)],
        y_label="x",
        gap_s=2.5 * 3600,
        markers=[Marker(T0 + 20 * 3600, "first detection"), Marker(T0 - DAY, "outside")],
    )
    assert len(_path_points(svg)) == 2
    assert svg.count('class="marker"') == 1 and "first detection" in svg and "outside" not in svg
    assert len(_path_points(line_chart([Series("ac-1", pts)], y_label="x"))) == 1  # no gap_s


def test_line_chart_escapes_labels_and_refuses_an_empty_chart() -> None:
    svg = line_chart([Series("<script>x</script>", [(T0, 1.0)])], y_label="a & b")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a &amp; b" in svg
    with pytest.raises(ValueError, match="nothing to plot"):
        line_chart([Series("ac-1", [])], y_label="x")


# --- the evidence chart over a real journal -----------------------------------------------------
FIELDS = ("ts", "return_c", "supply_c", "compressor_on", "noise_db")


def _add_block(journal: Journal, device: str, seq: int, rows: list[tuple]) -> None:
    msg = protocol.Telemetry(device, seq, FIELDS, tuple(rows))
    journal.add_message(
        device, seq, "telemetry", rows[0][0], rows[-1][0], rows[-1][0], protocol.encode(msg)
    )


def test_signal_for_each_fault() -> None:
    assert signal_for("cooling_decline", []).minus == "supply_c"
    assert signal_for("noise_rise", []).field == "noise_db"
    assert signal_for("vibration_rise", []).field == "vibration_g"
    stuck = [{"device": "d", "evidence": {"supply_c": 12.0, "stuck_s": 7200.0}}]
    assert signal_for("sensor_stuck", stuck).field == "supply_c"  # the first evidence field
    assert signal_for("new_fault", [{"device": "d", "evidence": {}}]) is None
    assert set(SIGNALS) >= {"cooling_decline", "noise_rise", "vibration_rise"}


def test_delta_t_is_return_minus_supply_while_the_compressor_runs(tmp_path) -> None:
    journal = Journal(tmp_path / "journal.db")
    # runs of 20 min on, 20 min off; ΔT 3 K in a run's first 5 min (start-up), 8 K after
    rows = []
    for i in range(120):
        on, minute = (i // 20) % 2 == 0, i % 20
        supply = 24.0 if not on else (22.0 if minute < 5 else 17.0)
        rows.append((T0 + 60 * i, 25.0, supply, int(on), 40.0))
    _add_block(journal, "ac-1", 1, rows[:60])
    _add_block(journal, "ac-1", 2, rows[60:])
    journal.commit()
    points = SIGNALS["cooling_decline"].read(journal, "ac-1", T0, T0 + DAY)
    # compressor-off rows and each run's first 5 minutes are left out, as the detector does
    assert len(points) == 3 * 15 and {v for _, v in points} == {8.0}
    journal.close()


def test_build_chart_reads_the_window_around_the_onset(tmp_path) -> None:
    journal = Journal(tmp_path / "journal.db")
    for seq, h in enumerate(range(0, 10 * 24)):  # ten days of hourly blocks, ΔT 8 K then 6 K
        dt = 8.0 if h < 5 * 24 else 6.0
        rows = [(T0 + h * 3600 + 600 * i, 25.0, 25.0 - dt, 1, 40.0) for i in range(6)]
        _add_block(journal, "ac-1", seq, rows)
    journal.commit()
    onset = T0 + 5 * DAY
    devices = [
        {
            "device": "ac-1",
            "first_ts": onset + 3600,
            "onset_ts": onset,
            "last_ts": onset + 3600,
            "evidence": {},
        }
    ]
    chart = build_chart("cooling_decline", devices, journal, detected_ts=onset + 3600)
    assert chart.svg is not None and "hourly means" in chart.note
    runs = _path_points(chart.svg)
    assert len(runs) == 1 and 90 <= len(runs[0]) <= 100  # 2 days before to 2 days after, hourly
    ys = [y for _, y in runs[0]]
    assert max(ys[:40]) < min(ys[-40:])  # ΔT fell: the line steps down the page
    assert 'class="marker"' in chart.svg
    nothing = build_chart("noise_rise", [{**devices[0], "device": "ac-9"}], journal)
    assert nothing.svg is None and "no noise_db" in nothing.note
    journal.close()


def test_chart_for_ticket_says_why_there_is_no_chart(tmp_path) -> None:
    ticket = {"fault": "noise_rise", "evidence": {"devices": []}}
    assert "no store is configured" in chart_for_ticket(ticket, None).note
    missing = tmp_path / "nope.db"
    assert "does not exist" in chart_for_ticket(ticket, str(missing)).note
    assert not missing.exists()  # looking did not create it


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
        assert c.get("/", follow_redirects=False).headers["location"] == "/tickets"
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
        out = c.post("/logout", follow_redirects=False)
        assert out.headers["location"] == "/login"
        assert c.get("/tickets", follow_redirects=False).status_code == 303


def test_login_refuses_open_redirects_and_cross_site_posts(app) -> None:
    with TestClient(app, base_url="http://qloop.test") as c:
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            r = c.post("/login", data={"token": ADMIN, "next": target}, follow_redirects=False)
            assert r.headers["location"] == "/tickets", target
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
    assert len(_ids(r.text)) == 12
    batch = browser.get("/tickets", params={"scope": "batch"}).text
    (tid,) = _ids(batch)
    row = re.search(rf'data-id="{tid}".*?</tr>', batch, re.S).group(0)
    for text in ("cooling_decline", "M1", "B0", "sev-III", "urgent", "R&amp;D", "8 / 20"):
        assert text in row, text
    assert "2023-12-14 22:13 UTC" in row  # detected_at: event time of the earliest evidence
    assert len(_ids(browser.get("/tickets", params={"status": "closed"}).text)) == 4
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
    assert len(seen) == 12 and len(set(seen)) == 12


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


# --- a real browser against the real server -----------------------------------------------------
SCENARIO = scenario(
    "pages",
    7,
    "5d",
    batch("B-GOOD-1", 10),
    batch("B-LEAK", 10, fault("refrigerant_leak", 0.6, ["2d", "3d"], magnitude=0.3, ramp_s="1h")),
    batch("B-GOOD-2", 10),
    sample_period_s=300,
)
BLOCK_ROWS = 12  # one telemetry message per simulated hour of 5-minute samples


def _fill_from_fleet(db_url: str, journal_path: Path) -> None:
    """Journal: the simulated fleet's telemetry as real payloads. Database: the devices and one
    finding per leaking unit, with its ΔT before and after the onset as evidence."""
    scenario = parse_scenario(SCENARIO)
    fleet = Fleet(scenario)
    fields = fleet.fields
    steps = np.arange(scenario.start_ts, scenario.end_ts, scenario.sample_period_s)
    rows = np.stack([fleet.step(float(ts))[0] for ts in steps], axis=1)  # unit, time, field
    journal = Journal(journal_path)
    for i, unit in enumerate(fleet.units):
        for seq, k in enumerate(range(0, len(steps), BLOCK_ROWS)):
            block = [tuple(r) for r in rows[i, k : k + BLOCK_ROWS].tolist()]
            body = protocol.encode(protocol.Telemetry(unit.device, seq, fields, tuple(block)))
            journal.add_message(unit.device, seq, "telemetry", block[0][0], block[-1][0], 0.0, body)
    journal.close()

    service = TicketService(make_engine(db_url), lambda: NOW)
    for u in fleet.units:
        service.register_device(
            DeviceRecord(u.device, u.product, u.model, u.batch, u.serial, u.firmware,
                         scenario.start_ts, scenario.end_ts)
        )  # fmt: skip
    col = {f: fields.index(f) for f in fields}
    for g in fleet.ground_truth:
        unit = rows[[u.device for u in fleet.units].index(g.device)]
        on = unit[:, col["compressor_on"]] == 1
        dt = unit[:, col["return_c"]] - unit[:, col["supply_c"]]

        def mean_dt(t0: float, t1: float, on=on, dt=dt) -> float:
            return float(dt[on & (steps >= t0) & (steps < t1)].mean())

        before, after = (
            mean_dt(g.onset_ts - DAY, g.onset_ts),
            mean_dt(g.onset_ts + 3600, g.onset_ts + 13 * 3600),
        )
        evidence = {"baseline": before, "current": after, "change": after - before}
        service.record_finding(
            Finding(g.device, "cooling_decline", g.onset_ts + 13 * 3600, g.onset_ts, 0.9, evidence)
        )
    service.engine.dispose()


class DevTools:
    """The smallest Chrome DevTools Protocol client: one page target, calls by id."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect  # a dependency of amqtt

        self.ws = connect(ws_url, max_size=None, open_timeout=30)
        self._id = 0

    def call(self, method: str, **params: object) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:  # skip the events in between
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def at(self, path: str) -> bool:
        """Whether the page finished loading ``path`` (false while it navigates)."""
        try:
            return self.eval("document.readyState + ' ' + location.pathname") == f"complete {path}"
        except RuntimeError:  # the old document went away mid-call
            return False

    def click(self, selector: str) -> None:
        box = self.eval(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )

    def close(self) -> None:
        self.ws.close()


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1280,1600",
]  # fmt: skip


@pytest.fixture
def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        msg = "Chromium is not installed: run scripts/setup.sh --test (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return CHROMIUM


@pytest.fixture
def api_server(tmp_path):
    """``qloop api`` in its own process over a filled database and journal; yields its URL."""
    db = f"sqlite:///{tmp_path / 'qloop.db'}"
    journal = tmp_path / "journal.db"
    _fill_from_fleet(db, journal)
    port = free_port()
    env = {**os.environ, "QLOOP_API_TOKEN": ADMIN, "QLOOP_JOURNAL": str(journal)}
    log = open(tmp_path / "api.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "qloop", "api", "--db", db, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_port("127.0.0.1", port, 30), (tmp_path / "api.log").read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


@pytest.mark.browser
def test_engineer_signs_in_and_sees_the_evidence_chart_in_chromium(
    chromium: str, api_server: str, tmp_path
) -> None:
    # Signed out, a link to a ticket lands on the sign-in form (plain --dump-dom, no cookie).
    dumped = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'dump'}", "--dump-dom",
         f"{api_server}/tickets"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert 'id="token"' in dumped.stdout and "Sign in" in dumped.stdout, dumped.stderr[-2000:]

    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        wait_for(port_file.exists, timeout=60, what="Chromium's DevTools port")
        wait_for(lambda: len(port_file.read_text().split()) >= 2, what="the port file")
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        tab = DevTools(page["webSocketDebuggerUrl"])
        tab.call("Page.enable")

        # Sign in the way a person does: open the list, type the token, press the button.
        tab.call("Page.navigate", url=f"{api_server}/tickets?scope=batch")
        wait_for(lambda: tab.at("/login"), what="the sign-in form")
        tab.eval("document.getElementById('token').focus()")
        tab.call("Input.insertText", text=ADMIN)
        tab.click("#sign-in")
        wait_for(lambda: tab.at("/tickets"), what="the ticket list after signing in")
        assert tab.eval("document.cookie") == ""  # HttpOnly: no script sees the token
        rows = tab.eval("[...document.querySelectorAll('tr.ticket')].map(r => r.innerText)")
        assert len(rows) == 1 and "B-LEAK" in rows[0] and "cooling_decline" in rows[0]
        tid = tab.eval("document.querySelector('tr.ticket').dataset.id")

        tab.click(f"tr.ticket a[href='/tickets/{tid}']")
        wait_for(lambda: tab.at(f"/tickets/{tid}"), what="the ticket page")
        assert tab.eval("document.getElementById('ticket-id').innerText").startswith(tid)
        assert tab.eval("document.querySelector('[data-field=batch]').innerText") == "B-LEAK"
        assert tab.eval("document.querySelector('[data-field=severity]').innerText") in (
            "II",
            "III",
        )
        paths = tab.eval("document.querySelectorAll('#evidence-chart svg path.series').length")
        units = tab.eval("document.querySelectorAll('#units tr[data-device]').length")
        assert paths == min(units, 6) and paths >= 3  # a line per affected unit (six at most)
        chips = tab.eval("document.querySelector('#units td.chips').innerText")
        assert "baseline" in chips and "current" in chips  # each unit's evidence numbers
        d = tab.eval("document.querySelector('#evidence-chart svg path.series').getAttribute('d')")
        assert d.startswith("M") and d.count("L") > 50  # hours of data, not a stub
        width = tab.eval(
            "document.querySelector('#evidence-chart svg').getBoundingClientRect().width"
        )
        assert width > 600  # laid out in the page, not collapsed

        clip = {"x": 0, "y": 0, "width": 1280, "height": 1120, "scale": 1}  # header to history
        shot = tab.call("Page.captureScreenshot", format="png", clip=clip)
        png = tmp_path / "ticket.png"
        png.write_bytes(base64.b64decode(shot["data"]))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("QLOOP_SCREENSHOTS"):  # refresh docs/screenshots on request
            shutil.copy(png, Path(os.environ["QLOOP_SCREENSHOTS"]) / "ticket.png")
        tab.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # Chromium and its helpers, in the group it leads
        proc.wait(30)
