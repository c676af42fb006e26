"""``anomaly``: the generic streaming detector over numeric fields no domain detector knows.

A product class the cloud has no domain detectors for (a heat pump, a fridge), or a field an
air conditioner's new firmware adds, still gets watched: one
:class:`~cloud.anomaly.generic.StreamingAnomalyDetector` per field, fed value by value in event
time. Values are first averaged over bins of ``aggregate_s`` of event time (10 minutes): the
generic detector's history of ``window`` values (2,000) then spans about two weeks whatever the
device's sample period, so a daily cycle is familiar rather than novel every afternoon (fed raw
60 s samples, its history would cover 33 hours). ``window``, ``warmup`` and ``threshold`` are
the generic detector's own defaults (``generic.py``), the settings chosen by cross-validation on
NAB's development split, so the detector that runs is the one whose score is reported.
The price is that a single-sample spike is diluted by the bin's other samples: this detector is
for sustained changes of level or shape, not glitches. A score at or above ``threshold`` is a
finding named ``anomaly`` whose evidence names the field (the key ``field:<name>`` holds the bin
mean that alarmed), with the field's slow running mean before it as the baseline. The generic
detector's own rest period keeps one change from becoming a stream of findings.

Fields in ``exclude`` (those the product's domain detectors cover, where the generic detector
would only add false findings) and fields past ``max_fields`` are not watched: per-field state is
a few kB (``window`` floats plus the context table), so it is spent only where nothing else
looks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from cloud.anomaly.base import Block, Finding
from cloud.anomaly.compact import Compact
from cloud.anomaly.generic import (
    DEFAULT_THRESHOLD,
    DEFAULT_WARMUP,
    DEFAULT_WINDOW,
    StreamingAnomalyDetector,
)

_NOTHING: Mapping = MappingProxyType({})


class UnivariateAnomaly(Compact):
    """Per-field generic anomaly detection for one device.

    >>> import numpy as np
    >>> d = UnivariateAnomaly(aggregate_s=60.0, window=300, warmup=100)
    >>> ts = np.arange(0.0, 600 * 60.0, 10.0)
    >>> humidity = 50.0 + 0.5 * np.sin(ts / 600.0)
    >>> humidity[ts >= 500 * 60.0] += 20.0
    >>> [(f.onset_ts / 60, round(f.evidence["field:humidity_pct"])) for f in
    ...  d.update(Block("d", ts, {"humidity_pct": humidity}))][:1]
    [(500.0, 70)]
    """

    fault = "anomaly"

    __slots__ = (
        "exclude",
        "max_fields",
        "aggregate_s",
        "threshold",
        "window",
        "warmup",
        "smoothing",
        "_detectors",
        "_bins",
        "_mean",
    )
    _config = frozenset(__slots__[:7])  # the constructor arguments

    def __init__(
        self,
        *,
        exclude: frozenset[str] = frozenset(),
        max_fields: int = 8,
        aggregate_s: float = 600.0,
        threshold: float = DEFAULT_THRESHOLD,
        window: int = DEFAULT_WINDOW,
        warmup: int = DEFAULT_WARMUP,
        smoothing: float = 0.02,
    ) -> None:
        self.exclude = exclude
        self.max_fields = max_fields
        self.aggregate_s = aggregate_s
        self.threshold = threshold
        self.window = window
        self.warmup = warmup
        self.smoothing = smoothing
        self._reset()

    def _reset(self) -> None:
        # one shared read-only empty mapping for all three until a field is watched: a unit
        # whose fields the domain detectors all cover (every air conditioner) keeps no dicts
        self._detectors: dict[str, StreamingAnomalyDetector] = _NOTHING  # type: ignore[assignment]
        self._bins: dict[str, list[float]] = _NOTHING  # type: ignore[assignment]
        self._mean: dict[str, float] = _NOTHING  # type: ignore[assignment]

    def __getstate__(self) -> tuple:
        tag, values, extra = super().__getstate__()
        return tag, tuple({} if v is _NOTHING else v for v in values), extra

    def __setstate__(self, state: object) -> None:
        super().__setstate__(state)
        if not self._detectors:
            self._reset()

    def watched(self) -> tuple[str, ...]:
        return tuple(self._detectors)

    def _detector(self, name: str) -> StreamingAnomalyDetector | None:
        det = self._detectors.get(name)
        if det is None and name not in self.exclude and len(self._detectors) < self.max_fields:
            if self._detectors is _NOTHING:
                self._detectors, self._bins, self._mean = {}, {}, {}
            det = self._detectors[name] = StreamingAnomalyDetector(
                window=self.window, warmup=self.warmup, threshold=self.threshold
            )
            self._bins[name] = [-math.inf, 0.0, 0.0]
        return det

    def update(self, block: Block) -> list[Finding]:
        out: list[Finding] = []
        if self._detectors is _NOTHING and self.exclude.issuperset(block.columns):
            return out  # nothing watched and nothing to watch: one set test per block
        dets = [(n, v, self._detector(n)) for n, v in block.columns.items()]
        watched = [(n, v, d) for n, v, d in dets if d is not None]
        if not watched:  # an air conditioner's own fields: nothing to do
            return out
        ok_ts = np.isfinite(block.ts)
        starts = np.floor(block.ts / self.aggregate_s) * self.aggregate_s
        order = np.argsort(starts, kind="stable")  # event time, whatever the block's order
        for name, values, det in watched:
            acc = self._bins[name]
            for i in order:
                x = float(values[i])
                if not (ok_ts[i] and math.isfinite(x)) or starts[i] < acc[0]:
                    continue  # no value, or too late for its bin
                if starts[i] > acc[0]:
                    if acc[2]:
                        f = self._score(block.device, name, det, acc[0], acc[1] / acc[2])
                        if f is not None:
                            out.append(f)
                    acc[:] = [float(starts[i]), 0.0, 0.0]
                acc[1] += x
                acc[2] += 1.0
        out.sort(key=lambda f: f.ts)
        return out

    def _score(
        self, device: str, name: str, det: StreamingAnomalyDetector, start: float, x: float
    ) -> Finding | None:
        score = det.score_one(start, x)
        base = self._mean.get(name, x)
        self._mean[name] = base + self.smoothing * (x - base)
        if score < self.threshold:
            return None
        evidence = {
            f"field:{name}": x,
            "baseline": base,
            "current": x,
            "change": x - base,
            "score": score,
        }
        return Finding(device, self.fault, start + self.aggregate_s, start, score, evidence)
