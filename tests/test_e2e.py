"""End to end with real processes: Mosquitto → simulated fleet (edge agent code) → cloud worker
→ tickets through the HTTP API, the closed loop of fix verification, and the demo command."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from qloop.broker import free_port, wait_port
from simulators.fleet import Fleet
from simulators.scenario import parse_scenario
from tests import scenarios
from tests.helpers import wait_for
from tests.scenarios import batch, fault
from tests.vm import VictoriaMetrics

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

TOKEN = "e2e-secret-token"
START = 1719763200.0  # 2024-07-01T00:00:00+08:00, the scenarios' start
DAY = 86400.0


def scenario(*, repair_after: str | None) -> str:
    """Three batches of one model; most of B-LEAK loses 30 % capacity from day 2 or 3."""
    repair = {"repair_after_s": repair_after} if repair_after else {}
    leak = fault("refrigerant_leak", 0.6, ["2d", "3d"], magnitude=0.3, ramp_s="1d", **repair)
    return scenarios.scenario(
        "e2e", 11, "7d", batch("B-GOOD-1", 14), batch("B-LEAK", 14, leak), batch("B-GOOD-2", 14)
    )


class System:
    """The API and a cloud worker as real processes, against one broker and one database.

    The worker writes telemetry to a real VictoriaMetrics (InfluxDB write API) and the API is
    given no journal, as on a host of its own: its evidence charts read the time-series store.
    """

    def __init__(self, broker: str, tmp: Path, tsdb: VictoriaMetrics) -> None:
        self.broker, self.tmp, self.tsdb = broker, tmp, tsdb
        self.env = {**os.environ, "QLOOP_API_TOKEN": TOKEN, "QLOOP_LOG_LEVEL": "WARNING"}
        db = f"sqlite:///{tmp / 'qloop.db'}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/api/v1/tickets"
        self._log = open(tmp / "procs.log", "wb")  # noqa: SIM115 - closed in stop()
        self.procs = [
            self._qloop("api", "--db", db, "--port", str(self.port), "--influx-url", tsdb.url),
            self._qloop(
                "cloud",
                "run",
                "--broker",
                broker,
                "--db",
                db,
                "--journal",
                str(tmp / "journal.db"),
                "--influx-url",
                tsdb.url,
                "--ready-file",
                str(tmp / "worker.ready"),
            ),
        ]
        assert wait_port("127.0.0.1", self.port, 120), "API did not start"
        # telemetry is not retained: the fleet starts once the worker's session exists
        wait_for((tmp / "worker.ready").exists, timeout=60, what="the worker's subscriptions")

    def _qloop(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "qloop", *args],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def simulate(self, text: str) -> list[dict]:
        """Run a scenario to its end; returns the injected faults (ground truth)."""
        (self.tmp / "scenario.toml").write_text(text)
        sim = subprocess.run(
            [
                sys.executable,
                "-m",
                "qloop",
                "simulate",
                str(self.tmp / "scenario.toml"),
                "--broker",
                self.broker,
                "--ground-truth",
                str(self.tmp / "truth.json"),
            ],
            env=self.env,
            capture_output=True,
            timeout=300,
        )
        assert sim.returncode == 0, sim.stderr.decode()[-2000:]
        return json.loads((self.tmp / "truth.json").read_text())["faults"]

    def call(
        self, path: str = "", body: dict | None = None, token: str | None = TOKEN
    ) -> tuple[int, dict]:
        req = urllib.request.Request(
            self.base + path,
            method="POST" if body is not None else "GET",
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {token}"} if token else {}),
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    def feedback(self, body: dict) -> tuple[int, dict]:
        """``POST /api/v1/feedback`` as a customer-service client sends it."""
        req = urllib.request.Request(
            self.base.removesuffix("/tickets") + "/feedback",
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    def batch_tickets(self) -> list[dict]:
        status, page = self.call("?scope=batch")
        assert status == 200, page
        return page["items"]

    def leak_ticket(self) -> dict:
        """Wait for the leaking batch's ticket (the worker may still be catching up)."""
        wait_for(
            lambda: any(t["batch"] == "B-LEAK" for t in self.batch_tickets()),
            timeout=120,
            what="a batch ticket for the leaking batch",
        )
        (t,) = [t for t in self.batch_tickets() if t["batch"] == "B-LEAK"]
        return t

    def page(self, path: str) -> str:
        """A page as a signed-in engineer sees it (signed in through the login form)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        conn.request("POST", "/login", body=urllib.parse.urlencode({"token": TOKEN}), headers=form)
        session = conn.getresponse().getheader("Set-Cookie", "").split(";")[0]
        conn.close()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers={"Cookie": session}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read().decode()

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(20)
        self._log.close()


@pytest.fixture
def system(mosquitto, victoria_metrics, tmp_path) -> Iterator[System]:
    s = System(mosquitto.address, tmp_path, victoria_metrics)
    yield s
    s.stop()


def test_fleet_to_batch_ticket_through_real_processes(system):
    truth = {g["device"] for g in system.simulate(scenario(repair_after=None))}
    t = system.leak_ticket()
    assert {x["batch"] for x in system.batch_tickets()} == {"B-LEAK"}, "healthy batches: none"
    assert t["fault"] == "cooling_decline" and t["category"] == "performance"
    assert t["model"] == "KFR-35GW" and t["device"] is None
    assert t["affected_devices"] >= 3 and t["batch_devices"] == 14
    assert t["department"] == "R&D" and "Production" in t["departments"]
    status, one = system.call(f"/{t['id']}")
    assert status == 200 and one["id"] == t["id"] and one["history"]
    affected = {d["device"] for d in one["evidence"].get("devices", [])}
    assert affected and affected <= truth, "only units that really leak are named"
    assert system.call("", token=None)[0] == 401
    assert system.call("", token="wrong-token")[0] == 401

    def charted() -> bool:  # the worker's last points may still be on their way to the store
        system.tsdb.flush()
        return "<svg" in system.page(f"/tickets/{t['id']}")

    wait_for(charted, timeout=60, what="the ticket page's evidence chart")
    html = system.page(f"/tickets/{t['id']}")
    assert "return − supply ΔT" in html and "from InfluxDB" in html
    drawn = set(re.findall(r'<path class="series[^>]*><title>([^<]+)</title>', html))
    assert drawn and drawn <= affected  # a line for each affected unit shown, and only those
    _the_procedures_complaint(system, one)


PROCEDURE = "空调使用1个月后，制冷效果明显下降，出风口温度18℃(设定16℃)，噪音比初期增大。"


def _the_procedures_complaint(system: System, batch_ticket: dict) -> None:
    """Issue 12's acceptance: the procedure's example complaint, filed through the API for a
    unit of the leaking batch (named by the serial its birth announced), is classified, routed,
    joined to the batch ticket and confirmed by the unit's telemetry; the same words for a
    healthy unit are answered with "telemetry normal"."""
    units = {u.device: u for u in Fleet(parse_scenario(scenario(repair_after=None))).units}
    leaking = next(d["device"] for d in batch_ticket["evidence"]["devices"] if d["active"])
    healthy = next(u for u in units.values() if u.batch == "B-GOOD-1")
    body = {
        "channel": "hotline",
        "received_at": "2024-07-06T14:30:00+08:00",
        "text": PROCEDURE,
        "customer": {"name": "张先生", "contact": "13800138000"},
        "model": "KFR-35GW",
        "serial": units[leaking].serial,
        "purchase_date": "2024-06-01",
        "demand": "repair",
    }
    status, t = system.feedback(body)
    assert status == 201, t
    assert (t["source"], t["scope"], t["device"], t["batch"]) == (
        "feedback",
        "device",
        leaking,
        "B-LEAK",
    )
    c = t["classification"]
    assert c["category"] == "performance" and c["fault"] == "cooling_decline"
    assert c["severity"] == "II" and not c["needs_triage"]
    assert t["departments"] == ["R&D", "Production"]
    assert t["parent"] == batch_ticket["id"]
    assert t["evidence"]["telemetry"]["status"] == "confirms", t["evidence"]["telemetry"]
    assert "telemetry confirms" in system.page(f"/tickets/{t['id']}")
    _, parent = system.call(f"/{batch_ticket['id']}")
    assert [x["ticket"] for x in parent["evidence"]["complaints"]] == [t["id"]]
    status, normal = system.feedback(
        body | {"serial": healthy.serial, "customer": {"name": "李女士", "contact": "139"}}
    )
    assert status == 201 and normal["parent"] is None
    assert normal["evidence"]["telemetry"]["status"] == "normal", normal["evidence"]


def _work_the_ticket(system: System, ticket: dict, effective_from: float) -> dict:
    """What the engineer does: acknowledge, investigate, record the fix for the affected units."""
    tid = ticket["id"]
    for to in ("acknowledged", "in_progress"):
        status, body = system.call(f"/{tid}/transitions", {"to": to, "note": f"e2e: {to}"})
        assert status == 200, body
    status, body = system.call(f"/{tid}/transitions", {"to": "closed"})
    assert status == 409, "no closing by hand: only verification closes a fixed ticket"
    status, body = system.call(
        f"/{tid}/fix",
        {
            "description": "recharged refrigerant, brazed the leaking joint",
            "effective_from": effective_from,
        },
    )
    assert status == 201, body
    return body


def test_fix_verified_from_the_units_data_closes_the_ticket(system):
    """The simulator repairs the leaking units on day 5 (a field campaign); the fix recorded as
    effective from day 5 is verified by the units' own data after it, and the ticket closes."""
    system.simulate(scenario(repair_after="5d"))
    ticket = system.leak_ticket()
    _work_the_ticket(system, ticket, effective_from=START + 5 * DAY)

    def closed() -> bool:
        return system.call(f"/{ticket['id']}")[1]["status"] == "closed"

    wait_for(closed, timeout=60, what="verification to close the ticket")
    _, t = system.call(f"/{ticket['id']}")
    notes = " ".join(h.get("note") or "" for h in t["history"])
    assert "verified" in notes and "not verified" not in notes
    assert t["fix"]["outcome"] == "verified"


