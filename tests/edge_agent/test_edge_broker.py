"""The edge agent against a real Mosquitto: birth, status, will, telemetry at QoS 1."""

from __future__ import annotations

import threading

import pytest

from contract import protocol
from contract.mqtt import BrokerAddress
from edge_agent.agent import EdgeAgent
from edge_agent.buffer import MemoryBuffer
from edge_agent.core import Identity
from tests.helpers import Collector, wait_for

pytestmark = pytest.mark.broker


class RampSource:
    fields = ("current_a", "noise_db")

    def __init__(self) -> None:
        self.n = 0

    def read(self, ts: float):
        self.n += 1
        if self.n % 7 == 0:
            raise OSError("sensor bus timeout")
        return (4.0 + (self.n % 50) * 0.2, "n/a" if self.n % 5 == 0 else 40.0)


def test_agent_publishes_contract_messages(mosquitto):
    ident = Identity("ac-test-1", "KFR-35GW", "B1", "SN-1", "2.3.0", sample_period_s=0.005)
    col = Collector(mosquitto.address, ["qloop/v1/+/ac-test-1/#"])
    agent = EdgeAgent(
        ident,
        RampSource(),
        MemoryBuffer(),
        BrokerAddress.parse(mosquitto.address),
        block_rows=20,
        block_max_age_s=0.2,
    )
    t = threading.Thread(target=agent.run)
    t.start()
    try:
        wait_for(lambda: len(col.on("/telemetry")) >= 10, what="ten telemetry blocks")
    finally:
        agent.stop()
        t.join(20)
    wait_for(
        lambda: [m.payload for m in col.on("/status")][-1:] == [b"offline"],
        what="offline status at a clean stop",
    )
    birth = protocol.decode(col.on("/birth")[0].topic, col.on("/birth")[0].payload)
    assert birth.batch == "B1" and birth.sample_period_s == 0.005
    assert col.on("/status")[0].payload == b"online"
    blocks = [protocol.decode(m.topic, m.payload) for m in col.on("/telemetry")]
    events = [protocol.decode(m.topic, m.payload) for m in col.on("/event")]
    seqs = sorted([b.seq for b in blocks] + [e.seq for e in events])
    assert seqs == list(range(len(seqs))), "seq is one counter, +1 per message, no gaps"
    assert all(e.kind == "overcurrent" for e in events) and events, "current ramps past 10 A"
    rows = [r for b in blocks for r in b.rows]
    assert any(r[2] is None for r in rows), "a string from the sensor goes out as null"
    assert any(r[1] is None and r[2] is None for r in rows), "a raising source gives nulls"
    assert agent.source_errors > 0
    col.close()


def test_will_marks_a_crashed_agent_offline(mosquitto):
    ident = Identity("ac-test-2", "KFR-35GW", "B1", "SN-2", "2.3.0", sample_period_s=0.05)
    col = Collector(mosquitto.address, ["qloop/v1/+/ac-test-2/status"])
    agent = EdgeAgent(ident, RampSource(), MemoryBuffer(), BrokerAddress.parse(mosquitto.address))
    agent.link.start()
    wait_for(lambda: col.on("/status"), what="online status")
    agent.link.abort()  # like a crash: no DISCONNECT, the broker sends the will
    wait_for(lambda: col.on("/status")[-1].payload == b"offline", what="the will")
    col.close()
