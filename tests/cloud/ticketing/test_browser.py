"""The pages in a real headless Chromium, driven over the DevTools protocol against ``qloop api``
in its own process: an engineer reads a batch ticket's evidence chart, and customer service
registers a complaint and sees the unit's data confirm it.

The DevTools client is a few lines over the ``websockets`` package (installed as a dependency of
amqtt). The journal behind the evidence chart is filled the way the worker fills it: real
telemetry payloads (``contract.protocol.encode``) of a simulated fleet with leaking units.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from cloud.anomaly.base import Finding
from cloud.store.journal import Journal
from cloud.ticketing.db import make_engine
from cloud.ticketing.intake import DeviceRecord
from cloud.ticketing.service import TicketService
from contract import protocol
from qloop.broker import free_port, wait_port
from simulators.fleet import Fleet
from simulators.scenario import parse_scenario
from tests.helpers import wait_for
from tests.scenarios import batch, fault, scenario

ADMIN = "admin-secret"
SERVICE = "service-secret"  # a customer-service token, made in the database before the server
PROCEDURE = "空调使用1个月后，制冷效果明显下降，出风口温度18℃(设定16℃)，噪音比初期增大。"
DAY = 86_400.0
NOW = datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


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
    """Journal: the simulated fleet's telemetry as real payloads. Database: the devices, one
    finding per leaking unit, with its ΔT before and after the onset as evidence, and a
    customer-service token."""
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
    service.ensure_token(SERVICE, name="cs-1", role="service")
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

    def location(self) -> str:
        """``pathname?search`` of the loaded page, "" while it navigates."""
        try:
            loaded = self.eval("[document.readyState, location.pathname + location.search]")
        except RuntimeError:
            return ""
        return loaded[1] if loaded[0] == "complete" else ""

    def type(self, selector: str, text: str) -> None:
        """Focus a field and type ``text`` into it, as a keyboard (or an IME) does."""
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

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
    # shared memory in /tmp: a container's small /dev/shm is a known cause of a renderer crash
    # (seen once, S11: the DevTools socket closed while a page loaded)
    "--disable-dev-shm-usage",
]  # fmt: skip


@contextlib.contextmanager
def chromium_env() -> Iterator[dict[str, str]]:
    """Chromium's environment: its temporary files (the profile's singleton socket and cookie,
    the shared memory) in a directory of their own, removed afterwards, not left behind in
    /tmp. A short path: the singleton socket's must fit a Unix socket's 108 bytes, which a
    pytest-xdist test's directory does not."""
    tmp = tempfile.mkdtemp(prefix="qloop-cr-")
    try:
        yield {**os.environ, "TMPDIR": tmp}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def chromium_tab(chromium: str, profile: Path) -> Iterator[DevTools]:
    """One headless Chromium session with a fresh profile; its page tab over DevTools. When the
    session fails, the end of Chromium's own log is added to the error."""
    profile.mkdir(parents=True, exist_ok=True)
    log = profile.parent / f"{profile.name}-chromium.log"
    with chromium_env() as env:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                 "--remote-debugging-port=0", "about:blank"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env,
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
            try:
                yield tab
            finally:
                tab.close()
        except Exception as e:
            tail = log.read_text(errors="replace").splitlines()[-40:]
            e.add_note("Chromium's log, last lines:\n" + "\n".join(tail))
            raise
        finally:
            os.killpg(proc.pid, signal.SIGTERM)  # Chromium and its helpers, in its group
            proc.wait(30)


def page_lang(tab: DevTools) -> str:
    """The loaded page's language (``<html lang>``), "" while it navigates."""
    try:
        loaded = tab.eval("[document.readyState, document.documentElement.lang]")
    except RuntimeError:  # the old document went away mid-call
        return ""
    return loaded[1] if loaded[0] == "complete" else ""


def sign_in(tab: DevTools, token: str) -> None:
    """On the sign-in form: type the token, press the button."""
    wait_for(lambda: tab.at("/login"), what="the sign-in form")
    tab.type("#token", token)
    tab.click("#sign-in")


def screenshot(tab: DevTools, path: Path, height: int | None = None) -> None:
    """A PNG of the page from the top (the whole page unless ``height`` is given)."""
    if height is None:
        metrics = tab.call("Page.getLayoutMetrics")
        height = min(int(metrics["cssContentSize"]["height"]), 6000)
    clip = {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}
    shot = tab.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("QLOOP_SCREENSHOTS"):  # refresh docs/screenshots on request
        shutil.copy(path, Path(os.environ["QLOOP_SCREENSHOTS"]) / path.name)


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
        assert wait_port("127.0.0.1", port, 120), (tmp_path / "api.log").read_text()
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
    with chromium_env() as env:
        dumped = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'dump'}", "--dump-dom",
             f"{api_server}/tickets"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
    assert 'id="token"' in dumped.stdout and "Sign in" in dumped.stdout, dumped.stderr[-2000:]

    with chromium_tab(chromium, tmp_path / "profile") as tab:
        # Sign in the way a person does: open the list, type the token, press the button.
        tab.call("Page.navigate", url=f"{api_server}/tickets?scope=batch")
        sign_in(tab, ADMIN)
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
        screenshot(tab, tmp_path / "ticket.png", height=1120)  # header to history


