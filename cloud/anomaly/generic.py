"""Generic univariate streaming anomaly detector for numeric fields no domain detector knows.

:class:`StreamingAnomalyDetector` scores one value at a time and returns a number in [0, 1];
a score at or above :data:`DEFAULT_THRESHOLD` is an alarm. It is built for the case the
Numenta Anomaly Benchmark (NAB) rewards: raise the score once, early, when the behaviour of
the stream changes, and stay quiet otherwise.

Algorithm (per finite value ``x``; NaN/inf/None score 0.0 and are not learned):

1. *Raw evidence*, each in [0, 1], computed against a ring buffer of the last ``window`` values:

   - **level** -- robust deviation of a short recent mean (``short`` values, ``x`` included)
     from the history median, in units of the history's robust scale (MAD, with an IQR / range
     floor): ``z / (z + 3)``. Catches spikes, steps and drifts.
   - **novelty** -- a contextual (CAD-OSE-like) measure. ``x`` is discretised into ``n_bins``
     equal-width levels between the history's 1st and 99th percentiles (one extra level on
     each side for out-of-range values), on two grids shifted by half a bin; for each grid
     the suffixes of length 1..``context`` of the level sequence ending at ``x`` are looked up
     among the sub-sequences seen within the last ``window`` values. The score is the
     fraction never seen, averaged over both grids (the shifted grid keeps noise around one
     bin edge from looking novel). Catches changes of shape in periodic or patterned signals
     (a missing peak, a flat stretch) that stay within range.

2. *Anomaly likelihood* (NAB's transform, per kind of evidence): the mean of the last
   ``average`` raw scores is compared with the long-run mean and standard deviation of that
   moving average (over the last ``window`` values); the Gaussian tail probability ``p`` of
   the recent average is turned into ``min(1, -log10(p) / 10)``, so 0.5 means p = 1e-5.
   This makes the score self-normalising: a stream whose raw evidence is always high (noisy
   data) does not alarm for being noisy. The detector's score is the largest of these and of
   the *outlier* score ``excess / (2 * outlier)``, where ``excess`` is how far ``x`` lies
   outside the history's [min, max] in robust scales (so a lone spike far beyond anything
   seen still alarms, although the averaged evidence dilutes it).

3. *Alarm suppression*: after a score reaches ``threshold`` the following ``rest`` values are
   capped at half the threshold, so one change yields one alarm at its onset (as HTM's and
   CAD OSE's NAB detectors do) instead of a run of alarms that NAB charges as false positives.

Nothing is reported during the first ``warmup`` values (the statistics are still forming).
Per value the cost is O(window) (a few numpy percentiles over the ring buffer).

The design and its defaults (the constructor's and :data:`DEFAULT_THRESHOLD`) are the choice
of a cross-validation across the files of NAB's development split, against other settings and
published baselines (``evaluation/nab_cv.py``; BENCHMARKS.md has the folds). They are not
tuned further on those files: a change to them is a new run of that procedure.

>>> det = StreamingAnomalyDetector()
>>> scores = [det.score_one(float(t), 10.0 + (t % 7) * 0.1) for t in range(600)]
>>> max(scores) < DEFAULT_THRESHOLD
True
>>> det.score_one(600.0, 50.0) >= DEFAULT_THRESHOLD
True
>>> det.score_one(601.0, float("nan"))
0.0
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

#: Default alarm threshold: a score of 0.5 means the recent raw evidence lies about 4.3
#: standard deviations (tail probability 1e-5) above its own long-run distribution.
DEFAULT_THRESHOLD = 0.5
#: Default history and warm-up (values): with ``DEFAULT_THRESHOLD``, the settings the
#: cross-validation on NAB's development split chose (``evaluation/nab_cv.py``), and those the
#: detector bank runs (``univariate.py`` takes them from here).
DEFAULT_WINDOW = 2000
DEFAULT_WARMUP = 150

_LOG10_TAIL_FLOOR = 10.0  # score 1.0 at tail probability 1e-10
_N_EVIDENCE = 2
# Two level grids shifted by half a bin: a value jittering across one grid's bin edge sits
# mid-bin in the other, so noise alone rarely makes a context novel in both.
_GRID_OFFSETS = (0.0, 0.5)


def finite(value: object) -> float | None:
    """``value`` as a finite float; None for NaN, infinities, None and what is not a number."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def rest_after_alarm(score: float, quiet: int, threshold: float, rest: int) -> tuple[float, int]:
    """The score to report and the values left in the rest period, ``quiet`` before this one.

    Within a rest period the score is capped at half the threshold; a score at or above the
    threshold outside one starts a rest period of ``rest`` values (one alarm per change).
    """
    if quiet > 0:
        return min(score, 0.5 * threshold), quiet - 1
    return score, (rest if score >= threshold else 0)


