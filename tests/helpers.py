"""Small test utilities: wait for a condition (never a fixed sleep), collect MQTT messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from contract.mqtt import BrokerAddress, InboundMessage, MqttLink


def wait_for(cond: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``cond`` until it is truthy; fail after ``timeout`` (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Collector:
    """A plain subscriber that keeps every message it receives."""

    def __init__(self, address: str, filters: list[str], client_id: str = "test-collector"):
        self.messages: list[InboundMessage] = []
        self._lock = threading.Lock()
        self.link = MqttLink(
            client_id, BrokerAddress.parse(address), subscriptions=filters, on_message=self._add
        )
        self.link.start()
        assert self.link.wait_connected(10), "collector could not connect"
        assert self.link.wait_subscribed(10), "collector could not subscribe"

    def _add(self, m: InboundMessage) -> None:
        with self._lock:
            self.messages.append(m)

    def on(self, suffix: str) -> list[InboundMessage]:
        with self._lock:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def close(self) -> None:
        self.link.close()


@contextmanager
def publishing(address: str) -> Iterator[MqttLink]:
    """A plain MQTT publisher; on leaving, waits until the broker acknowledged what it sent."""
    link = MqttLink("test-publisher", BrokerAddress.parse(address))
    link.start()
    assert link.wait_connected(10)
    try:
        yield link
    finally:
        wait_for(lambda: link.pending_acks() == 0, what="broker acknowledgements")
        link.close()
