"""The shipped broker configuration (deploy/mosquitto/) on a real Mosquitto: who may connect,
who may publish what, who may read the fleet; and qloop's worker, simulator and edge agent
logging in to it.

"Nothing arrived" is never waited out. Mosquitto hands one client's messages to one subscriber
in the order it received them, and writes a client's deliveries and acknowledgements to its
connection in order. So a forgery is followed by a message the sender may publish: once that
has reached the worker, the forgery would have reached it first. And a device that must read
nothing publishes after the fleet's message reached the worker: once the broker acknowledged
that, a delivery to the device would have come before the acknowledgement.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from contract import protocol
from contract.mqtt import BrokerAddress, BrokerRefused, InboundMessage, MqttLink
from contract.protocol import Birth, Event, Status, Telemetry
from edge_agent.config import build_agent
from simulators.source import EDGE_SOURCES
from tests.deploy.conftest import edge_config
from tests.helpers import wait_for

pytestmark = pytest.mark.broker


class Subscriber:
    """A client that keeps every message it is sent."""

    def __init__(self, client_id: str, broker: BrokerAddress, filters: list[str]) -> None:
        self.messages: list[InboundMessage] = []
        self._lock = threading.Lock()
        self.link = MqttLink(client_id, broker, subscriptions=filters, on_message=self._add)
        self.link.start()
        assert self.link.wait_connected(30) and self.link.wait_subscribed(30)

    def _add(self, m: InboundMessage) -> None:
        with self._lock:
            self.messages.append(m)

    def received(self) -> list[InboundMessage]:
        with self._lock:
            return list(self.messages)

    def topics(self) -> list[str]:
        return [m.topic for m in self.received()]

    def close(self) -> None:
        self.link.close()


def _connected(client_id: str, broker: BrokerAddress) -> MqttLink:
    link = MqttLink(client_id, broker)
    link.start()
    assert link.wait_connected(30), f"{client_id} could not connect"
    return link


def _publish_acknowledged(link: MqttLink, msg: protocol.Message, retain: bool = False) -> None:
    acked = threading.Event()
    link.publish(
        protocol.topic(msg.device, _kind(msg)),
        protocol.encode(msg),
        retain=retain,
        on_ack=acked.set,
    )
    assert acked.wait(30), "the broker did not acknowledge"


def _kind(msg: protocol.Message) -> str:
    return {Birth: "birth", Telemetry: "telemetry", Event: "event", Status: "status"}[type(msg)]


def _telemetry(device: str, seq: int) -> Telemetry:
    return Telemetry(device, seq, ("ts", "current_a"), ((1_716_000_000.0 + seq, 4.2),))


def _refused(link: MqttLink) -> BrokerRefused:
    link.start()
    try:
        with pytest.raises(BrokerRefused) as refused:
            link.wait_connected(30)
    finally:
        link.close()
    return refused.value


def test_anonymous_clients_and_wrong_passwords_are_refused(secure_broker):
    anonymous = BrokerAddress(
        "127.0.0.1", secure_broker.password_port, tls_ca=secure_broker.login("qloop-worker").tls_ca
    )
    assert "Not authorized" in str(_refused(MqttLink("anonymous", anonymous)))
    wrong = secure_broker.login("qloop-worker", "not-the-password")
    assert "qloop-worker" in str(_refused(MqttLink("guess", wrong)))
    b_with_a = secure_broker.login("ac-b", secure_broker.password("ac-a"))
    _refused(MqttLink("ac-b-impostor", b_with_a))


def test_the_certificate_listener_refuses_a_client_without_a_certificate(secure_broker):
    no_cert = secure_broker.login("qloop-worker")  # a valid password is not a certificate
    no_cert = BrokerAddress(
        "127.0.0.1",
        secure_broker.cert_port,
        no_cert.username,
        no_cert.password,
        tls_ca=no_cert.tls_ca,
    )
    dropped, accepted = threading.Event(), threading.Event()
    link = MqttLink("no-cert", no_cert, on_connect=accepted.set, on_disconnect=dropped.set)
    link.start()
    try:
        assert dropped.wait(30), "the TLS listener should drop a client without a certificate"
    finally:
        link.close()
    assert not accepted.is_set()


@pytest.mark.parametrize("how", ["certificate", "password"])
def test_a_device_cannot_publish_as_another(secure_broker, how):
    worker = Subscriber("qloop-worker-test", secure_broker.login("qloop-worker"), ["qloop/v1/#"])
    device_a = secure_broker.device("ac-a") if how == "certificate" else secure_broker.login("ac-a")
    a = _connected("qloop-edge-ac-a", device_a)
    try:
        forged_birth = Birth(
            "ac-b",
            "air_conditioner",
            "KFR-35GW",
            "EVIL-BATCH",
            "SN-B",
            "2.3.0",
            10.0,
            1_716_000_000.0,
        )
        _publish_acknowledged(a, forged_birth, retain=True)
        _publish_acknowledged(a, _telemetry("ac-b", 5))
        _publish_acknowledged(a, Event("ac-b", 6, 1_716_000_000.0, "overcurrent", 30.0, 10.0))
        _publish_acknowledged(a, Status("ac-b", False), retain=True)
        _publish_acknowledged(a, _telemetry("ac-a", 0))  # what A may publish, after the forgeries
        own = protocol.topic("ac-a", "telemetry")
        wait_for(lambda: own in worker.topics(), what="device A's own telemetry at the worker")
        assert worker.topics() == [own], "only A's own message reaches the worker"
    finally:
        a.close()
        worker.close()
    late = Subscriber("qloop-worker-late", secure_broker.login("qloop-worker"), ["qloop/v1/#"])
    b = _connected("qloop-edge-ac-b", secure_broker.device("ac-b"))
    _publish_acknowledged(b, _telemetry("ac-b", 0))
    wait_for(lambda: late.topics(), what="device B's telemetry at a new subscriber")
    assert late.topics() == [protocol.topic("ac-b", "telemetry")], "no forged retained birth"
    b.close()
    late.close()


def test_only_workers_read_the_fleet(secure_broker):
    worker = Subscriber("qloop-worker-test", secure_broker.login("qloop-worker"), ["qloop/v1/#"])
    snoop = Subscriber("qloop-edge-ac-a", secure_broker.device("ac-a"), ["qloop/v1/#"])
    b = _connected("qloop-edge-ac-b", secure_broker.device("ac-b"))
    try:
        _publish_acknowledged(b, _telemetry("ac-b", 0))
        wait_for(lambda: worker.topics(), what="device B's telemetry at the worker")
        _publish_acknowledged(snoop.link, _telemetry("ac-a", 0))  # see the module's docstring
        assert snoop.topics() == []
    finally:
        for client in (b, snoop, worker):
            client.close()


def test_an_edge_agent_connects_with_its_certificate(secure_broker, tmp_path):
    device = secure_broker.device("ac-a")
    worker = Subscriber("qloop-worker-test", secure_broker.login("qloop-worker"), ["qloop/v1/#"])
    config = edge_config("ac-a", device)
    agent = build_agent(config, EDGE_SOURCES)
    runner = threading.Thread(target=agent.run)
    runner.start()
    try:
        telemetry = protocol.topic("ac-a", "telemetry")
        wait_for(lambda: telemetry in worker.topics(), what="the agent's telemetry")
    finally:
        agent.stop()
        runner.join(30)
        worker.close()
    assert protocol.topic("ac-a", "birth") in worker.topics()


def _qloop(*args: str, env: dict[str, str], **kw) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qloop", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_the_worker_logs_in_and_becomes_ready(secure_broker, tmp_path):
    ready = tmp_path / "ready"
    worker = _qloop(
        "cloud",
        "run",
        "--db",
        f"sqlite:///{tmp_path / 't.db'}",
        "--journal",
        str(tmp_path / "j.db"),
        "--ready-file",
        str(ready),
        env=secure_broker.env("qloop-worker"),
    )
    try:
        wait_for(lambda: ready.exists() or worker.poll() is not None, 60, "the worker's ready file")
        assert ready.exists(), worker.communicate()[1]
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "refused" not in err and "Traceback" not in err


def test_the_simulator_publishes_with_its_credentials(secure_broker, tmp_path):
    worker = Subscriber("qloop-worker-test", secure_broker.login("qloop-worker"), ["qloop/v1/#"])
    sim = _qloop("simulate", "smoke", env=secure_broker.env("qloop-sim"))
    try:
        _, err = sim.communicate(timeout=300)
    finally:
        sim.kill()
    assert sim.returncode == 0, err

    def units_heard() -> set[str]:
        return {protocol.parse_topic(t).device for t in worker.topics() if t.endswith("/telemetry")}

    def units_offline() -> set[str]:
        offline = [m.topic for m in worker.received() if m.payload == b"offline"]
        return {protocol.parse_topic(t).device for t in offline}

    wait_for(lambda: len(units_heard()) == 6, what="telemetry from each of the six units")
    wait_for(lambda: len(units_offline()) == 6, what="each unit's offline at the clean stop")
    worker.close()


def test_an_absent_worker_finds_its_backlog_whole(secure_broker):
    """Mosquitto's default queue (1000 messages) would drop most of this backlog."""
    backlog = 5000
    login = secure_broker.login("qloop-worker")
    received: list[InboundMessage] = []
    away = MqttLink("qloop-cloud-test", login, clean_session=False, subscriptions=["qloop/v1/#"])
    away.start()
    assert away.wait_connected(30) and away.wait_subscribed(30)
    away.close()  # the session and its queue stay on the broker
    device = _connected("qloop-edge-ac-a", secure_broker.device("ac-a"))
    acked = threading.Semaphore(0)
    for seq in range(backlog):
        msg = _telemetry("ac-a", seq)
        device.publish(
            protocol.topic("ac-a", "telemetry"), protocol.encode(msg), on_ack=acked.release
        )
    for _ in range(backlog):
        assert acked.acquire(timeout=60), "the broker did not acknowledge the backlog"
    device.close()
    back = MqttLink("qloop-cloud-test", login, clean_session=False, on_message=received.append)
    back.start()
    try:
        wait_for(lambda: len(received) >= backlog, 120, "the whole backlog")
    finally:
        back.close()
    seqs = sorted(protocol.decode(m.topic, m.payload).seq for m in received)
    assert seqs == list(range(backlog))
