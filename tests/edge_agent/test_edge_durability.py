"""Acceptance: the edge agent never loses a reading (real Mosquitto, real processes).

* the broker goes away for a while and comes back (same port, same persistence): a persistent
  subscriber gets every seq, and every sampled reading, exactly once after de-duplication;
* the agent process is SIGKILLed mid-stream and restarted: nothing it had sampled is lost;
* a long outage fills the buffer: the oldest readings are dropped, counted, reported in the
  next birth and in the status file, and the agent keeps going;
* a sensor source that returns garbage or raises never stops the agent.

Device time is accelerated (samples every few milliseconds), so a few seconds of outage stand
for many minutes of a real unit's data. Synchronisation is by condition (``wait_for``), never by
sleeping for a fixed time, and nothing asserts on durations.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from contract import protocol
from contract.mqtt import BrokerAddress, InboundMessage, MqttLink
from contract.protocol import Birth, Event, Telemetry
from edge_agent.agent import EdgeAgent
from edge_agent.buffer import PRIORITY_TELEMETRY
from edge_agent.core import Identity, SafetyRule
from edge_agent.disk_buffer import DiskBuffer
from edge_agent.metrics import StatusFile, read_status
from qloop.broker import BrokerProcess, start_broker
from tests.helpers import wait_for

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[2]


class DurableCollector:
    """A persistent-session subscriber (clean_session=False): the broker queues for it while it
    is away, including across a broker restart with persistence."""

    def __init__(self, address: str, device: str, client_id: str) -> None:
        self.messages: list[InboundMessage] = []
        self._lock = threading.Lock()
        self.link = MqttLink(
            client_id,
            BrokerAddress.parse(address),
            clean_session=False,
            subscriptions=[f"qloop/v1/+/{device}/#"],
            on_message=self._add,
        )
        self.link.start()
        assert self.link.wait_connected(10), "collector could not connect"
        assert self.link.wait_subscribed(10), "collector could not subscribe"

    def _add(self, m: InboundMessage) -> None:
        with self._lock:
            self.messages.append(m)

    def decoded(self, kind: str) -> list:
        with self._lock:
            msgs = [m for m in self.messages if m.topic.endswith("/" + kind)]
        return [protocol.decode(m.topic, m.payload) for m in msgs]

    def by_seq(self) -> dict[int, Telemetry | Event]:
        """Telemetry and events, de-duplicated by seq (as the cloud does)."""
        out: dict[int, Telemetry | Event] = {}
        for m in self.decoded("telemetry") + self.decoded("event"):
            prev = out.setdefault(m.seq, m)
            assert prev == m, f"seq {m.seq} was used for two different messages"
        return out

    def rows(self) -> list[tuple]:
        msgs = self.by_seq().values()
        return [r for m in msgs if isinstance(m, Telemetry) for r in m.rows]

    def seqs_complete(self, upto: int) -> bool:
        return set(self.by_seq()) == set(range(upto))

    def close(self) -> None:
        self.link.close()


class CountingSource:
    """Values that identify each sample (``n``), a current that crosses 10 A now and then."""

    fields = ("current_a", "n")

    def __init__(self) -> None:
        self.n = 0

    def read(self, ts: float):
        self.n += 1
        return (11.0 if self.n % 400 == 0 else 4.0, float(self.n))


def restart(broker: BrokerProcess) -> BrokerProcess:
    broker.stop()  # SIGTERM: Mosquitto saves its persistence file
    return start_broker(broker.data_dir, port=broker.port)


def run_in_thread(agent: EdgeAgent) -> threading.Thread:
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    return t


OUTAGE_S = 60.0


def test_broker_outage_loses_nothing(mosquitto, tmp_path):
    dev = "ac-outage-1"
    col = DurableCollector(mosquitto.address, dev, "durable-outage")
    source = CountingSource()
    ident = Identity(dev, "KFR-35GW", "B1", "SN-1", "2.3.0", sample_period_s=0.002)
    agent = EdgeAgent(
        ident,
        source,
        DiskBuffer(tmp_path / "edge.db"),
        BrokerAddress.parse(mosquitto.address),
        block_rows=20,
        block_max_age_s=0.1,
    )
    thread = run_in_thread(agent)
    broker = mosquitto
    try:
        wait_for(lambda: len(col.decoded("telemetry")) >= 5, what="telemetry before the outage")
        broker.stop()
        down_at = time.monotonic()
        wait_for(lambda: not agent.link.connected, what="the agent noticing the outage")
        # the outage: the broker stays down for 60 s while the agent samples at 500 Hz
        wait_for(
            lambda: time.monotonic() - down_at >= OUTAGE_S and len(agent.buffer) >= 60,
            timeout=OUTAGE_S + 60,
            what=f"{OUTAGE_S:.0f} s of outage with a backlog",
        )
        broker = start_broker(mosquitto.data_dir, port=mosquitto.port)
        wait_for(
            lambda: agent.link.connected and len(agent.buffer) < 10,
            timeout=40,
            what="the backlog to drain after the broker came back",
        )
    finally:
        agent.stop()
        thread.join(20)
    assert not thread.is_alive()
    last = agent.buffer.last_seq(dev)
    wait_for(lambda: col.seqs_complete(last + 1), what="every seq at the subscriber")
    rows = col.rows()
    ns = sorted(r[2] for r in rows)
    assert ns == [float(n) for n in range(1, source.n + 1)], "every sample exactly once"
    assert len(col.decoded("birth")) >= 2, "a birth on each connect"
    assert any(isinstance(m, Event) for m in col.by_seq().values())
    col.close()
    if broker is not mosquitto:
        broker.kill()


def write_config(tmp_path: Path, address: str, dev: str, **buffer: object) -> Path:
    cfg = tmp_path / "edge.toml"
    extra = "".join(f"{k} = {v!r}\n" for k, v in buffer.items())
    cfg.write_text(f"""
