"""Receiving in a child process (``contract/mqtt_process.py``) against a real Mosquitto: messages
arrive, acknowledgements reach the broker (what was acknowledged is not redelivered to the next
session, what was not is), the connection's state is forwarded across a broker restart, the
child leaves with a killed parent, and a worker built with ``receiver="process"`` journals,
acknowledges and drains as with paho's thread."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cloud.worker import Worker
from cloud.worker_settings import WorkerSettings
from contract import protocol
from contract.mqtt import BrokerAddress, InboundMessage, MqttLink
from contract.mqtt_process import ProcessLink
from contract.protocol import Birth, Telemetry
from qloop.broker import mosquitto_config, start_mosquitto
from tests.helpers import publishing, wait_for

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]


class Inbox:
    """What a link hands over, kept in order."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self._lock = threading.Lock()

    def add(self, m: InboundMessage) -> None:
        with self._lock:
            self.messages.append(m)

    def topics(self) -> list[str]:
        with self._lock:
            return [m.topic for m in self.messages]


@contextmanager
def receiving(
    address: str, inbox: Inbox, client_id: str = "test-receiver"
) -> Iterator[ProcessLink]:
    link = ProcessLink(
        client_id,
        BrokerAddress.parse(address),
        clean_session=False,
        subscriptions=["t/#"],
        on_message=inbox.add,
        manual_ack=True,
        max_inflight=100,
    )
    link.start()
    try:
        assert link.wait_connected(30), "the receiver did not connect"
        assert link.wait_subscribed(30), "the receiver did not subscribe"
        yield link
    finally:
        link.close()


def test_messages_arrive_and_only_the_unacknowledged_come_again(mosquitto):
    first = Inbox()
    with receiving(mosquitto.address, first) as link, publishing(mosquitto.address) as pub:
        for i in range(40):
            pub.publish(f"t/{i}", f"m{i}".encode(), qos=1)
        wait_for(lambda: len(first.messages) == 40, what="40 messages through the child")
        assert first.topics() == [f"t/{i}" for i in range(40)]  # in order
        assert [m.payload for m in first.messages[:2]] == [b"m0", b"m1"]
        assert all(m.qos == 1 for m in first.messages)
        link.ack_many(m for m in first.messages if int(m.topic[2:]) % 2 == 0)
    # the same session again: the broker resends exactly what was not acknowledged, then what
    # is new (the marker, published after it reconnected)
    again = Inbox()
    with receiving(mosquitto.address, again), publishing(mosquitto.address) as pub:
        pub.publish("t/marker", b"after", qos=1)
        wait_for(lambda: "t/marker" in again.topics(), what="the marker")
        redelivered = [t for t in again.topics() if t != "t/marker"]
    assert sorted(redelivered) == sorted(f"t/{i}" for i in range(1, 40, 2))


class Gated(Inbox):
    """A consumer that takes nothing until its gate opens, then acknowledges what it takes."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.link: ProcessLink | None = None

    def add(self, m: InboundMessage) -> None:
        assert self.gate.wait(60), "the gate never opened"
        super().add(m)
        assert self.link is not None
        self.link.ack(m)  # from the link's reader thread, as a slow worker's acks come


def test_a_stalled_consumer_holds_the_stream_back_and_loses_nothing(mosquitto):
    """Backpressure: while the consumer takes (and acknowledges) nothing, the broker sends at
    most its in-flight window (1,000) and keeps the rest, the publisher is not held up and the
    child stays connected; once the consumer takes them, every message arrives, in order, and
    its acknowledgements reach the broker (a new session gets nothing again)."""
    n = 3000  # three in-flight windows
    consumer = Gated()
    with receiving(mosquitto.address, consumer) as link:
        consumer.link = link
        with publishing(mosquitto.address) as pub:
            for i in range(n):
                pub.publish(f"t/{i}", f"m{i}".encode(), qos=1)
            wait_for(lambda: pub.pending_acks() == 0, what="the broker took every message")
        assert consumer.messages == []  # nothing handed over past the stalled consumer
        assert link.connected  # and the child kept its connection meanwhile
        consumer.gate.set()
        wait_for(lambda: len(consumer.messages) == n, 60, f"{n} messages after the stall")
        assert consumer.topics() == [f"t/{i}" for i in range(n)]
    again = Inbox()
    with receiving(mosquitto.address, again), publishing(mosquitto.address) as pub:
        pub.publish("t/marker", b"after", qos=1)
        wait_for(lambda: "t/marker" in again.topics(), what="the marker")
    assert again.topics() == ["t/marker"]  # every acknowledgement reached the broker


def test_the_connection_state_follows_a_broker_restart(tmp_path):
    if not mosquitto_available():
        pytest.skip("Mosquitto is not installed")
    from qloop.broker import free_port

    port = free_port()

    def broker():
        return start_mosquitto(mosquitto_config(port, tmp_path / "b"), tmp_path / "b", [port])

    b = broker()
    inbox = Inbox()
    try:
        with receiving(f"127.0.0.1:{port}", inbox) as link:
            b.kill()
            wait_for(lambda: not link.connected, what="the child noticing the outage")
            b = broker()
            wait_for(lambda: link.connected, what="the child reconnecting")
            with publishing(f"127.0.0.1:{port}") as pub:  # subscriptions renewed
                pub.publish("t/after", b"x", qos=1)
                wait_for(lambda: "t/after" in inbox.topics(), what="a message after the restart")
    finally:
        b.kill()


def test_a_child_that_dies_is_started_again_and_its_unacknowledged_come_again(mosquitto):
    inbox = Inbox()
    with receiving(mosquitto.address, inbox) as link, publishing(mosquitto.address) as pub:
        pub.publish("t/before", b"x", qos=1)
        wait_for(lambda: "t/before" in inbox.topics(), what="a message through the first child")
        first = link.pid
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: link.pid != first and link.connected, what="a new child, connected")
        link.ack_many(inbox.messages)  # the first child's: not sent (the broker resends them)
        wait_for(lambda: inbox.topics().count("t/before") == 2, what="the redelivery")
        pub.publish("t/after", b"y", qos=1)
        wait_for(lambda: "t/after" in inbox.topics(), what="a message through the new child")
    assert _gone(first)


def mosquitto_available() -> bool:
    from qloop.broker import find_mosquitto

    return find_mosquitto() is not None


_PARENT = """
import sys, time
from contract.mqtt import BrokerAddress
from contract.mqtt_process import ProcessLink
if __name__ == "__main__":
    link = ProcessLink("test-orphan", BrokerAddress.parse(sys.argv[1]), subscriptions=["t/#"])
    link.start()
    assert link.wait_connected(30)
    print(link.pid, flush=True)
    time.sleep(600)
