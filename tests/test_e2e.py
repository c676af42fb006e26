"""End to end with real processes: Mosquitto → simulated fleet (edge agent code) → cloud worker
→ ticket visible through the HTTP API; and the demo command itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from qloop.broker import free_port, wait_port
from tests.helpers import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

SCENARIO = """
name = "e2e"
seed = 11
start_ts = 2024-07-01T00:00:00+08:00
duration_s = "6d"
sample_period_s = 60

[[batches]]
batch = "B-GOOD-1"
model = "KFR-35GW"
units = 14

[[batches]]
batch = "B-LEAK"
model = "KFR-35GW"
units = 14

[[batches.faults]]
kind = "refrigerant_leak"
share = 0.6
onset_after_s = ["2d", "3d"]
magnitude = 0.3
ramp_s = "1d"

[[batches]]
batch = "B-GOOD-2"
model = "KFR-35GW"
units = 14
"""


def _qloop(*args: str, env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "qloop", *args], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _get(url: str, token: str | None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_fleet_to_batch_ticket_through_real_processes(mosquitto, tmp_path):
    token = "e2e-secret-token"
    env = {**os.environ, "QLOOP_API_TOKEN": token, "QLOOP_LOG_LEVEL": "WARNING"}
    db = f"sqlite:///{tmp_path / 'qloop.db'}"
    (tmp_path / "e2e.toml").write_text(SCENARIO)
    port = free_port()
    log = open(tmp_path / "procs.log", "wb")  # noqa: SIM115 - shared by two child processes
    procs = [
        _qloop("api", "--db", db, "--port", str(port), env=env, log=log),
        _qloop(
            "cloud",
            "run",
            "--broker",
            mosquitto.address,
            "--db",
            db,
            "--journal",
            str(tmp_path / "journal.db"),
            "--ready-file",
            str(tmp_path / "worker.ready"),
            env=env,
            log=log,
        ),
    ]
    try:
        assert wait_port("127.0.0.1", port, 30), "API did not start"
        # telemetry is not retained: the fleet starts once the worker's session exists
        wait_for((tmp_path / "worker.ready").exists, timeout=60, what="the worker's subscriptions")
        sim = subprocess.run(
            [
                sys.executable,
                "-m",
                "qloop",
                "simulate",
                str(tmp_path / "e2e.toml"),
                "--broker",
                mosquitto.address,
                "--ground-truth",
                str(tmp_path / "truth.json"),
            ],
            env=env,
            capture_output=True,
            timeout=300,
        )
        assert sim.returncode == 0, sim.stderr.decode()[-2000:]
        base = f"http://127.0.0.1:{port}/api/v1/tickets"

        def batch_tickets():
            status, page = _get(f"{base}?scope=batch", token)
            assert status == 200
            return page["items"]

        wait_for(
            lambda: any(t["batch"] == "B-LEAK" for t in batch_tickets()),
            timeout=120,
            what="a batch ticket for the leaking batch",
        )
        tickets = batch_tickets()
        assert {t["batch"] for t in tickets} == {"B-LEAK"}, "no ticket for healthy batches"
        (t,) = tickets
        assert t["fault"] == "cooling_decline" and t["category"] == "performance"
        assert t["model"] == "KFR-35GW" and t["device"] is None
        assert t["affected_devices"] >= 3 and t["batch_devices"] == 14
        assert "R&D" in t["departments"]
        status, one = _get(f"{base}/{t['id']}", token)
        assert status == 200 and one["id"] == t["id"] and one["evidence"]
        truth = {g["device"] for g in json.loads((tmp_path / "truth.json").read_text())["faults"]}
        affected = {d["device"] for d in one["evidence"].get("devices", [])}
        assert affected and affected <= truth, "only units that really leak are named"
        assert _get(base, None)[0] == 401
        assert _get(base, "wrong-token")[0] == 401
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
        log.close()


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
    assert batch_lines and all("B20240517" in ln for ln in batch_lines), out.stdout
    assert "cooling_decline" in batch_lines[0]
    assert "Token: demo-token" in out.stdout and "curl" in out.stdout
