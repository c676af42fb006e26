"""A simulated fleet through the code production runs: the edge's cores into the cloud's ingest.

:func:`run_fleet` gives every unit of a :class:`~simulators.fleet.Fleet` its own edge core
(:class:`simulators.runner.FleetEdge`, the same per-unit message production ``qloop simulate``
publishes to a broker), so the safety rules, their hysteresis, ``seq`` numbering and blocking
are the edge's own. What the cores send is encoded as on the wire and handed to a real
:class:`~cloud.ingest.ingestor.Ingestor` as :class:`~contract.mqtt.InboundMessage` values —
decode, de-duplication, births, held telemetry, gap filling, the offline watch, the detector
bank and the event findings — over a real :class:`~cloud.store.journal.Journal` in a temporary
directory. The findings are whatever the Ingestor hands its finding sink. No MQTT and no broker:
the broker only carries the bytes.

Delivery follows the worker (``cloud/worker.py`` ``process_batch``): the units announce
themselves first (retained births and ``online`` status, as on connect); then every
``block_rows`` sample periods, when each online unit has completed a block, the messages of that
period are handled in the order the cores produced them, in batches of at most the worker's
``batch_size``, each batch followed by :meth:`Ingestor.check_offline`, a round of the pooled
batch test when one is due (``cloud/ingest/pooling.py``) and one journal commit.
Rows a unit takes while offline are not sent (the simulator has no readings for them): the unit
takes no sample, and its open block waits for it to come back, as on a device.

A scenario's ``[delivery]`` (``Scenario.delivery``) can spread the units over several
connections, each a fixed stretch of event time behind the one before (:class:`_Connections`),
and make the run a replay: the worker's clock then runs the fleet's duration and a day ahead of
its event time (``FleetRun.clock_offset_s``), so every reading arrives after the fact, as when a
backfill or a gateway's store is sent.

In the same run, beside qloop: the findings go on to a real ticket service as the worker hands
them on (:mod:`evaluation.tickets`), so the run also says which batch and device tickets qloop
opened and when; and every telemetry block that reaches the ingest also feeds the static-rule
baseline (:mod:`evaluation.static_rule`), one rule per unit and threshold, on the same readings.
"""

from __future__ import annotations

import math
import tempfile
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from cloud.anomaly.bank import DetectorBank, DetectorFactory
from cloud.anomaly.offline import OfflineWatch
from cloud.ingest.ingestor import Ingestor
from cloud.ingest.pooling import BatchPooling
from cloud.store.journal import Journal
from cloud.worker_settings import WorkerSettings
from contract import protocol
from contract.mqtt import InboundMessage
from contract.protocol import Birth, Message, Status, Telemetry
from evaluation.scoring import FleetRun
from evaluation.static_rule import THRESHOLD_C, DeltaTRule
from evaluation.tickets import EvalTickets
from simulators.fleet import Fleet
from simulators.runner import FleetEdge
from simulators.scenario import Scenario

# the most messages the worker ingests between two offline checks and journal commits (the
# dataclass field's default)
BATCH_SIZE: int = WorkerSettings.batch_size


def inbound(msg: Message) -> InboundMessage:
    """``msg`` as the cloud receives it from the broker (births and status are retained)."""
    return InboundMessage(
        protocol.topic(msg.device, protocol.kind_of(msg)),
        protocol.encode(msg),
        retain=isinstance(msg, Birth | Status),
        dup=False,
        qos=1,
    )