"""


def _parent(source: str, broker, tmp_path: Path) -> subprocess.Popen:
    """A Python process running ``source`` (it prints its receiver's pid) against ``broker``."""
    script = tmp_path / "parent.py"
    script.write_text(source)
    return subprocess.Popen(
        [sys.executable, str(script), broker.address],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line for line in f)  # a zombie
    except FileNotFoundError:
        return True


def test_a_parent_that_exits_without_closing_does_not_wait_for_its_child(mosquitto, tmp_path):
    parent = _parent(_PARENT.replace("time.sleep(600)", "sys.exit(0)"), mosquitto, tmp_path)
    try:
        child = int(parent.stdout.readline())
        assert parent.wait(60) == 0  # multiprocessing joins its children at exit
        wait_for(lambda: _gone(child), what="the receiver process exiting with its parent")
    finally:
        parent.kill()
        parent.wait()


def test_the_child_exits_when_its_parent_is_killed(mosquitto, tmp_path):
    parent = _parent(_PARENT, mosquitto, tmp_path)
    try:
        child = int(parent.stdout.readline())
        assert not _gone(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        wait_for(lambda: _gone(child), what="the receiver process exiting with its parent")
    finally:
        parent.kill()
        parent.wait()


def _journaled(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM messages").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def _telemetry(device: str, seq: int) -> tuple[str, bytes]:
    m = Telemetry(device, seq, ("ts", "x"), ((1.7e9 + seq * 60.0, 20.0),))
    return protocol.topic(device, "telemetry"), protocol.encode(m)


def test_a_worker_receiving_in_a_child_journals_acknowledges_and_drains(mosquitto, tmp_path):
    journal = tmp_path / "journal.db"
    settings = WorkerSettings(
        broker=BrokerAddress.parse(mosquitto.address),
        partitions=tuple(range(64)),
        db_url="",
        journal_path=str(journal),
        queue_size=50,  # small: the burst below waits in the child, the pipe and the broker
        client_id="test-process-worker",
        receiver="process",
    )
    worker = Worker(settings)
    assert isinstance(worker.link, ProcessLink)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:
        assert worker.link.wait_connected(30) and worker.link.wait_subscribed(30)
        wait_for(lambda: worker.readiness() is None, what="readiness")
        with publishing(mosquitto.address) as pub:
            b = Birth("d1", "thermometer", "M1", "B1", "SN-d1", "1.0", 60.0, 0.0)
            pub.publish(protocol.topic("d1", "birth"), protocol.encode(b), retain=True)
            for seq in range(1, 401):
                pub.publish(*_telemetry("d1", seq))
            # stop while the burst is still arriving: what was handed over is drained
            wait_for(lambda: _journaled(journal) >= 50, what="the first messages journaled")
            worker.stop()
        runner.join(60)
        assert not runner.is_alive(), "the worker did not stop"
    finally:
        worker.stop()
    drained = worker.snapshot()
    assert drained["acked"] == drained["messages"] > 0
    assert worker.readiness() == "stopping"
    journaled = _journaled(journal)
    # the same session again: the broker resends exactly what the worker did not acknowledge
    # (received after the drain began, or never received), then the marker
    again = Inbox()
    link = MqttLink(
        "test-process-worker",
        BrokerAddress.parse(mosquitto.address),
        clean_session=False,
        subscriptions=protocol.subscriptions(range(64)),
        on_message=again.add,
        manual_ack=True,
    )
    link.start()
    try:
        assert link.wait_connected(30)
        with publishing(mosquitto.address) as pub:
            pub.publish(*_telemetry("marker", 1))
            wait_for(lambda: any("/marker/" in t for t in again.topics()), what="the marker")
    finally:
        link.close()
    seqs = sorted(
        protocol.decode(m.topic, m.payload).seq
        for m in again.messages
        if "/d1/telemetry" in m.topic
    )
    assert seqs == list(range(journaled + 1, 401))  # acknowledged = journaled, in seq order
