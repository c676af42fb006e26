"""The shape shared by the baseline-shift detectors (cooling decline, noise rise, vibration rise).

Learn the unit's own baseline for like conditions (:class:`LinearBaseline`) over its first
``learn_s`` of valid readings, then judge each window of ``window_s``: the mean residual against
the baseline feeds a one-sided CUSUM (:class:`WindowCusum`); when it crosses ``h`` the detector
reports the fault once, with its evidence. While the fault stands, ``clear_windows`` windows in a
row back near the baseline report it cleared (``Finding.active = False``), which is what fix
verification listens for.

A subclass names its fault and direction and turns a block into ``(ts, x, y)``: the valid rows,
their condition features and the monitored quantity.
"""

from __future__ import annotations

import math

import numpy as np

from cloud.anomaly.base import Block, Finding
from cloud.anomaly.baseline import LinearBaseline, WindowSums
from cloud.anomaly.compact import Compact
from cloud.anomaly.cusum import WindowCusum


class BaselineShift(Compact):
    fault = ""
    direction = -1
    n_features = 1

    __slots__ = (
        "learn_s",
        "window_s",
        "k",
        "h",
        "min_shift",
        "min_shift_fraction",
        "sigma_floor",
        "sigma_floor_fraction",
        "min_count",
        "min_learn_windows",
        "clear_windows",
        "range_margin",
        "_sums",
        "_baseline",
        "_cusum",
        "_first_ts",
        "_learning",
        "_active",
        "_onset",
        "_clear_run",
    )
    _config = frozenset(__slots__[:12])  # the constructor arguments

    def __init__(
        self,
        *,
        learn_s: float = 36 * 3600.0,
        window_s: float = 3 * 3600.0,
        k: float = 0.5,
        h: float = 8.0,
        min_shift: float = 0.0,
        min_shift_fraction: float = 0.0,
        sigma_floor: float = 1e-3,
        sigma_floor_fraction: float = 0.0,
        min_count: int = 5,
        min_learn_windows: int = 6,
        clear_windows: int = 4,
        range_margin: float = 0.2,
    ) -> None:
        self.learn_s = learn_s
        self.window_s = window_s
        self.k = k
        self.h = h
        self.min_shift = min_shift
        self.min_shift_fraction = min_shift_fraction
        self.sigma_floor = sigma_floor
        self.sigma_floor_fraction = sigma_floor_fraction
        self.min_count = min_count
        self.min_learn_windows = min_learn_windows
        self.clear_windows = clear_windows
        self.range_margin = range_margin
        self._reset()

    def _reset(self) -> None:
        self._sums = WindowSums(self.window_s, self.n_features)
        self._baseline = LinearBaseline(self.n_features)
        self._cusum = WindowCusum(self.k, self.h, self.direction)
        self._first_ts: float | None = None
        self._learning = True
        self._active = False
        self._onset = math.nan
        self._clear_run = 0

    @property
    def learning(self) -> bool:
        return self._learning

    @property
    def active(self) -> bool:
        return self._active

    def _rows(self, block: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def update(self, block: Block) -> list[Finding]:
        ts, x, y = self._rows(block)
        if len(ts) == 0:
            return []
        if self._first_ts is None:
            self._first_ts = float(ts[0])
        if not self._learning:  # judge only like conditions: those the baseline has seen
            like = self._baseline.within(x, self.range_margin)
            ts, x, y = ts[like], x[like], y[like]
        closed = self._sums.add(ts, x, y)
        if self._learning:
            self._baseline.add(x, y)
            for _, n, sx, sy in closed:
                if n >= self.min_count:
                    self._baseline.add_window(n, sx, sy)
            if (
                ts[-1] - self._first_ts >= self.learn_s
                and len(self._baseline.windows) >= self.min_learn_windows
            ):
                self._freeze()
            return []
        out = []
        for start, n, sx, sy in closed:
            if n >= self.min_count:
                f = self._judge(block.device, start, n, sx, sy)
                if f is not None:
                    out.append(f)
        return out

    def _freeze(self) -> None:
        b = self._baseline
        b.fit()
        scale = abs(b.level) if math.isfinite(b.level) else 0.0
        sigma = b.sigma if math.isfinite(b.sigma) else 0.0
        self._cusum.calibrate(
            max(sigma, self.sigma_floor, self.sigma_floor_fraction * scale),
            max(self.min_shift, self.min_shift_fraction * scale),
        )
        self._learning = False

    def _judge(
        self, device: str, start: float, n: int, sx: np.ndarray, sy: float
    ) -> Finding | None:
        level = self._baseline.window_residual(n, sx, sy)
        alarm = self._cusum.update(start, level, self.window_s)
        end = start + self.window_s
        if not self._active:
            if alarm is None:
                return None
            self._active, self._onset, self._clear_run = True, alarm.onset_ts, 0
            return self._finding(device, end, n, sx, sy, level, alarm.statistic, True)
        if self.direction * level < self._cusum.min_shift / 2:
            self._clear_run += 1
        else:
            self._clear_run = 0
        if self._clear_run < self.clear_windows:
            return None
        self._active = False
        self._cusum.restart()
        return self._finding(device, end, n, sx, sy, level, 0.0, False)

    def _finding(
        self,
        device: str,
        ts: float,
        n: int,
        sx: np.ndarray,
        sy: float,
        level: float,
        statistic: float,
        active: bool,
    ) -> Finding:
        expected = self._baseline.window_expected(n, sx)
        evidence = {
            "baseline": expected,
            "current": sy / n,
            "change": level,
            "change_fraction": level / expected if expected else math.nan,
            "sigma": float(self._cusum.sigma or math.nan),
            "statistic": statistic,
            "readings": float(n),
        }
        score = 1.0 - math.exp(-statistic / self.h) if active else 0.0
        return Finding(device, self.fault, ts, self._onset, score, evidence, active)
