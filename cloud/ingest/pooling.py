"""The pooled batch test's place in the ingest: after the detectors judged a micro-batch, a round
of :class:`~cloud.anomaly.pooled.PooledShift` when one is due in event time.

The round's event time is the newest reading the detectors have judged among the devices of the
micro-batch (what the worker keeps in ``Ingestor.processed``): readings stamped at times that
cannot be true never reach the detectors (``cloud/anomaly/clock.py``), so one wrong clock cannot
run the rounds ahead. Each round takes every tracked unit's recent shifts over each of the test's
spans (``DetectorBank.shifts(span)``; 24 h by default) from the detector bank and its model and
batch from the registry (units with no birth yet are left out: without a batch there is nothing
to compare), and hands each :class:`~cloud.anomaly.pooled.BatchFinding` to the sink (the worker:
ticketing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.pooled import BatchFinding, PooledShift
from cloud.ingest.registry import Registry

BatchFindingSink = Callable[[BatchFinding], None]


class BatchPooling:
    """Rounds of the pooled batch test over one worker's detector bank and registry."""

    def __init__(
        self,
        bank: DetectorBank,
        registry: Registry,
        sink: BatchFindingSink,
        pooled: PooledShift | None = None,
    ) -> None:
        self.bank = bank
        self.registry = registry
        self.sink = sink
        self.pooled = PooledShift() if pooled is None else pooled
        self.rounds = 0
        self.findings = 0

    def judged(self, devices: Iterable[str]) -> None:
        """The detectors judged the readings of ``devices``: run a round if one is due."""
        newest = max((self.bank.last_ts(d) for d in devices), default=-math.inf)
        if not math.isfinite(newest) or not self.pooled.due(newest):
            return
        self.rounds += 1
        shifts = {span: self.bank.shifts(span) for span in self.pooled.spans}
        for f in self.pooled.update(newest, shifts, self._batch_of):
            self.findings += 1
            self.sink(f)

    def _batch_of(self, device: str) -> tuple[str, str] | None:
        if not self.registry.known(device):
            return None
        info = self.registry.get(device)
        return info.model, info.batch