[device]
id = "{dev}"
model = "KFR-35GW"
batch = "B1"
serial = "SN-9"
firmware = "2.3.0"

[broker]
address = "{address}"

[sampling]
period_s = 0.005
block_rows = 100
block_max_age_s = 5.0

[buffer]
path = "{tmp_path / "edge.db"}"
{extra}
[metrics]
status_file = "{tmp_path / "status.json"}"
interval_s = 0.2

[source]
kind = "simulated"
seed = 3
""")
    return cfg


def start_agent(cfg: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLOOP_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "qloop", "edge", "run", "--config", str(cfg)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )


def snapshot(db_path: Path) -> tuple[list[tuple], set[int]]:
    """What the killed agent left on disk: staged rows and buffered messages' seqs."""
    with sqlite3.connect(db_path) as db:
        staged = [tuple(json.loads(r[0])) for r in db.execute("SELECT row FROM staged ORDER BY id")]
        seqs = {
            protocol.decode(t, bytes(p)).seq
            for t, p in db.execute("SELECT topic, payload FROM messages")
        }
    return staged, seqs


def staged_count(db_path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM staged").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_and_restart_loses_no_reading(mosquitto, tmp_path):
    dev = "ac-kill-1"
    col = DurableCollector(mosquitto.address, dev, "durable-kill")
    cfg = write_config(tmp_path, mosquitto.address, dev)
    log = tmp_path / "agent.log"
    proc = start_agent(cfg, log)
    try:
        wait_for(
            lambda: len(col.decoded("telemetry")) >= 3 and staged_count(tmp_path / "edge.db") >= 20,
            what="blocks out and an open block of 20+ readings",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        staged, buffered = snapshot(tmp_path / "edge.db")
        assert staged, "the open block was on disk when the agent died"
        proc = start_agent(cfg, log)
        staged_ts = {r[0] for r in staged}
        wait_for(
            lambda: staged_ts <= {r[0] for r in col.rows()},
            timeout=30,
            what="the readings of the block open at the kill",
        )
        wait_for(lambda: buffered <= set(col.by_seq()), what="the messages buffered at the kill")
        wait_for(lambda: len(col.decoded("birth")) >= 2, what="a birth from the restarted agent")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert proc.returncode == 0, log.read_text()[-3000:]
    with sqlite3.connect(tmp_path / "edge.db") as db:
        last = db.execute("SELECT seq FROM seqs WHERE device = ?", (dev,)).fetchone()[0]
    wait_for(lambda: col.seqs_complete(last + 1), what="every seq 0..last at the subscriber")
    msgs = col.by_seq()
    ts = [r[0] for s in sorted(msgs) if isinstance(msgs[s], Telemetry) for r in msgs[s].rows]
    assert ts == sorted(ts) and len(set(ts)) == len(ts), "each reading once, in time order"
    assert read_status(tmp_path / "status.json")["device"] == dev
    col.close()


def test_a_full_buffer_drops_the_oldest_counts_and_reports_it(mosquitto, tmp_path):
    dev = "ac-full-1"
    col = DurableCollector(mosquitto.address, dev, "durable-full")
    source = CountingSource()
    ident = Identity(dev, "KFR-35GW", "B1", "SN-1", "2.3.0", sample_period_s=0.002)
    buf = DiskBuffer(tmp_path / "edge.db", max_messages=30, max_bytes=None)
    status = tmp_path / "status.json"
    agent = EdgeAgent(
        ident,
        source,
        buf,
        BrokerAddress.parse(mosquitto.address),
        block_rows=10,
        block_max_age_s=0.1,
        rules=[],
        status_file=StatusFile(status),
        status_interval_s=0.05,
    )
    thread = run_in_thread(agent)
    broker = mosquitto
    try:
        wait_for(lambda: col.decoded("telemetry"), what="telemetry before the outage")
        broker.stop()
        wait_for(lambda: not agent.link.connected, what="the agent noticing the outage")
        n_lost = source.n  # readings after this were sampled with the link down
        wait_for(lambda: buf.stats().dropped_readings >= 300, what="the cap to drop readings")
        wait_for(
            lambda: read_status(status)["dropped_readings"] >= 300,
            what="the drops in the status file",
        )
        broker = start_broker(mosquitto.data_dir, port=mosquitto.port)
        wait_for(
            lambda: any(b.extra.get("dropped_readings", 0) >= 300 for b in col.decoded("birth")),
            what="a birth reporting the drops",
        )
        n_after = source.n
        wait_for(
            lambda: any(r[2] > n_after for r in col.rows()),
            what="fresh readings: the agent kept going",
        )
    finally:
        agent.stop()
        thread.join(20)
    assert not thread.is_alive()
    # What the stopped agent still holds (unacknowledged blocks, its open block's rows) goes at
    # its next start: not lost. What it had sent may still be on its way to the collector.
    held = {int(r[2]) for r in buf.staged_rows(dev)} | {
        int(r[2])
        for e in buf.pending(PRIORITY_TELEMETRY, 0, 10**6)
        for r in protocol.decode(e.topic, e.payload).rows
    }
    dropped = buf.stats().dropped_readings

    def unaccounted() -> list[int]:
        got = {int(r[2]) for r in col.rows()}
        return sorted(set(range(1, source.n + 1)) - got - held)

    # Every missing reading was counted. The count may exceed the loss by the blocks that were
    # in flight when the link died: dropped from the buffer, but resent by paho after the
    # reconnect (at most one window of blocks).
    wait_for(lambda: dropped >= len(unaccounted()), what="the collector to get all it was sent")
    missing = unaccounted()
    got = sorted(int(r[2]) for r in col.rows())
    assert 0 <= dropped - len(missing) <= 10 * agent.publisher.window
    assert len(missing) >= 300
    # the oldest went first: what arrived from the outage is newer than everything missing
    assert all(n > max(missing) for n in got if n > n_lost)
    births = [b for b in col.decoded("birth") if isinstance(b, Birth)]
    assert births[-1].extra["dropped_readings"] <= dropped
    col.close()
    if broker is not mosquitto:
        broker.kill()


class BadSource:
    """Every way a sensor driver can misbehave."""

    fields = ("current_a", "return_c", "noise_db")

    def __init__(self) -> None:
        self.n = 0

    def read(self, ts: float):
        self.n += 1
        k = self.n % 9
        if k == 0:
            raise OSError("i2c bus timeout")
        if k == 1:
            return (math.nan, None, "n/a")
        if k == 2:
            return (math.inf, 10**400, b"\xff")
        if k == 3:
            return (1.0, 2.0)  # too few values
        if k == 4:
            return 42  # not a sequence at all
        if k == 5:
            return (x for x in (1.0, 2.0, 1 / 0))  # fails while being read
        if k == 6:
            return ({"a": 1}, [1.0], object())
        return (4.0, 25.0, 40.0)


def test_a_misbehaving_source_never_stops_the_agent(mosquitto, tmp_path):
    dev = "ac-bad-1"
    col = DurableCollector(mosquitto.address, dev, "durable-bad")
    source = BadSource()
    ident = Identity(dev, "KFR-35GW", "B1", "SN-1", "2.3.0", sample_period_s=0.002)
    agent = EdgeAgent(
        ident,
        source,
        DiskBuffer(tmp_path / "edge.db"),
        BrokerAddress.parse(mosquitto.address),
        block_rows=30,
        block_max_age_s=0.1,
        rules=[SafetyRule("overcurrent", "current_a", 10.0)],
    )
    thread = run_in_thread(agent)
    try:
        wait_for(lambda: source.n >= 300 and len(col.rows()) >= 250, what="samples flowing")
    finally:
        agent.stop()
        thread.join(20)
    assert not thread.is_alive()
    rows = col.rows()
    assert all(len(r) == 4 and r[0] is not None for r in rows)
    assert any(r[1:] == (None, None, None) for r in rows), "a failed read goes out as nulls"
    assert any(r[1:] == (4.0, 25.0, 40.0) for r in rows)
    assert agent.source_errors >= 4 * (source.n // 9) - 4
    assert agent.core.bad_values > 0
    assert not col.decoded("event"), "inf and huge values are not readings: no false alarm"
    col.close()
