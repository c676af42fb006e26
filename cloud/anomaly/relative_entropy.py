"""Relative entropy with multiple hypotheses (Wang et al., 2011), as a streaming detector.

C. Wang et al., "Statistical techniques for online anomaly detection in data centers",
IFIP/IEEE IM 2011, Figure 1; NAB lists it at 54.6 on its full corpus (standard profile), with
the settings kept here (5 levels, a 52-value window, chi-squared test at 0.99).

Each finite value is quantised into ``n_bins`` equal levels and the histogram ``P_hat`` of the
last ``window`` levels is tested against every hypothesis (histogram) seen so far: the
statistic ``2 * window * KL(P_hat || P)`` is compared with the chi-squared quantile of
``1 - alpha`` with ``n_bins - 1`` degrees of freedom. If no hypothesis is accepted the window
becomes a new hypothesis and the value scores 1.0; if the accepted (closest) hypothesis has
been seen no more than ``rare`` times, it also scores 1.0; otherwise 0.0.

Streaming difference from NAB's copy: NAB quantises between the whole file's minimum and
maximum, which a live stream does not know. Here the levels span the first ``warmup`` values
and a value outside that range counts in the lowest or highest level. A flat warm-up (zero
range) gets levels of a tiny width around its value, so any later change is out of range.

NaN, infinities and ``None`` score 0.0 and are not learned.

>>> det = RelativeEntropy()
>>> scores = [det.score_one(float(t), 10.0 + (t % 48) * 0.1) for t in range(800)]
>>> max(scores[200:])
0.0
>>> max(det.score_one(800.0 + t, 30.0) for t in range(60))
1.0
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from scipy.stats import chi2

from cloud.anomaly.generic import finite


class RelativeEntropy:
    """Multiple-hypothesis relative-entropy test over quantised windows; see the module docstring.

    Parameters
    ----------
    window
        Number of values per histogram (``W`` in the paper).
    n_bins
        Number of quantisation levels.
    alpha
        Probability of wrongly rejecting a true hypothesis (the test's size).
    rare
        A hypothesis accepted no more than this many times still counts as anomalous.
    warmup
        Values whose range sets the quantisation levels; nothing is reported before.
    threshold
        Alarm threshold (the score is 0 or 1; advertised to callers).
    """

    def __init__(
        self,
        window: int = 52,
        n_bins: int = 5,
        alpha: float = 0.01,
        rare: int = 1,
        warmup: int = 150,
        threshold: float = 0.5,
    ) -> None:
        if window < 2 or n_bins < 2 or not 0.0 < alpha < 1.0 or warmup < 2:
            raise ValueError("window >= 2, n_bins >= 2, 0 < alpha < 1 and warmup >= 2 required")
        self.window = window
        self.n_bins = n_bins
        self.alpha = alpha
        self.rare = rare
        self.warmup = warmup
        self.threshold = threshold
        self._reset()

    def _reset(self) -> None:
        self._limit = float(chi2.isf(self.alpha, self.n_bins - 1))
        self._first: list[float] = []  # warm-up values, until the levels are fixed
        self._lo = self._step = 0.0
        self._levels: deque[int] = deque(maxlen=self.window)
        self._hypotheses: list[np.ndarray] = []
        self._counts: list[int] = []

    def score_one(self, ts: float, value: float | None) -> float:
        """Learn ``value`` (observed at ``ts``) and return its anomaly score, 0.0 or 1.0."""
        x = finite(value)
        if x is None:
            return 0.0
        if len(self._first) < self.warmup:
            self._first.append(x)
            if len(self._first) == self.warmup:
                lo, hi = min(self._first), max(self._first)
                self._lo = lo
                self._step = max((hi - lo) / self.n_bins, 1e-9 * max(1.0, abs(lo)))
            return 0.0
        with np.errstate(all="ignore"):
            pos = (x - self._lo) / self._step
        level = int(min(max(pos, 0.0), self.n_bins - 1)) if math.isfinite(pos) else 0
        self._levels.append(level)
        if len(self._levels) < self.window:
            return 0.0
        p_hat = np.bincount(np.fromiter(self._levels, int), minlength=self.n_bins) / self.window
        best, best_stat = -1, math.inf
        for i, p in enumerate(self._hypotheses):
            stat = 2.0 * self.window * _kl(p_hat, p)
            if stat < self._limit and stat < best_stat:
                best, best_stat = i, stat
        if best < 0:
            self._hypotheses.append(p_hat)
            self._counts.append(1)
            return 1.0 if len(self._hypotheses) > 1 else 0.0
        self._counts[best] += 1
        return 1.0 if self._counts[best] <= self.rare else 0.0


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """Kullback-Leibler divergence KL(p || q) in nats; infinite where q lacks p's support."""
    mask = p > 0
    if np.any(q[mask] == 0):
        return math.inf
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
