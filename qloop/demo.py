"""``qloop demo``: the whole system on embedded defaults, ending in visible tickets.

Starts a broker (Mosquitto when installed, else the embedded amqtt), a cloud worker and the
ticketing API as child processes — the same commands an operator runs — then a simulated fleet
in which one production batch develops a cooling defect and another left the factory short.
When the fleet's data is ingested it prints the tickets through the API and which test opened
each batch ticket (``demo_ops.py``), files complaints from several channels for units of the
fleet (``demo_complaints.py``: they are classified, routed, joined to the batch ticket and
checked against the units' telemetry), works one of them through the whole loop to the
customer's verdict and prints the month's report (``demo_loop.py``), prints the address and a
token to query it, and keeps serving until Ctrl-C (or ``--duration``).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cloud.store.journal import Journal, JournalError
from qloop.broker import free_port, start_broker, wait_port
from qloop.demo_complaints import file_complaints
from qloop.demo_loop import Api, print_board, print_report, work_complaint
from qloop.demo_ops import print_operations


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen([sys.executable, "-m", "qloop", *args], stdout=out, stderr=out, env=env)


def _journal_messages(path: Path) -> int:
    """Messages the worker has stored so far; -1 while it has no journal yet."""
    try:
        journal = Journal.open_readonly(path)
    except (JournalError, sqlite3.Error):
        return -1
    try:
        return journal.count("messages")
    except sqlite3.Error:
        return -1
    finally:
        journal.close()


def _wait_file(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _wait_ingested(journal: Path, timeout: float, settle: float = 3.0) -> None:
    """Until the journal stops growing for ``settle`` seconds (the worker caught up)."""
    deadline = time.monotonic() + timeout
    last, since = -2, time.monotonic()
    while time.monotonic() < deadline:
        n = _journal_messages(journal)
        if n < 0:  # not created yet
            time.sleep(0.5)
            continue
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= settle:
            return
        time.sleep(0.5)


def fetch_tickets(base: str, token: str) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        url = f"{base}/api/v1/tickets?limit=500" + (f"&cursor={cursor}" if cursor else "")
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            page = json.load(r)
        items.extend(page["items"])
        cursor = page.get("next")
        if not cursor:
            return items


def format_ticket(t: dict) -> str:
    where = f"batch {t['batch']}" if t["scope"] == "batch" else f"device {t['device']}"
    return (
        f"  {t['id']}  {t['fault']:<16} {t['model']} {where:<22} severity {t['severity']:<3}"
        f" {t['priority']:<7} {t['affected_devices']}/{t['batch_devices']} units  "
        f"-> {', '.join(t['departments'])}  [{t['status']}]"
    )


def run_demo(
    *, scenario: str, workdir: Path, api_port: int, broker_port: int | None, duration: float | None
) -> int:
    workdir = workdir.resolve()
    run_dir = workdir / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    token = os.environ.get("QLOOP_API_TOKEN") or secrets.token_urlsafe(24)
    env = {**os.environ, "QLOOP_API_TOKEN": token}
    db = f"sqlite:///{run_dir / 'qloop.db'}"
    journal = run_dir / "journal.db"
    ready = run_dir / "worker.ready"
    children: list[subprocess.Popen] = []
    metrics_port = free_port()
    broker = start_broker(run_dir / "broker", port=broker_port)
    print(f"qloop demo: {broker.kind} broker on {broker.address}; logs in {run_dir}", flush=True)
    try:
        if wait_port("127.0.0.1", api_port, 0.1):  # taken: take any free port instead
            api_port = free_port()
        children.append(
            _spawn(
                ["api", "--db", db, "--port", str(api_port), "--journal", str(journal)],
                run_dir / "api.log",
                env,
            )
        )
        children.append(
            _spawn(
                [
                    "cloud",
                    "run",
                    "--broker",
                    broker.address,
                    "--db",
                    db,
                    "--journal",
                    str(journal),
                    "--client-id",
                    "qloop-demo-worker",
                    "--ready-file",
                    str(ready),
                    "--metrics-port",
                    str(metrics_port),
                ],
                run_dir / "worker.log",
                env,
            )
        )
        if not wait_port("127.0.0.1", api_port, 30):
            print(f"qloop demo: the API did not start; see {run_dir / 'api.log'}")
            return 1
        # telemetry is not retained: the fleet may only start once the worker's persistent
        # session and subscriptions exist, or its first readings would go nowhere
        if not _wait_file(ready, 60):
            print(f"qloop demo: the worker did not subscribe; see {run_dir / 'worker.log'}")
            return 1
        print(f"qloop demo: simulating scenario '{scenario}' ...", flush=True)
        sim = subprocess.run(
            [
                sys.executable,
                "-m",
                "qloop",
                "simulate",
                scenario,
                "--broker",
                broker.address,
                "--ground-truth",
                str(run_dir / "truth.json"),
            ],
            env=env,
        )
        if sim.returncode != 0:
            print("qloop demo: the simulator failed", flush=True)
            return 1
        _wait_ingested(journal, timeout=120)
        base = f"http://127.0.0.1:{api_port}"
        tickets = fetch_tickets(base, token)
        live = [t for t in tickets if t["status"] != "closed"]
        print(f"\nqloop demo: {len(live)} open ticket(s):")
        for t in live:
            print(format_ticket(t))
        if len(tickets) > len(live):
            print(
                f"  (and {len(tickets) - len(live)} closed, e.g. device tickets merged into "
                "their batch ticket once the batch stood out)"
            )
        api = Api(base, token)
        batches = [t for t in live if t["scope"] == "batch"]
        print_operations(api, f"http://127.0.0.1:{metrics_port}/metrics", batches)
        truth = json.loads((run_dir / "truth.json").read_text())["faults"]
        answers = file_complaints(base, token, scenario, truth)
        dealer = answers.get("dealer")
        if dealer is not None and dealer.status == 201:
            work_complaint(api, dealer.body["id"])
        month = time.strftime("%Y-%m", time.gmtime())
        print_report(api, month)
        print_board(api)
        print(f"\nPages: {base}/dashboard   (sign in with the token; 中文: {base}/lang?to=zh-CN)")
        pdf = f"{base}/reports/monthly.pdf?month={month}&lang=zh-CN"
        print(f"Report: {base}/reports/monthly   PDF: {pdf}")
        print(f"API:   {base}/api/v1/tickets   (OpenAPI: {base}/docs)")
        print(f"Token: {token}")
        print(f"Try:   curl -H 'Authorization: Bearer {token}' {base}/api/v1/tickets\n", flush=True)
        _serve(duration)
        return 0
    finally:
        for c in children:
            c.send_signal(signal.SIGTERM)
        for c in children:
            try:
                c.wait(15)
            except subprocess.TimeoutExpired:
                c.kill()
        broker.stop()


def _serve(duration: float | None) -> None:
    if duration is not None:
        time.sleep(duration)
        return
    print("Serving until Ctrl-C.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