def test_fix_not_applied_reopens_the_ticket(system):
    """The same fix recorded, but the units were never repaired: they stay below baseline past
    the verification window, and the ticket is reopened and sent back."""
    system.simulate(scenario(repair_after=None))
    ticket = system.leak_ticket()
    _work_the_ticket(system, ticket, effective_from=START + 4 * DAY)

    def reopened() -> bool:
        return system.call(f"/{ticket['id']}")[1]["status"] == "reopened"

    wait_for(reopened, timeout=60, what="verification to reopen the ticket")
    _, t = system.call(f"/{ticket['id']}")
    assert t["fix"]["outcome"] != "verified"
    assert any("not verified" in (h.get("note") or "") for h in t["history"])


def test_demo_command_ends_with_a_batch_ticket(tmp_path):
    """README command 1 (without its setup step): tickets for the defective batch only."""
    env = {**os.environ, "QLOOP_API_TOKEN": "demo-token"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "qloop",
            "demo",
            "--duration",
            "0",
            "--workdir",
            str(tmp_path),
            "--api-port",
            str(free_port()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = [ln for ln in out.stdout.splitlines() if ln.strip().startswith("PF")]
    batch_lines = [ln for ln in lines if " batch " in ln]
    # the leaking batch and the batch born short, nothing else
    assert sorted(ln.split(" batch ")[1].split()[0] for ln in batch_lines) == [
        "B20240517",
        "B20240605",
    ], out.stdout
    assert all("cooling_decline" in ln for ln in batch_lines)
    assert "(batch B20240605) was opened by the peer level test" in out.stdout
    moved = re.search(r"the peer level test moved (\d+) units' baselines", out.stdout)
    assert moved and int(moved.group(1)) >= 3, out.stdout  # B20240605's units, 16 of them
    assert "(batch B20240517) was opened by the pooled test" in out.stdout
    assert "Token: demo-token" in out.stdout and "curl" in out.stdout
    # the operator's check: the worker's own counters say the fleet's data all came in
    nothing_lost = r"([\d,]+) readings, 0 duplicates, 0 dead letters, 0 lost seqs"
    counters = re.search(nothing_lost, out.stdout)
    assert counters and int(counters.group(1).replace(",", "")) > 0, out.stdout
    assert all(f"{ln.split()[0]} (batch " in out.stdout for ln in batch_lines)
    people = out.stdout.split("complaints from people arrive on several channels:")[1]
    hotline = people.split("ecommerce")[0]
    assert "opened PF" in hotline and "performance/cooling_decline" in hotline
    assert "joined batch ticket PF" in hotline and "telemetry confirms" in hotline
    assert "ecommerce -> repeat #1 of" in people  # the same customer, another channel
    assert "telemetry normal" in people.split("store")[1].split("platform")[0]
    assert "safety, severity III urgent" in people
    loop = out.stdout.split("the loop on")[1]
    assert "→ callback" in loop and "dissatisfied (2) → reopened" in loop
    assert "callback: 5 → closed" in loop and "measures done 100%" in loop
    assert "satisfaction: 2 callbacks, mean 3.5, 1 low" in out.stdout
    board = out.stdout.split("the dashboard:")[1]
    assert "open ticket(s)" in board and "triage: PF" in board and "collection" in board
    assert "/lang?to=zh-CN" in out.stdout and "monthly.pdf?month=" in out.stdout
