"""A broker that refuses the worker's or the simulator's credentials: one line that says what
to fix and a non-zero exit, not a worker that retries for ever without becoming ready. (An edge
device keeps retrying, warning at each attempt: it must never give up.)"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from tests.deploy.conftest import edge_config
from tests.helpers import wait_for

pytestmark = pytest.mark.broker


def _qloop(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qloop", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _the_fix(r: subprocess.CompletedProcess[str], command: str) -> str:
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"qloop {command}: the broker at 127.0.0.1:"), r.stderr
    assert "Not authorized" in last and "--broker-username" in last
    assert "QLOOP_BROKER_PASSWORD" in last
    return last


def test_the_worker_stops_at_refused_credentials(secure_broker, tmp_path):
    r = _qloop(
        "cloud", "run",
        "--db", f"sqlite:///{tmp_path / 't.db'}",
        "--journal", str(tmp_path / "j.db"),
        env=secure_broker.env("qloop-worker", "guessed-s3cret"),
    )  # fmt: skip
    assert "(user qloop-worker)" in _the_fix(r, "cloud run")
    assert "guessed-s3cret" not in r.stderr  # the password is never printed


def test_the_simulator_stops_at_refused_credentials(secure_broker):
    env = secure_broker.env("qloop-sim")
    del env["QLOOP_BROKER_PASSWORD"]  # anonymous as far as the broker can tell
    env["QLOOP_BROKER_USERNAME"] = "nobody"
    _the_fix(_qloop("simulate", "smoke", env=env), "simulate")


def test_an_edge_agent_keeps_trying_and_keeps_its_readings(secure_broker, caplog):
    from edge_agent.config import build_agent
    from simulators.source import EDGE_SOURCES

    login = secure_broker.login("ac-a", "guessed-s3cret")
    config = edge_config("ac-a", login)
    agent = build_agent(config, EDGE_SOURCES)
    runner = threading.Thread(target=agent.run)
    runner.start()
    try:
        assert agent.link.wait_refused(30) is not None
        wait_for(lambda: len(agent.buffer) > 0, what="readings kept while refused")
        assert runner.is_alive()
    finally:
        agent.stop()
        runner.join(30)
    assert any("refused the connection (Not authorized)" in r.message for r in caplog.records)
