"""Store and forward: every message goes through the buffer, and leaves it only on PUBACK.

:meth:`Publisher.submit` writes a message to the buffer; :meth:`Publisher.pump` publishes what
is pending while fewer than ``window`` messages await their acknowledgement. Acknowledgements
arrive on the MQTT thread and are only queued there; ``pump`` (on the agent's own thread, which
owns the buffer) applies them in one step (one transaction on disk).

Drain policy, in the order ``pump`` fills the window:

1. **Safety events**, oldest first, always before any telemetry.
2. **Live telemetry**: blocks appended since the current connection came up, oldest first.
3. **Backlog**: everything that was in the buffer when the connection came up (an outage, or a
   previous run of the agent), oldest first, in whatever room the window has left.

So after an outage the backlog drains at the link's full speed (``window`` messages in flight,
each a block of up to ``block_rows`` readings) while a new block or event waits for at most one
acknowledgement before it goes out: live data is never queued behind hours of backlog. The
cloud does not mind the order; it keys messages by (device, seq).

Each buffered message is published once per process: while the connection is down, paho keeps
the un-acknowledged ones and resends them after reconnecting. After a restart everything still
in the buffer is published again; the cloud removes the duplicates by (device, seq).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable

from contract import protocol
from contract.mqtt import MqttLink
from contract.protocol import Event, Message, Telemetry
from edge_agent.buffer import PRIORITY_EVENT, PRIORITY_TELEMETRY, Buffer, Entry


class Publisher:
    def __init__(self, link: MqttLink, buffer: Buffer, *, window: int = 100) -> None:
        self.link = link
        self.buffer = buffer
        self.window = max(1, window)
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._acked = threading.Event()
        self._inflight: set[int] = set()
        self._event_cursor = 0
        self._live_cursor = 0  # telemetry ids above this are live
        self._backlog: deque[list[int]] = deque()  # [cursor, end] id ranges, oldest first
        self._was_connected = False
        self.published = 0
        self.acknowledged = 0

    def submit(self, msg: Message, now: float = 0.0) -> int:
        """Buffer a telemetry block or event (durably, if the buffer is on disk).

        A telemetry block clears its device's staged rows in the same step: they are in it.
        """
        if isinstance(msg, Telemetry):
            priority, readings, closes = PRIORITY_TELEMETRY, len(msg.rows), True
        elif isinstance(msg, Event):
            priority, readings, closes = PRIORITY_EVENT, 0, False
        else:
            raise TypeError(
                "only telemetry and events are buffered; birth and status are published on connect"
            )
        return self.buffer.append(
            protocol.topic(msg.device, protocol.kind_of(msg)),
            protocol.encode(msg),
            priority=priority,
            readings=readings,
            device=msg.device,
            seq=msg.seq,
            now=now,
            clear_staged=closes,
        )

    def publish_now(self, msg: Message) -> None:
        """Publish a retained birth or status directly (they are re-sent on every connect)."""
        self.link.publish(
            protocol.topic(msg.device, protocol.kind_of(msg)),
            protocol.encode(msg),
            retain=protocol.RETAINED[protocol.kind_of(msg)],
        )

    def _ack(self, entry_id: int) -> None:  # MQTT thread: hand over only
        self._acks.put(entry_id)
        self._acked.set()

    def _apply_acks(self) -> None:
        done = []
        while True:
            try:
                done.append(self._acks.get_nowait())
            except queue.Empty:
                break
        if done:
            self.buffer.ack(done)
            self._inflight.difference_update(done)
            self.acknowledged += len(done)

    def _rebase(self) -> None:
        """At a (re)connect: telemetry not yet published becomes backlog."""
        last = self.buffer.last_id()
        if last > self._live_cursor:
            self._backlog.append([self._live_cursor, last])
            self._live_cursor = last

    @property
    def backlog(self) -> bool:
        """Whether backlog from before the current connection is still being published."""
        return bool(self._backlog)

    def pump(self) -> int:
        """Apply acknowledgements and publish pending messages up to the window; returns how
        many were published."""
        self._acked.clear()
        self._apply_acks()
        if not self.link.connected:
            self._was_connected = False
            return 0
        if not self._was_connected:
            self._was_connected = True
            self._rebase()
        sent = 0

        def room() -> int:
            return self.window - len(self._inflight)

        if room() > 0:
            events = self.buffer.pending(PRIORITY_EVENT, self._event_cursor, room())
            if events:
                self._event_cursor = events[-1].id
            sent += self._send(events)
        if room() > 0:
            live = self.buffer.pending(PRIORITY_TELEMETRY, self._live_cursor, room())
            if live:
                self._live_cursor = live[-1].id
            sent += self._send(live)
        while room() > 0 and self._backlog:
            segment = self._backlog[0]
            want = room()
            old = self.buffer.pending(
                PRIORITY_TELEMETRY, segment[0], want, before_id=segment[1] + 1
            )
            if old:
                segment[0] = old[-1].id
            if len(old) < want:
                self._backlog.popleft()
            sent += self._send(old)
        self.published += sent
        return sent

    def _send(self, entries: list[Entry]) -> int:
        for entry in entries:
            self._inflight.add(entry.id)
            self.link.publish(
                entry.topic, entry.payload, qos=1, on_ack=lambda i=entry.id: self._ack(i)
            )
        return len(entries)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def wait_ack(self, timeout: float) -> bool:
        """Block until an acknowledgement arrives (or ``timeout``); for flow control."""
        return self._acked.wait(timeout)

    def drain(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> bool:
        """Publish until the buffer is empty and everything is acknowledged, or ``timeout``."""
        deadline = clock() + timeout
        while True:
            self.pump()
            if len(self.buffer) == 0 and not self._inflight:
                return True
            left = deadline - clock()
            if left <= 0:
                return False
            self.wait_ack(min(left, 0.2))