class StreamingAnomalyDetector:
    """Streaming anomaly score for one numeric series; see the module docstring.

    Parameters
    ----------
    window
        Length of the history (values) the statistics are computed over.
    warmup
        Values to learn from before any non-zero score is reported.
    short
        Length of the recent mean compared with the history (level evidence).
    n_bins
        Number of levels between the 1st and 99th percentile (novelty evidence).
    context
        Longest sub-sequence of levels that must have been seen before (novelty evidence).
    average
        Length of the moving average of raw evidence fed to the likelihood.
    threshold
        Alarm threshold used for suppression (and advertised to callers).
    rest
        Values after an alarm during which the score is capped below ``threshold``.
    outlier
        A value farther outside the history's range than this many robust scales scores
        at least 0.5 by itself (isolated spikes, which the averaged evidence dilutes).
    """

    def __init__(
        self,
        window: int = DEFAULT_WINDOW,
        warmup: int = DEFAULT_WARMUP,
        short: int = 3,
        n_bins: int = 8,
        context: int = 6,
        average: int = 10,
        threshold: float = DEFAULT_THRESHOLD,
        rest: int = 200,
        outlier: float = 6.0,
    ) -> None:
        if window < 10 or warmup < 2 or short < 1 or n_bins < 1 or context < 1 or average < 1:
            raise ValueError("window >= 10, warmup >= 2 and the other sizes >= 1 are required")
        self.window = window
        self.warmup = warmup
        self.short = short
        self.n_bins = n_bins
        self.context = context
        self.average = average
        self.threshold = threshold
        self.rest = rest
        self.outlier = outlier
        self._reset()

    def _reset(self) -> None:
        self._values = np.zeros(self.window)
        self._n = 0  # finite values learned so far
        self._recent: deque[float] = deque(maxlen=self.short)
        self._levels: list[deque[int]] = [deque(maxlen=self.context) for _ in _GRID_OFFSETS]
        self._seen: dict[tuple[int, ...], int] = {}  # level sub-sequence -> last position
        self._raw: list[deque[float]] = [deque(maxlen=self.average) for _ in range(_N_EVIDENCE)]
        # Ring buffers of the moving-average raw evidence, with running sums for mean / var.
        self._avg_hist: list[deque[float]] = [deque() for _ in range(_N_EVIDENCE)]
        self._avg_sum = [0.0] * _N_EVIDENCE
        self._avg_sq = [0.0] * _N_EVIDENCE
        self._quiet = 0  # values left in the rest period after an alarm

    # -- public API -------------------------------------------------------------------------

    def score_one(self, ts: float, value: float | None) -> float:
        """Learn ``value`` (observed at ``ts``) and return its anomaly score in [0, 1].

        Missing or non-finite values return 0.0 and leave the state untouched.
        """
        x = finite(value)
        if x is None:
            return 0.0
        filled = min(self._n, self.window)
        self._recent.append(x)
        if filled < 10:
            self._learn(x)
            return 0.0
        hist = self._values[:filled]
        q01, q25, q50, q75, q99 = np.percentile(hist, (1, 25, 50, 75, 99))
        mad = float(np.median(np.abs(hist - q50)))
        scale = max(1.4826 * mad, (q75 - q25) / 1.349, (q99 - q01) / 20.0, 1e-9 * abs(q50), 1e-12)

        recent = sum(self._recent) / len(self._recent)
        z = abs(recent - q50) / scale
        level_ev = z / (z + 3.0)
        lo, hi = float(hist.min()), float(hist.max())
        excess = max(lo - x, x - hi, 0.0) / scale

        width = (q99 - q01) / self.n_bins
        novelty_ev = 0.0
        for g, offset in enumerate(_GRID_OFFSETS):
            if 0 < width < math.inf:
                # compared before ``floor``: a value ~1e308 away is an infinite position
                pos = (x - q01) / width + offset
                top = self.n_bins + 1
                level = -1 if pos < 0 else top if pos >= top else math.floor(pos)
            else:
                level = -1 if x < q01 else (1 if x > q01 else 0)
            novelty_ev += self._novelty(g, level) / len(_GRID_OFFSETS)
        self._learn(x)

        score = 0.0
        for k, ev in enumerate((level_ev, novelty_ev)):
            score = max(score, self._likelihood(k, ev))
        score = max(score, min(1.0, excess / (2.0 * self.outlier)))
        if self._n <= self.warmup:
            return 0.0
        score, self._quiet = rest_after_alarm(score, self._quiet, self.threshold, self.rest)
        return score

    # -- internals --------------------------------------------------------------------------

    def _novelty(self, grid: int, level: int) -> float:
        """Fraction of the level sub-sequences ending now not seen within the window."""
        self._levels[grid].append(level)
        seq = (grid, *self._levels[grid])
        horizon = self._n - self.window
        new = 0
        for k in range(1, len(seq)):
            ctx = (grid, *seq[-k:])
            last = self._seen.get(ctx)
            if last is None or last < horizon:
                new += 1
            self._seen[ctx] = self._n
        if len(self._seen) > 64 * self.window:  # forget sub-sequences older than the window
            self._seen = {c: i for c, i in self._seen.items() if i >= horizon}
        return new / (len(seq) - 1)

    def _learn(self, x: float) -> None:
        self._values[self._n % self.window] = x
        self._n += 1

    def _likelihood(self, k: int, ev: float) -> float:
        """NAB-style anomaly likelihood of the recent average of evidence ``k``, as a score."""
        raw = self._raw[k]
        raw.append(ev)
        avg = sum(raw) / len(raw)
        hist = self._avg_hist[k]
        m = len(hist)
        score = 0.0
        if m >= 10:
            mean = self._avg_sum[k] / m
            var = max(self._avg_sq[k] / m - mean * mean, 0.0)
            std = max(math.sqrt(var), 0.01, 0.05 * mean)
            tail = 0.5 * math.erfc((avg - mean) / (std * math.sqrt(2.0)))
            score = min(1.0, -math.log10(max(tail, 1e-300)) / _LOG10_TAIL_FLOOR)
        hist.append(avg)
        self._avg_sum[k] += avg
        self._avg_sq[k] += avg * avg
        if m + 1 > self.window:
            old = hist.popleft()
            self._avg_sum[k] -= old
            self._avg_sq[k] -= old * old
        return score