@pytest.mark.browser
def test_customer_service_registers_a_complaint_the_data_confirms_in_chromium(
    chromium: str, api_server: str, tmp_path
) -> None:
    # a unit of the leaking batch's ticket, and its serial as the customer reads it off the label
    request = urllib.request.Request(
        f"{api_server}/api/v1/tickets?scope=batch", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        (batch,) = json.load(r)["items"]
    device = batch["evidence"]["devices"][0]["device"]
    serial = {u.device: u.serial for u in Fleet(parse_scenario(SCENARIO)).units}[device]

    with chromium_tab(chromium, tmp_path / "profile") as tab:
        tab.call("Page.navigate", url=f"{api_server}/feedback/new")
        sign_in(tab, SERVICE)
        wait_for(lambda: tab.at("/feedback/new"), what="the complaint form after signing in")
        assert tab.eval("document.getElementById('new-complaint').innerText") == "New complaint"
        for selector, text in [("#customer_name", "张先生"), ("#contact", "138 0013 8000"),
                               ("#serial", serial), ("#text", PROCEDURE)]:  # fmt: skip
            tab.type(selector, text)
        tab.eval(  # the pickers and selects, as a click on them would set them
            "document.getElementById('received_at').value = '2024-07-05T10:30';"
            "document.getElementById('channel').value = 'hotline';"
            "document.getElementById('demand').value = 'repair'"
        )
        assert tab.eval("document.getElementById('utc_offset').value") == "+08:00"
        tab.click("#file-complaint")
        wait_for(
            lambda: tab.location().startswith("/tickets/PF"),
            timeout=120,  # the first complaint may wait for the classifier to be fitted
            what="the new ticket's page",
        )
        assert tab.location().endswith("?filed=opened")
        assert "Registered as this new ticket" in tab.eval(
            "document.getElementById('filed').innerText"
        )
        classification = tab.eval("document.getElementById('classification').innerText")
        assert "performance" in classification and "cooling_decline" in classification
        assert tab.eval("document.querySelector('#classification .badge').innerText") == "II"
        verdict = tab.eval("document.getElementById('telemetry-verdict').innerText")
        assert "telemetry confirms" in verdict and "ΔT with the compressor on fell" in verdict
        parent = tab.eval("document.getElementById('parent').getAttribute('href')")
        assert parent == f"/tickets/{batch['id']}"
        assert tab.eval("document.querySelector('blockquote.words').innerText") == PROCEDURE
        assert f"on unit {device}" in tab.eval("document.getElementById('subject').innerText")
        lines = tab.eval("document.querySelectorAll('#evidence-chart svg path.series').length")
        assert lines == 1  # the unit's own ΔT from the journal
        screenshot(tab, tmp_path / "complaint.png")


def _api(base: str, path: str, body: dict) -> dict:
    """POST ``body`` to the API as the administrator; the answer."""
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as r:  # the classifier may be fitting
        return json.load(r)


@pytest.mark.browser
def test_signing_in_lands_on_the_dashboard_in_chromium(
    chromium: str, api_server: str, tmp_path
) -> None:
    # this morning's complaints: one taken up at once, with a measure of Service already late
    complaints = [("外壳有明显划痕，面板颜色不均匀。", "13800000101"),
                  ("室外机噪音很大，晚上吵得睡不着。", "13800000102")]  # fmt: skip
    ids = [
        _api(api_server, "/feedback", {"channel": "hotline", "text": text,
                                       "customer": {"name": "客户", "contact": contact}})["id"]
        for text, contact in complaints
    ]  # fmt: skip
    _api(api_server, f"/tickets/{ids[0]}/transitions", {"to": "acknowledged"})
    due = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    _api(api_server, f"/tickets/{ids[0]}/measures", {
        "term": "short", "kind": "replace", "action": "replace the panel", "owner": "王工",
        "department": "Service", "due_at": due,
    })  # fmt: skip

    with chromium_tab(chromium, tmp_path / "profile") as tab:
        tab.call("Page.navigate", url=f"{api_server}/")  # the home page asks to sign in
        sign_in(tab, ADMIN)
        wait_for(lambda: tab.at("/dashboard"), what="the dashboard after signing in")
        assert tab.eval("document.querySelector('header nav a').id") == "dashboard"
        first = tab.eval("document.querySelector('#triage-list tr.ticket').innerText")
        assert "B-LEAK" in first and "III" in first  # the leaking batch tops the triage list
        listed = tab.eval("[...document.querySelectorAll('#triage-list tr.ticket')].length")
        assert listed == int(tab.eval("document.getElementById('open-total').innerText"))
        batch = tab.eval("document.querySelector('#batches tbody tr').innerText")
        assert "B-LEAK" in batch and "cooling_decline" in batch
        late = "#figures tr[data-department=Service] td[data-figure=completion]"
        assert tab.eval(f"document.querySelector({json.dumps(late)}).dataset.missed") == "true"
        labels = tab.eval("document.querySelector('#figures thead').innerText")
        assert all(
            en in labels
            for en in ("feedback collection rate", "measure completion rate", "recurrence rate")
        )
        screenshot(tab, tmp_path / "dashboard.png")

        # drill down to the batch's model: every ticket listed is of that model
        tab.click("#batches a[href^='/dashboard?model=']")
        wait_for(lambda: tab.location().startswith("/dashboard?model="), what="the model's board")
        models = tab.eval(
            "[...document.querySelectorAll('#triage-list tr.ticket td:nth-child(7)')]"
            ".map(td => td.innerText)"
        )
        assert (
            models
            and len(set(models)) == 1
            and "B-LEAK" in tab.eval("document.getElementById('batches').innerText")
        )


@pytest.mark.browser
def test_the_quality_team_reads_the_loop_in_chinese_and_english_in_chromium(
    chromium: str, api_server: str, tmp_path
) -> None:
    """Sign in, land on the dashboard, open a ticket, open the month's report, switch language."""
    with chromium_tab(chromium, tmp_path / "profile") as tab:
        tab.call("Page.navigate", url=f"{api_server}/")
        sign_in(tab, ADMIN)
        wait_for(lambda: tab.at("/dashboard"), what="the dashboard after signing in")
        assert page_lang(tab) == "en"  # Chromium asks for en-US

        tab.click("#triage-list tr.ticket a")  # the top of the triage list: the leaking batch
        wait_for(lambda: tab.location().startswith("/tickets/"), what="the ticket page")
        tid = tab.location().split("/")[2]
        assert "B-LEAK" in tab.eval("document.getElementById('subject').innerText")
        assert tab.eval("document.querySelector('#history h2').innerText") == "History"

        tab.click("#monthly-report")
        wait_for(lambda: tab.at("/reports/monthly"), what="the monthly report")
        month = tab.eval("document.getElementById('report-month').innerText").split()[0]
        assert tab.eval("document.querySelector('#categories h2').innerText") == "Problem types"
        assert tab.eval("document.querySelectorAll('main svg').length") >= 4  # the charts
        screenshot(tab, tmp_path / "report.png")

        tab.click("#lang-zh-CN")  # the switch comes back to the same report, in Chinese
        wait_for(lambda: page_lang(tab) == "zh-CN", what="the report in Chinese")
        assert tab.location() == f"/reports/monthly?month={month}" or tab.at("/reports/monthly")
        headings = tab.eval("[...document.querySelectorAll('main h2')].map(h => h.innerText)")
        for zh in ("问题类型占比", "高频故障TOP5", "责任部门处理效率", "客户满意度趋势"):
            assert zh in headings, (zh, headings)
        screenshot(tab, tmp_path / "report_zh.png")

        tab.call("Page.navigate", url=f"{api_server}/dashboard")  # remembered from now on
        wait_for(lambda: tab.at("/dashboard"), what="the dashboard in Chinese")
        assert tab.eval("document.querySelector('main h1').innerText") == "看板"
        labels = tab.eval("document.querySelector('#figures thead').innerText")
        assert all(
            zh in labels for zh in ("反馈收集率", "整改完成率", "客户满意度", "同类问题重复率")
        )
        screenshot(tab, tmp_path / "dashboard_zh.png")

        tab.call("Page.navigate", url=f"{api_server}/tickets/{tid}")
        wait_for(lambda: tab.at(f"/tickets/{tid}"), what="the ticket in Chinese")
        assert tab.eval("document.querySelector('#history h2').innerText") == "处理记录"
        assert tab.eval("document.querySelector('[data-field=fault]').innerText") == "制冷下降"
        times = tab.eval("[...document.querySelectorAll('main time')].map(t => t.innerText)")
        assert times and all(t.endswith(" CST") for t in times)  # China Standard Time
        screenshot(tab, tmp_path / "ticket_zh.png", height=1120)

        tab.click("#lang-en")  # and back
        wait_for(lambda: page_lang(tab) == "en", what="English again")
        assert tab.eval("document.querySelector('#history h2').innerText") == "History"
