"""Windowed Gaussian: NAB's simplest published baseline, as a streaming detector.

Each finite value ``x`` is compared with the mean ``m`` and standard deviation ``s`` of the
``window`` values before it; the score is ``1 - 2 Q(|x - m| / s)``, one minus the two-sided
Gaussian tail probability, so 0.999 means a value about 3.3 standard deviations away. There
is no averaging and no alarm suppression: every value that lies far out scores high.

NAB lists this method (a 1,000-value window) at 39.6 on its full corpus, standard profile. It
is kept as a reference point with a published record on data nobody tuned it on, not as a
product detector: it knows nothing of periodic shape and alarms on every row of a long
excursion, which NAB charges as false positives.

NaN, infinities and ``None`` score 0.0 and are not learned; nothing is reported before
``warmup`` values.

>>> det = WindowedGaussian(window=100, warmup=20)
>>> scores = [det.score_one(float(t), 10.0 + (t % 5) * 0.1) for t in range(200)]
>>> max(scores) < det.threshold
True
>>> det.score_one(200.0, 20.0) >= det.threshold
True
"""

from __future__ import annotations

import math

import numpy as np

from cloud.anomaly.generic import finite


class WindowedGaussian:
    """Gaussian tail score against the last ``window`` values; see the module docstring.

    Parameters
    ----------
    window
        Number of past values the mean and standard deviation are taken over.
    warmup
        Values to learn from before any non-zero score is reported.
    threshold
        Alarm threshold on the score (advertised to callers).
    """

    def __init__(self, window: int = 1000, warmup: int = 150, threshold: float = 0.999) -> None:
        if window < 2 or warmup < 2:
            raise ValueError("window >= 2 and warmup >= 2 are required")
        self.window = window
        self.warmup = warmup
        self.threshold = threshold
        self._reset()

    def _reset(self) -> None:
        self._values = np.zeros(self.window)
        self._n = 0  # finite values learned so far

    def score_one(self, ts: float, value: float | None) -> float:
        """Learn ``value`` (observed at ``ts``) and return its anomaly score in [0, 1]."""
        x = finite(value)
        if x is None:
            return 0.0
        hist = self._values[: min(self._n, self.window)]
        score = 0.0
        if self._n >= self.warmup:
            with np.errstate(all="ignore"):
                mean, std = float(hist.mean()), float(hist.std())
                z = abs(x - mean) / max(std, 1e-6)
            if math.isfinite(z):
                score = 1.0 - math.erfc(z / math.sqrt(2.0))
        self._values[self._n % self.window] = x
        self._n += 1
        return min(max(score, 0.0), 1.0)
