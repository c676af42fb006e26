"""Alarm latency: wall time from publishing the message that completes a fault's
evidence to the ticket being visible in the API.

The fault is ``overcurrent``: the edge's safety event is the whole evidence, so the message that
completes it is that one event (a detector fault such as ``cooling_decline`` needs hours of
readings; its last block would add the detector's cost, a few hundred µs — see ``detectors`` —
to the same path). Real processes: Mosquitto, ``qloop cloud run`` and ``qloop api`` sharing one
SQLite ticket database. Each repetition uses a new device (born before the clock starts), so
each opens a new device ticket (each in a batch of its own, so
no batch ticket absorbs them). Per repetition two clocks start at the publish:

* baseline: until the message is in the worker's journal (polled by key) — transport plus the
  worker's batching, without findings and ticketing;
* figure: until ``GET /api/v1/tickets?fault=overcurrent&scope=device`` lists the device.

Both are polled every 2 ms, so each carries up to that much polling delay. Then the same again,
with new devices, while a steady flow of telemetry (the ingest benchmark's units, 60-row blocks)
goes to the same worker: a safety event must not wait for the worker's micro-batches of
telemetry to be judged (``cloud/ingest/ingestor.py``: its finding is handed on when received).
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import Result, spawn_qloop, stop_process, wait_until
from benchmarks.ingest import Traffic, journal_count, make_traffic
from contract import protocol
from contract.mqtt import BrokerAddress, MqttLink
from contract.protocol import Birth, Event
from qloop.broker import free_port, start_broker, wait_port

TOKEN = "bench-alarm-token"  # noqa: S105 - a throwaway token for a throwaway API
POLL_S = 0.002


def _in_journal(path: Path, device: str, seq: int) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute(
                "SELECT 1 FROM messages WHERE device = ? AND seq = ?", (device, seq)
            ).fetchone()
    except sqlite3.OperationalError:
        return False
    return row is not None


class ApiClient:
    """One keep-alive HTTP connection with the bearer token."""

    def __init__(self, port: int, token: str = TOKEN) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path, headers=self.headers)
        r = self.conn.getresponse()
        return r.status, r.read()


def start_api(db_url: str, workdir: Path) -> tuple[object, int]:
    port = free_port()
    proc = spawn_qloop(
        ["--log-level", "WARNING", "api", "--db", db_url, "--port", str(port)],
        workdir / "api.log",
        env={"QLOOP_API_TOKEN": TOKEN},
    )
    if not wait_port("127.0.0.1", port, 60):
        stop_process(proc)
        raise RuntimeError(f"the API did not start: {(workdir / 'api.log').read_text()[-2000:]}")
    return proc, port


class Load:
    """Telemetry published at a steady rate from a thread of its own while latency is measured:
    the ingest benchmark's traffic (``benchmarks.ingest.make_traffic``), paced."""

    def __init__(self, broker: BrokerAddress, traffic: Traffic, rate: float) -> None:
        self.traffic, self.rate = traffic, rate
        self.link = MqttLink("bench-alarm-load", broker, max_inflight=1000)
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.link.start()
        if not self.link.wait_connected(30):
            raise RuntimeError("no connection to the broker")
        for topic, body, retain in self.traffic.births:
            self.link.publish(topic, body, retain=retain)
        self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        for topic, body, retain in self.traffic.messages:
            if self._stop.is_set():
                return
            self.link.publish(topic, body, retain=retain)
            self.sent += 1
            ahead = t0 + self.sent / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.link.close()


def _measure(
    link: MqttLink, client: ApiClient, journal: Path, devices: list[str], now: float
) -> tuple[list[float], list[float]]:
    """Publish an overcurrent event of each device in turn; (to ticket, to journal) per event."""
    to_ticket, to_journal = [], []
    for k, d in enumerate(devices):
        ev = Event(d, 0, now + k, "overcurrent", 12.5, 10.0)
        seen_journal: list[float] = []

        def watch(dev: str = d, out: list[float] = seen_journal) -> None:
            while not _in_journal(journal, dev, 0):
                time.sleep(POLL_S)
            out.append(time.monotonic())

        t0 = time.monotonic()
        link.publish(protocol.topic(d, "event"), protocol.encode(ev))
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        deadline = t0 + 30
        while time.monotonic() < deadline:
            status, body = client.get("/api/v1/tickets?fault=overcurrent&scope=device&limit=100")
            if status == 200 and any(t.get("device") == d for t in json.loads(body)["items"]):
                break
            time.sleep(POLL_S)
        else:
            raise RuntimeError(f"no ticket for {d} within 30 s")
        to_ticket.append(time.monotonic() - t0)
        watcher.join(30)
        to_journal.append(seen_journal[0] - t0)
    return to_ticket, to_journal


