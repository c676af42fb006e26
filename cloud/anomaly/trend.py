"""A trend test over a detector's recent judging windows: how fast, and how surely, the level moves.

A baseline-shift detector judges one window mean at a time (``shift.py``); the CUSUM says *that*
the level left the baseline. The trend over the last ``size`` windows says *how*: the Theil–Sen
slope (the median of all pairwise slopes, robust to an odd window) in the monitored unit per day,
and the two-sided Mann–Kendall p-value of a monotone trend (Kendall's tau of level against time).
A refrigerant leak shows a steady slope with a small p; a part that failed at once shows a step
(also a small p over a span that straddles it, but a slope near zero on the windows after it).
Both go into the finding's evidence (``trend_per_day``, ``trend_p``).

Windows are regular in event time, so only their levels are kept (float32, NaN where a window
had too few readings), with the start of the newest: ``4·size + 8`` bytes of data per detector.

>>> w = RecentWindows(size=8, window_s=3 * 3600.0)
>>> for i in range(8):
...     w.add(i * 3 * 3600.0, 10.0 - 0.25 * i)  # falls 2 units a day
>>> slope, p = w.trend()
>>> round(slope, 3), p < 0.001
(-2.0, True)
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from cloud.anomaly.compact import Compact

DAY = 86_400.0


class RecentWindows(Compact):
    """The levels of the last ``size`` windows of ``window_s``, newest last."""

    __slots__ = ("size", "window_s", "_levels", "_newest")
    _config = frozenset({"size", "window_s"})

    def __init__(self, size: int = 16, window_s: float = 3 * 3600.0) -> None:
        self.size = size
        self.window_s = window_s
        self._levels = np.full(size, np.nan, dtype=np.float32)
        self._newest: float | None = None  # start of the newest window

    def add(self, start: float, level: float) -> None:
        """The level of the window starting at ``start``; windows older than the newest are
        ignored (they were judged out of order and have no place in the series)."""
        if self._newest is None:
            shift = self.size
        else:
            shift = round((start - self._newest) / self.window_s)
            if shift <= 0:
                return
        if shift >= self.size:
            self._levels[:] = np.nan
        else:
            self._levels[:-shift] = self._levels[shift:]
            self._levels[-shift:] = np.nan
        self._levels[-1] = level
        self._newest = start

    def trend(self) -> tuple[float, float]:
        """(Theil–Sen slope per day, Mann–Kendall p-value) over the kept windows; NaN for both
        with fewer than 4 windows with a level."""
        ok = np.isfinite(self._levels)
        if ok.sum() < 4 or self._newest is None:
            return math.nan, math.nan
        t = (np.arange(self.size, dtype=float)[ok] - (self.size - 1)) * self.window_s / DAY
        y = self._levels[ok].astype(float)
        slope = float(stats.theilslopes(y, t)[0])
        p = float(stats.kendalltau(t, y).pvalue)
        return slope, (1.0 if math.isnan(p) else p)  # all levels equal: no trend at all
