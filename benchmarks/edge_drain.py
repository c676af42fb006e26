"""How fast the edge agent drains a backlog after an outage, and what live data waits meanwhile.

Fills a disk buffer with an outage's worth of telemetry (default 300,000 readings of 10 fields
in blocks of 60 rows), starts Mosquitto and a real :class:`EdgeAgent` on that buffer that keeps
sampling live at 20 Hz (with an overcurrent event twice a second), and reports

* the backlog's drain rate in readings per second (from the agent's start until the last
  backlog message is acknowledged), beside a bare windowed QoS 1 publisher
  (:func:`benchmarks.common.publish_in_processes`, same window) sending the same backlog
  messages to the same broker in the same run;
* the largest delay of a live block and of a safety event during the drain (arrival at a
  subscriber minus the time of its newest row / the event), beside the largest live-block delay
  once the backlog is gone (the same agent, the same run, nothing queued ahead of live data).

Usage: ``.venv/bin/python benchmarks/edge_drain.py [--readings N] [--window W]
[--synchronous NORMAL|FULL]``, or ``qloop bench --only edge_drain`` (:func:`bench_edge_drain`).
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Result, collect_publishers, publish_in_processes, wait_until
from contract import protocol
from contract.mqtt import BrokerAddress, InboundMessage, MqttLink
from contract.protocol import AIR_CONDITIONER_FIELDS, Event, Telemetry
from edge_agent.agent import EdgeAgent
from edge_agent.buffer import PRIORITY_TELEMETRY
from edge_agent.core import DeviceCore, Identity
from edge_agent.disk_buffer import DiskBuffer
from edge_agent.publisher import Publisher
from qloop.broker import start_broker

FIELDS = AIR_CONDITIONER_FIELDS[1:]
DEV = "ac-bench-1"
BARE_PREFIX = "bench/bare/"  # the bare publisher's copies of the backlog (not decoded)


class LiveSource:
    fields = FIELDS

    def __init__(self) -> None:
        self.n = 0

    def read(self, ts: float) -> list[float]:
        self.n += 1
        current = 12.0 if self.n % 10 == 0 else 4.2  # an overcurrent twice a second
        return [24.0, 25.1, 16.2, 31.0, 1.0, 2.0, current, 41.3, 0.03]


def fill(buffer: DiskBuffer, ident: Identity, readings: int, t0: float) -> int:
    """An outage's backlog, built by the real DeviceCore; returns the next seq."""
    core = DeviceCore(ident, ("ts", *FIELDS), block_rows=60, rules=())
    pub = Publisher(None, buffer)  # type: ignore[arg-type]  # submit() needs no link
    with buffer.transaction():
        for i in range(readings):
            ts = t0 + i
            row = (ts, 24.0, 25.1 + (i % 7) * 0.1, 16.2, 31.0, 1.0, 2.0, 4.2, 41.3, 0.03)
            for msg in core.sample(row, now=ts):
                pub.submit(msg, now=time.time())
        for msg in core.flush():
            pub.submit(msg, now=time.time())
    return core.next_seq


@dataclass(frozen=True)
class Drain:
    """What one drain measured; delays are NaN when nothing of that kind arrived."""

    readings: int
    messages: int
    stored_bytes: int
    fill_s: float
    drain_s: float
    bare_s: float  # the bare publisher: first publish to last acknowledgement
    live_blocks: int  # live blocks delivered during the drain
    live_delay_s: float
    events: int
    event_delay_s: float
    idle_blocks: int  # live blocks delivered after the drain, in the idle window
    idle_delay_s: float

    @property
    def rate(self) -> float:
        return self.readings / self.drain_s

    @property
    def bare_rate(self) -> float:
        return self.readings / self.bare_s