def bench_alarm(quick: bool = False) -> Result:
    res = Result("alarm")
    reps = 3 if quick else 40
    # under load: telemetry of the ingest benchmark's units at a steady rate (60-row blocks)
    load_rate = 50.0 if quick else 1000.0
    traffic = make_traffic(20 if quick else 1000, 2 if quick else 20)
    with tempfile.TemporaryDirectory(prefix="qloop-bench-alarm-") as tmp:
        wd = Path(tmp)
        broker = start_broker(wd / "broker", persistence=False)
        db_url = f"sqlite:///{wd / 'tickets.db'}"
        journal = wd / "journal.db"
        worker = spawn_qloop(
            [
                "--log-level", "WARNING", "cloud", "run",
                "--broker", f"{broker.host}:{broker.port}",
                "--db", db_url, "--journal", str(journal), "--client-id", "bench-alarm",
            ],
            wd / "worker.log",
        )  # fmt: skip
        api = None
        link = MqttLink("bench-alarm-pub", BrokerAddress(broker.host, broker.port))
        try:
            api, port = start_api(db_url, wd)
            link.start()
            if not link.wait_connected(30):
                raise RuntimeError("no connection to the broker")
            devices = [f"alarm-{k:04d}" for k in range(2 * reps)]
            now = time.time()
            for d in devices:
                b = Birth(d, "air_conditioner", "KFR-35GW", f"B-{d}", f"SN-{d}", "2.3.0", 10.0, now)
                link.publish(protocol.topic(d, "birth"), protocol.encode(b), retain=True)
            if not wait_until(lambda: journal_count(journal, "births") >= 2 * reps, 60):
                raise RuntimeError("the worker did not store the births")
            client = ApiClient(port)
            to_ticket, to_journal = _measure(link, client, journal, devices[:reps], now)
            load = Load(BrokerAddress(broker.host, broker.port), traffic, load_rate)
            load.start()
            try:
                # the clock starts once the load's units are registered (their births) and the
                # worker keeps up with their telemetry: what is measured is the steady flow,
                # not a worker still catching up with a thousand new units
                units = 2 * reps + len(traffic.births)
                if not wait_until(lambda: journal_count(journal, "births") >= units, 120):
                    raise RuntimeError("the worker did not store the load's births")
                wait_until(
                    lambda: journal_count(journal, "messages") >= load.sent - load_rate / 2, 60
                )
                # a new connection: the API closes one left idle while the load warmed up
                again = ApiClient(port)
                loaded, loaded_journal = _measure(link, again, journal, devices[reps:], now)
                sent = load.sent
            finally:
                load.stop()
            behind = load.sent - journal_count(journal, "messages") + 2 * reps
        finally:
            link.close()
            if api is not None:
                stop_process(api)  # type: ignore[arg-type]
            stop_process(worker)
            broker.stop()
    res.add_latency(
        "publish → ticket visible in API",
        to_ticket,
        "publish → message in journal",
        to_journal,
        1.0,
    )
    res.add_latency(
        "under ingest load, publish → ticket visible in API",
        loaded,
        "under ingest load, publish → message in journal",
        loaded_journal,
        1.0,
    )
    res.params = {
        "repetitions": reps,
        "to_ticket_s": to_ticket,
        "to_journal_s": to_journal,
        "loaded_to_ticket_s": loaded,
        "loaded_to_journal_s": loaded_journal,
        "load_messages_per_s": load_rate,
        "load_messages_sent": sent,
    }
    res.notes.append(
        f"{reps} overcurrent events, one new device each, idle and then again while "
        f"{load_rate:,.0f} telemetry messages/s of 60 readings ({load_rate * 60:,.0f} readings/s, "
        f"{len(traffic.births):,} units) flow to the same worker ({sent:,} sent; "
        f"{max(0, behind):,} not yet journaled when the load stopped); polled every "
        f"{POLL_S * 1000:g} ms."
    )
    return res
