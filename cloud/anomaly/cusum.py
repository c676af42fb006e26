"""A one-sided CUSUM over window means of a residual.

Single readings are noisy and strongly autocorrelated (thermostat cycles, weather), so the
detectors average residuals over windows of event time first; the spread of those window means
during the learning period sets the scale (``sigma``), and the CUSUM accumulates evidence of a
sustained shift of the standardised window means in one direction. The start of the current run
of evidence (the last time the sum was zero) is the change-point estimate: the fault's onset.

Pure and small: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud.anomaly.compact import Compact


@dataclass(frozen=True, slots=True)
class CusumAlarm:
    ts: float  # end of the window that crossed the threshold
    onset_ts: float  # start of the run of evidence
    statistic: float


class WindowCusum(Compact):
    """Detect a sustained shift of window means in one direction.

    Args:
        k: allowance in units of ``sigma`` (half the shift worth detecting fast).
        h: decision threshold of the cumulative sum.
        direction: ``-1`` to detect a drop, ``+1`` a rise.
        min_shift: a window adds evidence only when its mean is beyond this, in the residual's
            units: practical significance on top of statistical significance.
        min_windows: one window adds at most ``h / min_windows`` to the sum (a winsorised
            CUSUM), so an alarm needs evidence from at least this many windows: one odd window
            (a sensor glitch, a door left open) cannot raise an alarm on its own.

    >>> c = WindowCusum(k=0.5, h=4.0, direction=-1, min_shift=0.3)
    >>> c.calibrate(0.1)
    >>> [c.update(t, -0.05) for t in (0.0, 1.0)]  # inside the noise: no evidence
    [None, None]
    >>> [a.onset_ts for t in (2.0, 3.0, 4.0) if (a := c.update(t, -1.0, window_s=1.0))]
    [2.0, 2.0]
    """

    __slots__ = (
        "k",
        "h",
        "direction",
        "min_windows",
        "min_shift",
        "sigma",
        "statistic",
        "_run_start",
    )
    _config = frozenset({"k", "h", "direction", "min_windows"})  # min_shift is calibrated per unit

    def __init__(
        self,
        k: float = 0.5,
        h: float = 8.0,
        direction: int = -1,
        min_shift: float = 0.0,
        min_windows: int = 2,
    ) -> None:
        self.k = k
        self.h = h
        self.direction = direction
        self.min_windows = min_windows
        self.min_shift = min_shift
        self._reset()

    def _reset(self) -> None:
        self.sigma: float | None = None
        self.statistic = 0.0
        self._run_start: float | None = None

    def calibrate(self, sigma: float, min_shift: float | None = None) -> None:
        self.sigma = sigma
        if min_shift is not None:
            self.min_shift = min_shift

    def update(self, window_start: float, level: float, window_s: float = 0.0) -> CusumAlarm | None:
        """Add one window's mean residual; returns an alarm while the sum is over ``h``."""
        if self.sigma is None:
            raise RuntimeError("update() before calibrate()")
        z = self.direction * level / self.sigma
        if self.direction * level < self.min_shift:
            z = min(z, self.k)  # not practically significant: adds no evidence
        z = min(z, self.k + self.h / self.min_windows)
        s = max(0.0, self.statistic + z - self.k)
        if s > 0.0 and self.statistic == 0.0:
            self._run_start = window_start
        self.statistic = s
        if s == 0.0:
            self._run_start = None
            return None
        if s >= self.h:
            onset = window_start if self._run_start is None else self._run_start
            return CusumAlarm(window_start + window_s, onset, s)
        return None

    def restart(self) -> None:
        """Forget the accumulated evidence (after a fault cleared, or a repair)."""
        self.statistic = 0.0
        self._run_start = None
