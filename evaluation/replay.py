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
``batch_size``, each batch followed by :meth:`Ingestor.check_offline` and one journal commit.
Rows a unit takes while offline are not sent (the simulator has no readings for them): the unit
takes no sample, and its open block waits for it to come back, as on a device.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from cloud.anomaly.bank import DetectorBank, DetectorFactory
from cloud.anomaly.offline import OfflineWatch
from cloud.ingest.ingestor import Ingestor
from cloud.store.journal import Journal
from cloud.worker import WorkerSettings
from contract import protocol
from contract.mqtt import InboundMessage
from contract.protocol import Birth, Message, Status
from evaluation.scoring import FleetRun
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
    block_rows: int = 60,
    offline: OfflineWatch | None = None,
) -> FleetRun:
    """One fleet of ``scenario`` (its own seed) through the edge and the ingest; the raw findings
    and the ingest's counters."""
    fleet = Fleet(scenario)
    edge = FleetEdge(fleet, scenario.sample_period_s, block_rows=block_rows)
    run = FleetRun(scenario.seed, devices=[u.device for u in fleet.units])
    period = scenario.sample_period_s
    n_steps = int(math.floor(scenario.duration_s / period + 1e-9))
    with tempfile.TemporaryDirectory(prefix="qloop-eval-") as tmp:
        journal = Journal(Path(tmp) / "journal.db")
        try:
            ingestor = Ingestor(
                journal,
                DetectorBank(detectors),
                lambda f, _info: run.findings.append(f),
                offline=offline,
                clock=lambda: fleet.ts,  # received at the fleet's event time: no wall clock
            )
            pending: list[Message] = []
            for core in edge.cores:
                pending += (core.birth(fleet.ts), Status(core.identity.device, True))
            _deliver(ingestor, pending)
            for i in range(1, n_steps + 1):
                edge.sample(scenario.start_ts + i * period, lambda _unit, m: pending.append(m))
                if i == n_steps:
                    edge.flush(lambda _unit, m: pending.append(m))
                elif i % block_rows:
                    continue
                _deliver(ingestor, pending)
            run.late_blocks = ingestor.detectors.late_blocks
            run.ingest = ingestor.stats
        finally:
            journal.close()
    run.truth = list(fleet.ground_truth)
    return run


def _deliver(ingestor: Ingestor, messages: list[Message]) -> None:
    """``messages`` into the ingest as the worker takes them from its queue; then empties it."""
    for k in range(0, len(messages), BATCH_SIZE):
        for msg in messages[k : k + BATCH_SIZE]:
            ingestor.handle(inbound(msg))
        ingestor.check_offline()
        ingestor.processed.clear()
        ingestor.journal.commit()
    messages.clear()
