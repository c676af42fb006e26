"""How fast the edge agent drains a backlog after an outage, and what live data waits meanwhile.

Fills a disk buffer with an outage's worth of telemetry (default 300,000 readings of 10 fields
in blocks of 60 rows), starts Mosquitto and a real :class:`EdgeAgent` on that buffer that keeps
sampling live at 20 Hz (with an overcurrent event twice a second), and reports

* the backlog's drain rate in readings per second (from the agent's start until the last
  backlog message is acknowledged), and
* the largest delay of a live block and of a safety event during the drain (arrival at a
  subscriber minus the time of its newest row / the event).

Not a test: nothing is asserted. Usage: ``.venv/bin/python benchmarks/edge_drain.py
[--readings N] [--window W] [--synchronous NORMAL|FULL]``.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from edge_agent.agent import EdgeAgent
from edge_agent.buffer import PRIORITY_TELEMETRY
from edge_agent.core import DeviceCore, Identity
from edge_agent.disk_buffer import DiskBuffer
from edge_agent.publisher import Publisher
from qloop import protocol
from qloop.broker import start_broker
from qloop.mqtt import BrokerAddress, InboundMessage, MqttLink
from qloop.protocol import AIR_CONDITIONER_FIELDS, Event, Telemetry

FIELDS = AIR_CONDITIONER_FIELDS[1:]
DEV = "ac-bench-1"


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=300_000)
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--synchronous", default="NORMAL")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qloop-drain-"))
    broker = start_broker(tmp / "broker")
    ident = Identity(DEV, "KFR-35GW", "B1", "SN-1", "2.3.0", sample_period_s=0.05)
    buffer = DiskBuffer(tmp / "edge.db", synchronous=args.synchronous, max_bytes=None)
    t_fill = time.perf_counter()
    backlog_seq = fill(buffer, ident, args.readings, time.time() - args.readings)
    backlog_last_id = buffer.last_id()
    print(
        f"backlog: {args.readings} readings in {len(buffer)} messages "
        f"({buffer.stats().stored_bytes / 1e6:.1f} MB), filled in "
        f"{time.perf_counter() - t_fill:.1f} s"
    )

    live_delay: list[float] = []
    event_delay: list[float] = []
    lock = threading.Lock()

    def on_message(m: InboundMessage) -> None:
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
        subscriptions=[f"qloop/v1/+/{DEV}/#"],
        on_message=on_message,
    )
    sub.start()
    sub.wait_connected(10)
    agent = EdgeAgent(
        ident,
        LiveSource(),
        buffer,
        BrokerAddress.parse(broker.address),
        block_rows=20,
        block_max_age_s=0.5,
        window=args.window,
    )
    thread = threading.Thread(target=agent.run)
    start = time.perf_counter()
    thread.start()
    during_drain = 0
    while buffer.pending(PRIORITY_TELEMETRY, 0, 1, before_id=backlog_last_id + 1):
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    with lock:
        during_drain = len(live_delay)
        drain_live = max(live_delay, default=float("nan"))
        drain_events = max(event_delay, default=float("nan"))
        n_events = len(event_delay)
    agent.stop()
    thread.join()
    sub.close()
    broker.stop()
    print(
        f"drain: {args.readings} readings in {elapsed:.2f} s = "
        f"{args.readings / elapsed:,.0f} readings/s (window {args.window}, "
        f"synchronous={args.synchronous})"
    )
    print(
        f"live blocks delivered during the drain: {during_drain}, largest delay "
        f"{drain_live:.3f} s (a block waits up to block_max_age_s=0.5 s by design)"
    )
    print(f"safety events during the drain: {n_events}, largest delay {drain_events:.3f} s")


if __name__ == "__main__":
    main()
