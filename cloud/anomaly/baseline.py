"""A unit's own baseline for like conditions, learned as a small linear model from window sums.

``y ≈ x · beta`` where ``x`` describes the conditions (outdoor temperature, fan speed, ...).
Readings are summed per window of event time (count, Σx, Σy, Σxxᵀ, Σxy): the normal equations
come from the sums, and because the model is linear the mean residual of a window is
``(Σy − Σx·beta) / n`` exactly, so the learning windows' residual spread is known as soon as
``beta`` is, without keeping any reading. State is a few small arrays per unit.
"""

from __future__ import annotations

import math

import numpy as np


class WindowSums:
    """Per-window sums of features and target, closed when event time leaves the window."""

    def __init__(self, window_s: float, n_features: int) -> None:
        self.window_s = window_s
        self.n_features = n_features
        self.start: float | None = None
        self._clear()

    def _clear(self) -> None:
        self.n = 0
        self.sx = np.zeros(self.n_features)
        self.sy = 0.0

    def add(
        self, ts: np.ndarray, x: np.ndarray, y: np.ndarray
    ) -> list[tuple[float, int, np.ndarray, float]]:
        """Add rows (in time order); returns the windows they closed as (start, n, Σx, Σy)."""
        closed: list[tuple[float, int, np.ndarray, float]] = []
        if len(ts) == 0:
            return closed
        wins = np.floor(ts / self.window_s) * self.window_s
        if self.start is None:
            self.start = float(wins[0])
        for w in np.unique(wins):
            if w < self.start:  # late rows of an earlier window: fold into the current one
                sel = wins == w
            elif w > self.start:
                if self.n:
                    closed.append((self.start, self.n, self.sx.copy(), self.sy))
                self._clear()
                self.start = float(w)
                sel = wins == w
            else:
                sel = wins == w
            self.n += int(sel.sum())
            self.sx += x[sel].sum(axis=0)
            self.sy += float(y[sel].sum())
        return closed


class LinearBaseline:
    """Least-squares fit of ``y`` on condition features, accumulated window by window."""

    def __init__(self, n_features: int, ridge: float = 1e-3) -> None:
        self.n_features = n_features
        self.ridge = ridge
        self.xtx = np.zeros((n_features, n_features))
        self.xty = np.zeros(n_features)
        self.n = 0
        self.lo = np.full(n_features, np.inf)  # range of conditions seen while learning
        self.hi = np.full(n_features, -np.inf)
        self.windows: list[tuple[int, np.ndarray, float]] = []
        self.beta: np.ndarray | None = None
        self.level = math.nan  # mean of y over the learning period
        self.sigma = math.nan  # spread of learning windows' mean residuals

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        self.xtx += x.T @ x
        self.xty += x.T @ y
        self.n += len(y)
        if len(y):
            self.lo = np.minimum(self.lo, x.min(axis=0))
            self.hi = np.maximum(self.hi, x.max(axis=0))

    def within(self, x: np.ndarray, margin: float) -> np.ndarray:
        """Rows whose conditions lie inside the learned range, widened by ``margin`` of its
        width: the baseline is only trusted where it was learned, not extrapolated."""
        pad = margin * (self.hi - self.lo)
        return np.all((x >= self.lo - pad) & (x <= self.hi + pad), axis=1)

    def add_window(self, n: int, sx: np.ndarray, sy: float) -> None:
        self.windows.append((n, sx, sy))

    def fit(self) -> None:
        a = self.xtx + self.ridge * np.eye(self.n_features)
        self.beta = np.linalg.solve(a, self.xty)
        res = [self.window_residual(n, sx, sy) for n, sx, sy in self.windows]
        # robust spread (MAD): one odd learning window (a pull-down after installation, a door
        # left open) must not make the unit's scale so wide that real faults stay hidden
        if len(res) > 2:
            self.sigma = float(1.4826 * np.median(np.abs(np.asarray(res) - np.median(res))))
        else:
            self.sigma = math.nan
        tot_n = sum(n for n, _, _ in self.windows)
        self.level = sum(sy for _, _, sy in self.windows) / tot_n if tot_n else math.nan
        self.windows = []  # not needed any more: keep per-unit state small

    def window_residual(self, n: int, sx: np.ndarray, sy: float) -> float:
        assert self.beta is not None
        return (sy - float(sx @ self.beta)) / n

    def window_expected(self, n: int, sx: np.ndarray) -> float:
        assert self.beta is not None
        return float(sx @ self.beta) / n
