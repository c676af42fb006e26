"""The batch tests over the units' statistics, in the ingest: after the detectors judged a
micro-batch, a round of the pooled shift test (:class:`~cloud.anomaly.pooled.PooledShift`: a
batch's units drifting from their own baselines) and of the peer level test
(:class:`~cloud.anomaly.peers.PeerLevels`: a batch's units short of their model's other batches
from the start) when one is due in event time.

The round's event time is the newest reading the detectors have judged among the devices of the
micro-batch (what the worker keeps in ``Ingestor.processed``): readings stamped at times that
cannot be true never reach the detectors (``cloud/anomaly/clock.py``), so one wrong clock cannot
run the rounds ahead. Each round takes every tracked unit's recent shifts over each of the test's
spans (``DetectorBank.shifts(span)``; 24 h by default) from the detector bank and its model and
batch from the registry (units with no birth yet are left out: without a batch there is nothing
to compare), and hands each :class:`~cloud.anomaly.pooled.BatchFinding` to the sink (the worker:
ticketing). The peer level test's round takes the units' learned baselines
(``DetectorBank.learned``), moves the baselines of the units it names short up to their model's
other batches (``DetectorBank.move_baseline``: their own detectors then find the shortfall) and
hands its :class:`~cloud.anomaly.peers.PeerFinding` to the same sink.

What the tests learned (each batch's recent history, the batches standing out) is checkpointed
with the worker's detectors (:meth:`BatchPooling.snapshot`, in the worker's own journal: it
belongs to the worker's partitions), so a restarted worker's test keeps its reference history
instead of collecting it again over days; a state that cannot be read is dropped with a warning
and collected again.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pickle
from collections.abc import Callable, Iterable

from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.base import Finding
from cloud.anomaly.peers import PeerFinding, PeerLevels
from cloud.anomaly.pooled import BatchFinding, PooledShift
from cloud.ingest.registry import Registry
from cloud.store.journal import Journal

BatchFindingSink = Callable[[BatchFinding | PeerFinding], None]
#: the key of the test's state among the journal's checkpoints ("#" is in no device id: an MQTT
#: wildcard cannot be a topic level)
CHECKPOINT_KEY = "#pooled-batch-test"
_FORMAT = 2  # 1: the pooled shift test's state alone (read too: the peer test starts afresh)

log = logging.getLogger(__name__)


class BatchPooling:
    """Rounds of the batch tests over one worker's detector bank and registry."""

    def __init__(
        self,
        bank: DetectorBank,
        registry: Registry,
        sink: BatchFindingSink,
        pooled: PooledShift | None = None,
        peers: PeerLevels | None = None,
    ) -> None:
        self.bank = bank
        self.registry = registry
        self.sink = sink
        self.pooled = PooledShift() if pooled is None else pooled
        self.peers = PeerLevels() if peers is None else peers
        self.rounds = 0
        self.findings = 0
        self.moved = 0  # units' baselines the peer test moved up to their peers'
        self.ended_early = 0  # units whose learning it ended early (named while learning)

    def judged(self, devices: Iterable[str]) -> None:
        """The detectors judged the readings of ``devices``: run each test's round if due."""
        newest = max((self.bank.last_ts(d) for d in devices), default=-math.inf)
        if not math.isfinite(newest):
            return
        found: list[BatchFinding | PeerFinding] = []
        if self.pooled.due(newest):
            self.rounds += 1
            shifts = {span: self.bank.shifts(span) for span in self.pooled.spans}
            found += self.pooled.update(newest, shifts, self._batch_of)
        if self.peers.due(newest):
            # units named short while they learned end their learning: this round moves them
            for fault, device in self.peers.waiting():
                self.ended_early += self.bank.finish_learning(device, fault)
            learned = self.bank.learned(self.peers.provisional_windows)
            for f in self.peers.update(newest, learned, self._batch_of):
                for device, move in f.moves().items():  # judged as short from now on
                    self.moved += self.bank.move_baseline(device, f.fault, move)
                found.append(f)
            # units alone far short of their whole model: their own detectors find it
            for fault, device, move in self.peers.lone(learned, self._batch_of):
                self.moved += self.bank.move_baseline(device, fault, move)
        for f in found:
            self.findings += 1
            self.sink(f)

    def annotate(self, finding: Finding) -> Finding:
        """``finding`` with the peer test's move of its unit's baseline in its evidence
        (``peer_move``, in the monitored quantity's units), where it moved one: the unit's
        baseline then is its peers' level, not only its own history, and its ticket says so.
        Other findings are returned as they are."""
        move = self.peers.moved(finding.fault, finding.device)
        if move is None:
            return finding
        return dataclasses.replace(finding, evidence={**finding.evidence, "peer_move": move})

    def save(self, journal: Journal, now: float) -> None:
        """Checkpoint the test's state in ``journal`` (committed with the journal's next commit)."""
        journal.save_checkpoint(CHECKPOINT_KEY, self.snapshot(), now)

    def load(self, journal: Journal) -> bool:
        """Resume from the state :meth:`save` left in ``journal``; False if there is none or it
        cannot be read."""
        data = journal.checkpoint(CHECKPOINT_KEY)
        if data is None or not self.restore(data):
            return False
        log.info("batch tests: resumed their batches' history from the checkpoint")
        return True

    def snapshot(self) -> bytes:
        """The tests' learned state, for the worker's checkpoint."""
        state = (self.pooled.state(), self.peers.state())
        return pickle.dumps((_FORMAT, state), pickle.HIGHEST_PROTOCOL)

    def restore(self, data: bytes) -> bool:
        """Take back a :meth:`snapshot`; False (and a warning) when it cannot be read."""
        try:
            version, state = pickle.loads(data)  # noqa: S301 - the worker's own journal
            if version == 1:
                pooled, peers = state, None
            elif version == _FORMAT:
                pooled, peers = state
            else:
                raise ValueError(f"format {version}, this code reads 1 and {_FORMAT}")
            self.pooled.restore(pooled)
            if peers is not None:
                self.peers.restore(peers)
        except Exception as e:  # noqa: BLE001 - any unreadable state is relearned
            log.warning("batch tests: checkpoint not restored (%s); they relearn", e)
            return False
        return True

    def _batch_of(self, device: str) -> tuple[str, str] | None:
        if not self.registry.known(device):
            return None
        info = self.registry.get(device)
        return info.model, info.batch
