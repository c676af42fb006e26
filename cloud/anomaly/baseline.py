"""A unit's own baseline for like conditions, learned as a small linear model from window sums.

``y ≈ x · beta`` where ``x`` describes the conditions (outdoor temperature, fan speed, ...).
Readings are summed per window of event time (count, Σx, Σy, Σxxᵀ, Σxy): the normal equations
come from the sums, and because the model is linear the mean residual of a window is
``(Σy − Σx·beta) / n`` exactly, so the learning windows' residual spread is known as soon as
``beta`` is, without keeping any reading. State is a few small arrays per unit; once fitted, the
baseline keeps only ``beta``, the learned range (``lo``, ``hi``), ``level`` and ``sigma``.
"""

from __future__ import annotations

import math

import numpy as np

from cloud.anomaly.compact import Compact


class WindowSums(Compact):
    """Per-window sums of features and target, closed when event time leaves the window."""

    __slots__ = ("window_s", "n_features", "start", "n", "sx", "sy")
    _config = frozenset({"window_s", "n_features"})

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


class LinearBaseline(Compact):
    """Least-squares fit of ``y`` on condition features, accumulated window by window."""

    __slots__ = (
        "n_features",
        "ridge",
        "xtx",
        "xty",
        "n",
        "_params",
        "_fitted",
        "windows",
        "level",
        "sigma",
    )
    _config = frozenset({"n_features", "ridge"})

    def __init__(self, n_features: int, ridge: float = 1e-3) -> None:
        self.n_features = n_features
        self.ridge = ridge
        # the normal equations' sums; None once fitted (only add() needs them, before fit())
        self.xtx: np.ndarray | None = np.zeros((n_features, n_features))
        self.xty: np.ndarray | None = np.zeros(n_features)
        self.n = 0
        # rows lo, hi (the range of conditions seen while learning) and beta, in one array: one
        # array header per unit instead of three
        self._params = np.zeros((3, n_features))
        self._params[0], self._params[1] = np.inf, -np.inf
        self._fitted = False
        self.windows: list[tuple[int, np.ndarray, float]] = []
        self.level = math.nan  # mean of y over the learning period
        self.sigma = math.nan  # spread of learning windows' mean residuals

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        if self.xtx is None or self.xty is None:
            raise RuntimeError("add() after fit(): the baseline is frozen")
        self.xtx += x.T @ x
        self.xty += x.T @ y
        self.n += len(y)
        if len(y):
            np.minimum(self.lo, x.min(axis=0), out=self.lo)
            np.maximum(self.hi, x.max(axis=0), out=self.hi)

    @property
    def lo(self) -> np.ndarray:
        """Lowest value of each feature seen while learning."""
        return self._params[0]

    @property
    def hi(self) -> np.ndarray:
        """Highest value of each feature seen while learning."""
        return self._params[1]

    @property
    def beta(self) -> np.ndarray | None:
        """The fitted coefficients (None before :meth:`fit`)."""
        return self._params[2] if self._fitted else None

    def within(self, x: np.ndarray, margin: float) -> np.ndarray:
        """Rows whose conditions lie inside the learned range, widened by ``margin`` of its
        width: the baseline is only trusted where it was learned, not extrapolated."""
        pad = margin * (self.hi - self.lo)
        return np.all((x >= self.lo - pad) & (x <= self.hi + pad), axis=1)

    def __setstate__(self, state: object) -> None:
        super().__setstate__(state)
        # own copies: arrays fresh from a pickle keep the pickle's buffer alive
        self.windows = [(n, sx.copy(), sy) for n, sx, sy in self.windows]

    def add_window(self, n: int, sx: np.ndarray, sy: float) -> None:
        self.windows.append((n, sx, sy))

    def fit(self) -> None:
        if self.xtx is None or self.xty is None:
            raise RuntimeError("fit() twice: the sums are gone after the first")
        a = self.xtx + self.ridge * np.eye(self.n_features)
        self._params[2] = np.linalg.solve(a, self.xty)
        self._fitted = True
        res = [self.window_residual(n, sx, sy) for n, sx, sy in self.windows]
        # robust spread (MAD): one odd learning window (a pull-down after installation, a door
        # left open) must not make the unit's scale so wide that real faults stay hidden
        if len(res) > 2:
            self.sigma = float(1.4826 * np.median(np.abs(np.asarray(res) - np.median(res))))
        else:
            self.sigma = math.nan
        tot_n = sum(n for n, _, _ in self.windows)
        self.level = sum(sy for _, _, sy in self.windows) / tot_n if tot_n else math.nan
        # not needed any more: keep per-unit state small
        self.windows = []
        self.xtx = self.xty = None

    def window_residual(self, n: int, sx: np.ndarray, sy: float) -> float:
        assert self.beta is not None
        return (sy - float(sx @ self.beta)) / n

    def window_expected(self, n: int, sx: np.ndarray) -> float:
        assert self.beta is not None
        return float(sx @ self.beta) / n
