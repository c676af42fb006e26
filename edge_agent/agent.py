"""The edge agent's run loop for one device: sample, buffer, publish, repeat.

Wiring only: the protocol logic is :class:`edge_agent.core.DeviceCore`, delivery is
:class:`edge_agent.publisher.Publisher`, and readings come from a :class:`SensorSource`
(implementations in :mod:`edge_agent.sources` and :mod:`simulators.source`). The agent announces
itself on every (re)connect with a retained birth and ``online`` status; its MQTT will is a
retained ``offline``.

Nothing sampled is lost to a crash: each sample is recorded in one buffer transaction together
with what it produced (events, a closed block) or, while its block is still open, as a staged
row. At start the agent resumes ``seq`` from the buffer and puts the staged rows back into its
open block.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from contract import protocol
from contract.clock import Clock, SystemClock
from contract.mqtt import BrokerAddress, MqttLink, Will
from contract.protocol import Message, Status
from edge_agent.buffer import Buffer
from edge_agent.core import DEFAULT_SAFETY_RULES, DeviceCore, Identity, SafetyRule
from edge_agent.metrics import StatusFile
from edge_agent.publisher import Publisher

log = logging.getLogger(__name__)


class SensorSource(Protocol):
    """Where readings come from: real sensors, a CSV replay, or a simulated unit."""

    fields: tuple[str, ...]  # without "ts"

    def read(self, ts: float) -> Sequence[object]:
        """One value per field at time ``ts``; may raise, or return NaN/None/garbage."""
        ...


class EdgeAgent:
    def __init__(
        self,
        identity: Identity,
        source: SensorSource,
        buffer: Buffer,
        broker: BrokerAddress,
        *,
        clock: Clock | None = None,
        block_rows: int = 60,
        block_max_age_s: float = 10.0,
        rules: Sequence[SafetyRule] = DEFAULT_SAFETY_RULES,
        window: int = 100,
        link_factory: Callable[..., MqttLink] = MqttLink,
        status_file: StatusFile | None = None,
        status_interval_s: float = 10.0,
    ) -> None:
        self.identity = identity
        self.source = source
        self.buffer = buffer
        self.clock = clock or SystemClock()
        last = buffer.last_seq(identity.device)
        self.core = DeviceCore(
            identity,
            ("ts", *source.fields),
            block_rows=block_rows,
            block_max_age_s=block_max_age_s,
            rules=rules,
            next_seq=0 if last is None else last + 1,
        )
        self._resume_staged()
        status_topic = protocol.topic(identity.device, "status")
        self.link = link_factory(
            f"qloop-edge-{identity.device}",
            broker,
            will=Will(status_topic, protocol.encode(Status(identity.device, False))),
            on_connect=self._announce,
            # Flow control is the publisher's window. paho's own in-flight limit must never
            # queue a message: after a reconnect paho stops resending at the first queued one
            # (paho 2.2 _handle_connack), and the older ones would wait for the next reconnect.
            max_inflight=0,
        )
        self.publisher = Publisher(self.link, buffer, window=window)
        self.source_errors = 0
        self.status_file = status_file
        self.status_interval_s = status_interval_s
        self._next_status = 0.0
        self._dropped_seen = buffer.stats().dropped_readings
        self._next_drop_log = 0.0
        self._stop = threading.Event()

    def _resume_staged(self) -> None:
        rows = self.buffer.staged_rows(self.identity.device)
        width = len(self.core.fields)
        good = [r for r in rows if len(r) == width and r[0] is not None]
        if len(good) != len(rows):  # the fields changed between runs: those rows cannot go out
            log.warning(
                "%d staged rows do not match the fields %s; dropped",
                len(rows) - len(good),
                self.core.fields,
            )
        self.core.resume(good, self.clock.monotonic())
        if good:
            log.info("resumed %d readings of the block open at the last stop", len(good))

    def _announce(self) -> None:
        """On every (re)connect, before anything else goes out: birth, then ``online``."""
        stats = self.buffer.stats()
        extra = {
            "dropped_readings": stats.dropped_readings,
            "dropped_messages": stats.dropped_messages,
            "source_errors": self.source_errors,
        }
        self.publisher.publish_now(self.core.birth(self.clock.time(), extra))
        self.publisher.publish_now(Status(self.identity.device, True))

    def _record(self, messages: Sequence[Message], now: float) -> None:
        for msg in messages:
            self.publisher.submit(msg, now=now)

    def sample_once(self) -> None:
        """Read the source once and record the sample, in one buffer transaction."""
        ts = self.clock.time()
        try:
            values = list(self.source.read(ts))
            if len(values) != len(self.source.fields):
                raise ValueError(
                    f"source gave {len(values)} values for {len(self.source.fields)} fields"
                )
        except Exception as e:  # a broken sensor must never stop the agent
            self.source_errors += 1
            log.warning("sensor source failed: %s", e)
            values = [None] * len(self.source.fields)
        with self.buffer.transaction():
            self._record(self.core.sample((ts, *values), now=self.clock.monotonic()), ts)
            if self.core.open_rows:  # not closed into a block yet: stage it
                self.buffer.stage_row(self.identity.device, self.core.open_rows[-1])

    def status(self) -> dict[str, object]:
        """The agent's counters (what the status file holds)."""
        stats = self.buffer.stats()
        return {
            "device": self.identity.device,
            "ts": self.clock.time(),
            "connected": self.link.connected,
            "next_seq": self.core.next_seq,
            "buffered_messages": stats.stored,
            "buffered_bytes": stats.stored_bytes,
            "dropped_messages": stats.dropped_messages,
            "dropped_readings": stats.dropped_readings,
            "published": self.publisher.published,
            "acknowledged": self.publisher.acknowledged,
            "source_errors": self.source_errors,
            "bad_values": self.core.bad_values,
        }

    def _report(self, force: bool = False) -> None:
        dropped = self.buffer.stats().dropped_readings
        now = self.clock.monotonic()
        if dropped > self._dropped_seen and (force or now >= self._next_drop_log):
            self._next_drop_log = now + 60.0  # one line a minute while the buffer overflows
            log.warning(
                "buffer full or too old: %d readings dropped (%d in all)",
                dropped - self._dropped_seen,
                dropped,
            )
            self._dropped_seen = dropped
        if self.status_file is not None and (force or now >= self._next_status):
            self._next_status = now + self.status_interval_s
            try:
                self.status_file.write(self.status())
            except OSError as e:
                log.warning("cannot write the status file: %s", e)

    def run(self, duration_s: float | None = None) -> None:
        """Sample every ``sample_period_s`` until :meth:`stop` (or ``duration_s``)."""
        self.link.start()
        period = self.identity.sample_period_s
        start = self.clock.monotonic()
        next_sample = start
        try:
            while not self._stop.is_set():
                now = self.clock.monotonic()
                if duration_s is not None and now - start >= duration_s:
                    break
                if now >= next_sample:
                    self.sample_once()
                    next_sample += period
                    if next_sample < now:  # fell behind (suspend, slow sensor): skip, don't burst
                        next_sample = now + period
                due = self.core.due(self.clock.monotonic())
                if due:
                    self._record(due, self.clock.time())
                self.publisher.pump()
                self._report()
                self.publisher.wait_ack(max(0.0, min(next_sample - self.clock.monotonic(), 0.5)))
        finally:
            self._record(self.core.flush(), self.clock.time())
            self.publisher.drain(timeout=5.0)
            if self.link.connected:  # a clean stop sends no will: say offline ourselves
                self.publisher.publish_now(Status(self.identity.device, False))
            self.link.close()
            self._report(force=True)

    def stop(self) -> None:
        self._stop.set()