def drain(readings: int, window: int, synchronous: str, idle_s: float = 5.0) -> Drain:
    """Fill, publish the backlog bare, then drain it with a live agent; see the docstring."""
    tmp = Path(tempfile.mkdtemp(prefix="qloop-drain-"))
    broker = start_broker(tmp / "broker")
    sub: MqttLink | None = None
    try:
        ident = Identity(DEV, "KFR-35GW", "B1", "SN-1", "2.3.0", sample_period_s=0.05)
        buffer = DiskBuffer(tmp / "edge.db", synchronous=synchronous, max_bytes=None)
        t_fill = time.perf_counter()
        backlog_seq = fill(buffer, ident, readings, time.time() - readings)
        fill_s = time.perf_counter() - t_fill
        backlog_last_id = buffer.last_id()
        messages, stored = len(buffer), buffer.stats().stored_bytes

        live_delay: list[float] = []
        event_delay: list[float] = []
        lock = threading.Lock()

        def on_message(m: InboundMessage) -> None:
            if m.topic.startswith(BARE_PREFIX):
                return  # the baseline's copies: delivered to this subscriber too, not timed
            now = time.time()
            msg = protocol.decode(m.topic, m.payload)
            with lock:
                if isinstance(msg, Telemetry) and msg.seq >= backlog_seq:
                    live_delay.append(now - msg.rows[-1][0])
                elif isinstance(msg, Event):
                    event_delay.append(now - msg.ts)

        sub = MqttLink(
            "bench-sub",
            BrokerAddress.parse(broker.address),
            subscriptions=[f"qloop/v1/+/{DEV}/#", f"{BARE_PREFIX}#"],
            on_message=on_message,
        )
        sub.start()
        if not sub.wait_connected(10):
            raise RuntimeError("the subscriber could not connect")

        # the baseline first: the same backlog messages, sent bare with the same window
        backlog = buffer.pending(PRIORITY_TELEMETRY, 0, messages + 1, before_id=backlog_last_id + 1)
        items = [(BARE_PREFIX + e.topic, e.payload, False) for e in backlog]
        go, procs, out = publish_in_processes(broker.host, broker.port, [items], tmp, window)
        go.set()
        b0, b1 = collect_publishers(procs, out)

        agent = EdgeAgent(
            ident,
            LiveSource(),
            buffer,
            BrokerAddress.parse(broker.address),
            block_rows=20,
            block_max_age_s=0.5,
            window=window,
        )
        thread = threading.Thread(target=agent.run)
        start = time.perf_counter()
        thread.start()
        try:
            wait_until(
                lambda: not buffer.pending(PRIORITY_TELEMETRY, 0, 1, before_id=backlog_last_id + 1),
                timeout=3600,
                interval=0.01,
            )
            drain_s = time.perf_counter() - start
            with lock:
                during = list(live_delay)
                events = list(event_delay)
            # the idle baseline: live blocks with nothing queued ahead of them
            wait_until(lambda: len(live_delay) >= len(during) + 3, timeout=idle_s)
            with lock:
                after = live_delay[len(during) :]
        finally:
            agent.stop()
            thread.join()
        buffer.close()
        return Drain(
            readings,
            messages,
            stored,
            fill_s,
            drain_s,
            b1 - b0,
            len(during),
            max(during, default=math.nan),
            len(events),
            max(events, default=math.nan),
            len(after),
            max(after, default=math.nan),
        )
    finally:
        if sub is not None:
            sub.close()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def bench_edge_drain(quick: bool = False) -> Result:
    """Drain rate beside a bare publisher of the same messages; live delay beside idle."""
    readings, window, synchronous = (30_000, 100, "NORMAL") if quick else (300_000, 100, "NORMAL")
    d = drain(readings, window, synchronous, idle_s=5.0)
    res = Result("edge_drain")
    res.add(
        "backlog drain by the live agent (20 Hz sampling meanwhile)",
        d.rate,
        "readings/s",
        "bare windowed QoS 1 publisher of the same messages",
        d.bare_rate,
        target=">= 10,000 readings/s",
        met=d.rate >= 10_000,
    )
    if d.live_blocks and d.idle_blocks:
        res.add(
            "largest live-block delay during the drain",
            d.live_delay_s,
            "s",
            "largest live-block delay after the drain",
            d.idle_delay_s,
        )
    if d.events and d.idle_blocks:
        res.add(
            "largest safety-event delay during the drain",
            d.event_delay_s,
            "s",
            "largest live-block delay after the drain",
            d.idle_delay_s,
        )
    res.params = {"readings": readings, "window": window, "synchronous": synchronous}
    res.notes.append(
        f"{readings:,} readings in {d.messages:,} messages ({d.stored_bytes / 1e6:.1f} MB), window "
        f"{window}, synchronous={synchronous}; {d.live_blocks} live blocks and {d.events} events "
        f"arrived during the drain, {d.idle_blocks} live blocks after it (a block waits up to "
        "block_max_age_s=0.5 s by design). The agent's time includes its start and connect; the "
        "bare publisher's starts at its first publish."
    )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=300_000)
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--synchronous", default="NORMAL")
    args = ap.parse_args()
    d = drain(args.readings, args.window, args.synchronous)
    print(
        f"backlog: {d.readings} readings in {d.messages} messages "
        f"({d.stored_bytes / 1e6:.1f} MB), filled in {d.fill_s:.1f} s"
    )
    print(
        f"drain: {d.readings} readings in {d.drain_s:.2f} s = {d.rate:,.0f} readings/s "
        f"(window {args.window}, synchronous={args.synchronous}); bare publisher of the same "
        f"messages: {d.bare_rate:,.0f} readings/s"
    )
    print(
        f"live blocks delivered during the drain: {d.live_blocks}, largest delay "
        f"{d.live_delay_s:.3f} s (a block waits up to block_max_age_s=0.5 s by design); "
        f"after the drain: {d.idle_blocks}, largest delay {d.idle_delay_s:.3f} s"
    )
    print(f"safety events during the drain: {d.events}, largest delay {d.event_delay_s:.3f} s")


if __name__ == "__main__":
    main()
