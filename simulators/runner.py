"""Drive a simulated fleet through the real edge agent code to a real MQTT broker.

Every simulated unit has its own :class:`edge_agent.core.DeviceCore` (its own topics, ``seq``,
blocks and safety rules, exactly as on a product); many units share one MQTT connection, so
10,000 units need a handful of sockets, not 10,000. Each connection has its own store-and-forward
:class:`edge_agent.publisher.Publisher`.

Wills on a shared connection: MQTT gives a connection one will, so a per-device ``offline``
will cannot be expressed. Shared connections set no will; on a clean stop the runner publishes
``offline`` for each of its units, and a crashed simulator shows in the cloud as silence, which
is what the ``device_offline`` detector watches anyway.

Time: simulated event time advances one ``sample_period_s`` per step, as fast as the broker takes
it (``speed`` 0) or at ``speed`` simulated seconds per wall second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from contract import protocol
from contract.clock import Clock, SystemClock
from contract.mqtt import BrokerAddress, BrokerError, MqttLink
from contract.protocol import Message, Status
from edge_agent.buffer import MemoryBuffer
from edge_agent.core import DEFAULT_SAFETY_RULES, DeviceCore, Identity, SafetyRule
from edge_agent.publisher import Publisher
from simulators.aircon import AIRCON_FIELDS
from simulators.fleet import Fleet
from simulators.models import MODELS
from simulators.scenario import Scenario

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Progress:
    step: int
    steps: int
    ts: float
    readings: int
    published: int
    acknowledged: int


class FleetEdge:
    """A fleet's units, each behind its own :class:`DeviceCore` as on a product: the fleet's
    readings in, the contract messages the units send out (a safety event at the sample that
    trips a rule, a telemetry block every ``block_rows`` samples). A unit that is offline takes
    no sample, so its open block waits for it to come back.

    Where the messages go is the caller's: an MQTT publisher per connection
    (:class:`FleetRunner`), or straight into the cloud's ingest (``qloop eval``). A unit's
    overcurrent rule trips at its model's protection limit (``ModelSpec.overcurrent_limit_a``).
    ``block_rows``: when the scenario does not set its units' own (default 60).
    """

    def __init__(
        self, fleet: Fleet, sample_period_s: float, *, block_rows: int | None = None
    ) -> None:
        self.fleet = fleet
        block_rows = fleet.scenario.block_rows or block_rows or 60
        self.cores = [
            DeviceCore(
                Identity(
                    u.device, u.model, u.batch, u.serial, u.firmware, u.product, sample_period_s
                ),
                AIRCON_FIELDS,
                block_rows=block_rows,
                block_max_age_s=float("inf"),
                rules=safety_rules(u.model),
            )
            for u in fleet.units
        ]

    def sample(self, ts: float, send: Callable[[int, Message], None]) -> int:
        """Step the fleet to ``ts`` and put every online unit's sample through its core; each
        message a core completes goes to ``send`` with the unit's index. Returns the number of
        units sampled.

        The hot loop of a 10,000-unit run: ``tolist()`` turns the whole step into Python floats
        in one C call, which is also what lets :meth:`DeviceCore.sample` take its clean-row fast
        path (NaN, an offline or failed sensor, still goes out as null through the slow path).
        """
        rows, online = self.fleet.step(ts)
        values = rows.tolist()
        cores = self.cores
        units = online.nonzero()[0].tolist()
        for i in units:
            for msg in cores[i].sample(values[i], now=ts):
                send(i, msg)
        return len(units)

    def flush(self, send: Callable[[int, Message], None]) -> None:
        """Every unit's open block, whatever its size (at the end of a run), to ``send``."""
        for i, core in enumerate(self.cores):
            for msg in core.flush():
                send(i, msg)


def safety_rules(model: str) -> tuple[SafetyRule, ...]:
    """The edge's safety rules of a unit of ``model``: the defaults, overcurrent at the model's
    own protection limit."""
    limit = MODELS[model].overcurrent_limit_a
    return tuple(
        replace(r, limit=limit) if r.kind == "overcurrent" else r for r in DEFAULT_SAFETY_RULES
    )


class _Link:
    """One shared connection: its units' cores and its publisher."""

    def __init__(
        self,
        name: str,
        broker: BrokerAddress,
        cores: list[DeviceCore],
        window: int,
        sim_now: Callable[[], float],
    ) -> None:
        self.cores = cores
        self.sim_now = sim_now  # the simulated units' clock: births carry event time
        # paho's own in-flight limit off: the Publisher's window is the limit, and paho 2.2 stops
        # resending at the first message held back by its limit after a reconnect
        self.link = MqttLink(name, broker, on_connect=self._announce, max_inflight=0)
        self.publisher = Publisher(self.link, MemoryBuffer(max_messages=10_000_000), window=window)

    def _announce(self) -> None:
        now = self.sim_now()
        for core in self.cores:
            self.publisher.publish_now(core.birth(now))
            self.publisher.publish_now(Status(core.identity.device, True))


