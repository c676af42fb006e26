"""Issue 13's loop end to end, with real processes: a complaint filed through the real ``qloop
api`` gets a measure with an owner and a due date, the measure runs late and is escalated to a
real webhook receiver, the fix is recorded and checked effective, the callback scores 2 and the
ticket is re-dispatched, a second fix and a callback of 5 close it; ``qloop audit verify`` then
finds every history chain intact, and a direct edit of one history row in the database is named.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from qloop.broker import free_port, wait_port
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e]

TOKEN = "loop-admin-token"


class Receiver:
    """A webhook receiver on a free port that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, Path, Receiver]]:
    receiver = Receiver()
    port = free_port()
    db = tmp_path / "qloop.db"
    env = {**os.environ, "QLOOP_API_TOKEN": TOKEN, "QLOOP_LOG_LEVEL": "WARNING"}
    log = open(tmp_path / "api.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qloop",
            "api",
            "--db",
            f"sqlite:///{db}",
            "--port",
            str(port),
            "--sla-check-s",
            "0.5",
            "--escalation-webhook",
            receiver.url,
            "--escalation-retry-s",
            "0.5",
        ],  # fmt: skip
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_port("127.0.0.1", port, 120), (tmp_path / "api.log").read_text()
        yield f"http://127.0.0.1:{port}/api/v1", db, receiver
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
        receiver.close()


def call(base: str, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {path}: {e.code} {e.read()[:500]!r}") from None


def audit(db: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qloop", "audit", "verify", "--db", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_complaint_through_measures_callbacks_and_an_audited_history(api) -> None:
    base, db, receiver = api
    text = "本批到货的空调室内机面板有划痕，外壳有凹陷，要求更换"
    t = call(base, "POST", "/feedback", {"channel": "dealer", "text": text, "demand": "replace"})
    tid = t["id"]
    for to in ("acknowledged", "in_progress"):
        call(base, "POST", f"/tickets/{tid}/transitions", {"to": to})
    late = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    measure = {
        "term": "short", "kind": "replace", "action": "replace the panels", "owner": "王工",
        "department": "Service", "due_at": late,
    }  # fmt: skip
    mid = call(base, "POST", f"/tickets/{tid}/measures", measure)["measures"][0]["id"]

    def escalated() -> bool:
        return any(p.get("event") == "measure_overdue" for p in receiver.received)

    wait_for(escalated, timeout=30, what="the late measure's escalation at the webhook")
    (alert,) = [p for p in receiver.received if p.get("event") == "measure_overdue"]
    assert alert["ticket"] == tid and alert["department"] == "Service"
    assert alert["measure"]["id"] == mid

    def fixed_and_checked(what: str) -> dict:
        now = datetime.now(UTC).isoformat()
        call(base, "POST", f"/tickets/{tid}/fix", {"description": what, "effective_from": now})
        return call(base, "POST", f"/tickets/{tid}/verification", {"result": "effective"})

    record = {"status": "done", "record": "panels replaced"}
    call(base, "PATCH", f"/tickets/{tid}/measures/{mid}", record)
    assert fixed_and_checked("panels replaced")["status"] == "callback"
    low = {"note": "one still scratched", "customer": "dealer", "score": 2}
    t = call(base, "POST", f"/tickets/{tid}/followups", low)
    assert t["status"] == "reopened" and t["history"][-1]["action"] == "redispatched"
    for to in ("acknowledged", "in_progress"):
        call(base, "POST", f"/tickets/{tid}/transitions", {"to": to})
    assert fixed_and_checked("last panel replaced")["status"] == "callback"
    t = call(base, "POST", f"/tickets/{tid}/followups", {"note": "ok", "customer": "d", "score": 5})
    assert t["status"] == "closed"
    assert [c["score"] for c in t["evidence"]["callbacks"]] == [2, 5]

    ok = audit(db)
    assert ok.returncode == 0 and "all chains verify" in ok.stdout, ok.stdout + ok.stderr
    with sqlite3.connect(db) as conn:  # someone edits the record behind qloop's back
        conn.execute(
            "UPDATE ticket_history SET note = 'the customer was satisfied at once' "
            "WHERE ticket_id = ? AND action = 'redispatched'",
            (tid,),
        )
    bad = audit(db)
    assert bad.returncode != 0
    assert tid in bad.stdout + bad.stderr and "changed" in bad.stdout + bad.stderr