def run_fleet(
    scenario: Scenario,
    *,
    detectors: Mapping[str, Sequence[DetectorFactory]] | None = None,
    block_rows: int | None = None,
    offline: OfflineWatch | None = None,
    static_thresholds: Sequence[float] = (THRESHOLD_C,),
    tickets: bool = True,
) -> FleetRun:
    """One fleet of ``scenario`` (its own seed) through the edge and the ingest: the raw
    findings, the ingest's counters, the tickets qloop opened (unless ``tickets`` is False) and
    the static rule's unit alarms at each of ``static_thresholds``. ``block_rows``: readings per
    telemetry block when the scenario does not set its own (default 60)."""
    fleet = Fleet(scenario)
    block_rows = scenario.block_rows or block_rows or 60
    edge = FleetEdge(fleet, scenario.sample_period_s, block_rows=block_rows)
    run = FleetRun(scenario.seed, devices=[u.device for u in fleet.units])
    run.batch_of = {u.device: u.batch for u in fleet.units}
    rules = _StaticRules(static_thresholds)
    period = scenario.sample_period_s
    n_steps = int(math.floor(scenario.duration_s / period + 1e-9))
    with tempfile.TemporaryDirectory(prefix="qloop-eval-") as tmp:
        journal = Journal(Path(tmp) / "journal.db")
        desk = EvalTickets(Path(tmp), lambda: fleet.ts) if tickets else None
        try:
            bank = DetectorBank(detectors)

            def on_finding(f, _info) -> None:
                run.findings.append(f)
                if desk is not None:
                    desk.finding(f, bank)

            delivery = scenario.delivery
            # live: received at the fleet's event time; a replay: its duration and a day later
            run.clock_offset_s = scenario.duration_s + 86_400.0 if delivery.replay else 0.0
            ingestor = Ingestor(
                journal,
                bank,
                on_finding,
                on_birth=desk.birth if desk is not None else None,
                offline=offline,
                clock=lambda: fleet.ts + run.clock_offset_s,
            )
            pooling = None
            if desk is not None:
                pooling = BatchPooling(bank, ingestor.registry, desk.batch_finding)
            pending: list[Message] = []
            for core in edge.cores:
                pending += (core.birth(fleet.ts), Status(core.identity.device, True))
            _deliver(ingestor, pending, desk, rules, pooling)
            links = _Connections(delivery.connections, delivery.lag_s)
            for i in range(1, n_steps + 1):
                edge.sample(scenario.start_ts + i * period, lambda u, m: links.put(u, fleet.ts, m))
                if i == n_steps:
                    edge.flush(lambda u, m: links.put(u, fleet.ts, m))
                    pending += links.due(math.inf)
                elif i % block_rows:
                    continue
                else:
                    pending += links.due(fleet.ts)
                _deliver(ingestor, pending, desk, rules, pooling)
            run.late_blocks = ingestor.detectors.late_blocks
            run.ingest = ingestor.stats
            if desk is not None:
                run.tickets = desk.opened()
        finally:
            journal.close()
            if desk is not None:
                desk.close()
    run.truth = list(fleet.ground_truth)
    run.static_alarms = rules.alarms
    return run


class _Connections:
    """The units' messages over ``n`` connections: unit ``i`` on connection ``i % n``, and
    connection ``c`` delivers what its units sent up to ``c * lag_s`` before the present."""

    def __init__(self, n: int, lag_s: float) -> None:
        self.lag_s = lag_s
        self._queues: list[deque[tuple[float, Message]]] = [deque() for _ in range(n)]

    def put(self, unit: int, ts: float, msg: Message) -> None:
        self._queues[unit % len(self._queues)].append((ts, msg))

    def due(self, now: float) -> list[Message]:
        """What the connections deliver by event time ``now``, connection by connection."""
        out = []
        for c, queue in enumerate(self._queues):
            until = now - c * self.lag_s
            while queue and queue[0][0] <= until:
                out.append(queue.popleft()[1])
        return out


class _StaticRules:
    """The static-rule baseline for every unit at every threshold, fed the telemetry blocks
    the ingest is handed."""

    _FIELDS = ("ts", "compressor_on", "return_c", "supply_c")

    def __init__(self, thresholds: Sequence[float]) -> None:
        self.thresholds = tuple(thresholds)
        self.alarms: dict[float, list[tuple[float, str]]] = {t: [] for t in self.thresholds}
        self._rules: dict[str, tuple[DeltaTRule, ...]] = {}

    def feed(self, msg: Telemetry) -> None:
        rules = self._rules.get(msg.device)
        if rules is None:
            rules = self._rules[msg.device] = tuple(DeltaTRule(t) for t in self.thresholds)
        columns = list(zip(*msg.rows, strict=True))
        if not columns:
            return
        block = [columns[msg.fields.index(f)] for f in self._FIELDS]
        for rule in rules:
            for ts in rule.update(*block):
                self.alarms[rule.threshold_c].append((ts, msg.device))


def _deliver(
    ingestor: Ingestor,
    messages: list[Message],
    desk: EvalTickets | None = None,
    rules: _StaticRules | None = None,
    pooling: BatchPooling | None = None,
) -> None:
    """``messages`` into the ingest as the worker takes them from its queue — a micro-batch
    received, then judged at once (``Worker.process_batch``); then empties it."""
    for k in range(0, len(messages), BATCH_SIZE):
        for msg in messages[k : k + BATCH_SIZE]:
            ingestor.receive(inbound(msg))
            if rules is not None and isinstance(msg, Telemetry):
                rules.feed(msg)
        ingestor.judge()
        ingestor.check_offline()
        if desk is not None and ingestor.processed:
            desk.touch(ingestor.processed, ingestor.detectors)
        if pooling is not None:
            pooling.judged(ingestor.processed)
        ingestor.processed.clear()
        ingestor.journal.commit()
    messages.clear()