class FleetRunner:
    def __init__(
        self,
        scenario: Scenario,
        broker: BrokerAddress,
        *,
        fleet: Fleet | None = None,
        devices_per_connection: int = 2500,
        block_rows: int | None = None,
        window: int = 1000,
        clock: Clock | None = None,
        client_prefix: str = "qloop-sim",
        on_progress: Callable[[Progress], None] | None = None,
        progress_every: int = 100,
    ) -> None:
        self.scenario = scenario
        self.fleet = fleet or Fleet(scenario)
        self.clock = clock or SystemClock()
        self.on_progress = on_progress
        self.progress_every = progress_every
        self.edge = FleetEdge(self.fleet, scenario.sample_period_s, block_rows=block_rows)
        self.cores = self.edge.cores
        self.sim_ts = scenario.start_ts  # the fleet's event time, advanced by run()
        self.links = [
            _Link(
                f"{client_prefix}-{i // devices_per_connection}",
                broker,
                self.cores[i : i + devices_per_connection],
                window,
                lambda: self.sim_ts,
            )
            for i in range(0, len(self.cores), devices_per_connection)
        ]
        self._publisher_of = [lk.publisher for lk in self.links for _ in lk.cores]
        self._stop = threading.Event()
        self.readings = 0
        self.high_water = window * 4

    def stop(self) -> None:
        self._stop.set()

    def _pending(self) -> int:
        return sum(len(lk.publisher.buffer) for lk in self.links)

    def _sample(self, ts: float) -> int:
        """Step the fleet to ``ts``; what the units' cores send goes into their publishers."""
        return self.edge.sample(ts, self._submit)

    def _submit(self, unit: int, msg: Message) -> None:
        self._publisher_of[unit].submit(msg, now=self.sim_ts)

    def _pump(self) -> None:
        for lk in self.links:
            lk.publisher.pump()

    def _progress(self, step: int, steps: int, ts: float) -> None:
        if self.on_progress is not None:
            self.on_progress(
                Progress(
                    step,
                    steps,
                    ts,
                    self.readings,
                    sum(lk.publisher.published for lk in self.links),
                    sum(lk.publisher.acknowledged for lk in self.links),
                )
            )

    def run(self, connect_timeout: float = 30.0) -> int:
        """Run the scenario to its end (or :meth:`stop`); returns the readings produced."""
        sc = self.scenario
        for lk in self.links:
            lk.link.start()
        try:
            for lk in self.links:
                if not lk.link.wait_connected(connect_timeout):  # a refusal raises at once
                    raise BrokerError(
                        f"no connection to the MQTT broker at {lk.link.broker.host}:"
                        f"{lk.link.broker.port} within {connect_timeout:g} s"
                    )
        except BrokerError:
            for lk in self.links:
                lk.link.close()
            raise
        steps = int(sc.duration_s // sc.sample_period_s)
        wall0 = self.clock.monotonic()
        try:
            for step in range(steps):
                if self._stop.is_set():
                    break
                ts = sc.start_ts + step * sc.sample_period_s
                self.sim_ts = ts
                self.readings += self._sample(ts)
                self._pump()
                while self._pending() > self.high_water and not self._stop.is_set():
                    self.links[0].publisher.wait_ack(0.05)
                    self._pump()
                if sc.speed > 0:
                    ahead = (ts - sc.start_ts) / sc.speed - (self.clock.monotonic() - wall0)
                    if ahead > 0:
                        self.clock.sleep(ahead)
                if step % self.progress_every == 0:
                    self._progress(step, steps, ts)
            self.edge.flush(lambda unit, msg: self._publisher_of[unit].submit(msg))
            self._drain()
            self._progress(steps, steps, sc.start_ts + steps * sc.sample_period_s)
        finally:
            self._say_offline()
            for lk in self.links:
                lk.link.close()
        return self.readings

    def _say_offline(self, timeout: float = 10.0) -> None:
        """A clean stop: each unit's retained ``offline``, acknowledged by the broker before the
        connections close (closing at once can lose some of them)."""
        acked = threading.Semaphore(0)
        sent = 0
        for lk in self.links:
            if lk.link.connected:
                for core in lk.cores:
                    status = Status(core.identity.device, False)
                    lk.link.publish(
                        protocol.topic(status.device, "status"),
                        protocol.encode(status),
                        retain=True,
                        on_ack=acked.release,
                    )
                    sent += 1
        deadline = self.clock.monotonic() + timeout
        for _ in range(sent):
            if not acked.acquire(timeout=max(0.0, deadline - self.clock.monotonic())):
                log.warning("the broker did not acknowledge every unit's offline status")
                return

    def _drain(self, timeout: float = 60.0) -> None:
        deadline = self.clock.monotonic() + timeout
        for lk in self.links:
            lk.publisher.drain(max(0.0, deadline - self.clock.monotonic()))
