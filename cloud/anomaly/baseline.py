"""A unit's own baseline for like conditions, learned as a small linear model from window sums.

``y ≈ x · beta`` where ``x`` describes the conditions (outdoor temperature, fan speed, ...).
Readings are summed per window of event time (count, Σx, Σy, Σxxᵀ, Σxy): the normal equations
come from the sums, and because the model is linear the mean residual of a window is
``(Σy − Σx·beta) / n`` exactly, so the learning windows' residual spread is known as soon as
``beta`` is, without keeping any reading. State is a few small arrays per unit; once fitted, the
baseline keeps ``beta``, the learned range (``lo``, ``hi``), ``level``, ``sigma`` and the normal
equations' sums (``xtx``, ``xty``: ``n_features² + n_features`` floats), so that a window of
readings from conditions the unit had not seen yet (the next season) can be folded in later
(:meth:`LinearBaseline.extend`, with the window's :class:`Moments` from :class:`WindowMoments`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cloud.anomaly.compact import Compact


class _Windows(Compact):
    """Rows summed per window of event time; a window closes when event time leaves it.

    Subclasses say what a window keeps (:meth:`_clear`, :meth:`_accumulate`) and what a closed
    one is (:meth:`_take`); the splitting into windows is here, once. Late rows of an earlier
    window fold into the current one.
    """

    __slots__ = ("window_s", "n_features", "start", "n")
    _config = frozenset({"window_s", "n_features"})

    def __init__(self, window_s: float, n_features: int) -> None:
        self.window_s = window_s
        self.n_features = n_features
        self.start: float | None = None

    def _clear(self) -> None:
        raise NotImplementedError

    def _accumulate(self, x: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _take(self) -> Any:
        raise NotImplementedError

    def add(self, ts: np.ndarray, x: np.ndarray, y: np.ndarray) -> list[Any]:
        """Add rows (in time order); returns the windows they closed (:meth:`_take`)."""
        closed: list[Any] = []
        if len(ts) == 0:
            return closed
        wins = np.floor(ts / self.window_s) * self.window_s
        if self.start is None:
            self.start = float(wins[0])
        lo, hi = wins.min(), wins.max()
        if lo == hi:  # the common case: the whole block in one window (no masks to build)
            groups: list[tuple[float, np.ndarray | None]] = [(lo, None)]
        else:
            groups = [(w, wins == w) for w in np.unique(wins)]
        for w, sel in groups:
            if w > self.start:
                if self.n:
                    closed.append(self._take())
                self._clear()
                self.start = float(w)
            self._accumulate(x if sel is None else x[sel], y if sel is None else y[sel])
        return closed


class WindowSums(_Windows):
    """Per-window count, Σx and Σy: a closed window is ``(start, n, Σx, Σy)``."""

    __slots__ = ("sx", "sy")

    def __init__(self, window_s: float, n_features: int) -> None:
        super().__init__(window_s, n_features)
        self._clear()

    def _clear(self) -> None:
        self.n = 0
        self.sx = np.zeros(self.n_features)
        self.sy = 0.0

    def _accumulate(self, x: np.ndarray, y: np.ndarray) -> None:
        self.n += len(y)
        self.sx += x.sum(axis=0)
        self.sy += float(y.sum())

    def _take(self) -> tuple[float, int, np.ndarray, float]:
        assert self.start is not None
        return self.start, self.n, self.sx, self.sy  # _clear() starts a new Σx array


@dataclass(frozen=True, slots=True)
class Moments:
    """The sums of one closed window of rows: enough to fold it into a least-squares fit."""

    start: float
    n: int
    xtx: np.ndarray  # Σ x xᵀ
    xty: np.ndarray  # Σ x y
    sx: np.ndarray  # Σ x
    sy: float  # Σ y
    lo: np.ndarray  # lowest value of each feature in the window
    hi: np.ndarray


class WindowMoments(_Windows):
    """Like :class:`WindowSums`, but each window keeps its full moments (Σxxᵀ, Σxy) and its
    range too, so a closed window can extend a fitted :class:`LinearBaseline`.

    Its state is one array of ``n_features + 4`` rows (Σxxᵀ, Σxy, Σx, lo, hi) plus ``n``, ``sy``
    and the window's start.
    """

    __slots__ = ("sy", "_acc")

    def __init__(self, window_s: float, n_features: int) -> None:
        super().__init__(window_s, n_features)
        self._acc = np.zeros((n_features + 4, n_features))
        self._clear()

    def _clear(self) -> None:
        self.n = 0
        self.sy = 0.0
        self._acc[:] = 0.0
        self._acc[-2], self._acc[-1] = np.inf, -np.inf

    def _take(self) -> Moments:
        k, a = self.n_features, self._acc.copy()
        assert self.start is not None
        return Moments(self.start, self.n, a[:k], a[k], a[k + 1], self.sy, a[k + 2], a[k + 3])

    def _accumulate(self, x: np.ndarray, y: np.ndarray) -> None:
        k, a = self.n_features, self._acc
        self.n += len(y)
        self.sy += float(y.sum())
        a[:k] += x.T @ x
        a[k] += x.T @ y
        a[k + 1] += x.sum(axis=0)
        np.minimum(a[k + 2], x.min(axis=0), out=a[k + 2])
        np.maximum(a[k + 3], x.max(axis=0), out=a[k + 3])

    def close_before(self, ts: float) -> list[Moments]:
        """Close the current window if event time ``ts`` lies past it (no rows of it may come
        any more); returns it."""
        if self.start is None or not self.n or ts < self.start + self.window_s:
            return []
        out = [self._take()]
        self._clear()
        return out


# the learned range of a feature taken out of the fit (LinearBaseline.drop): wide enough that every
# row lies within it, finite so that range arithmetic (widths, margins) stays finite
DROPPED = 1e9


def dropped(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Which features of learned ranges ``lo``–``hi`` were dropped (:meth:`LinearBaseline.drop`)."""
    return (lo <= -DROPPED) & (hi >= DROPPED)


def proportional(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Which fits, by their learned ranges ``lo``–``hi`` (... × features), have no constant
    (feature 0 dropped): the quantity modelled in proportion to a feature (``speed.py``)."""
    return dropped(lo[..., 0], hi[..., 0])


def within_range(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray, margin: float, slack: float | np.ndarray = 0.0
) -> np.ndarray:
    """Which rows of ``x`` lie inside ``lo``–``hi`` per feature, widened on each side by
    ``margin`` of its width and by ``slack``."""
    pad = margin * (hi - lo) + slack
    return np.all((x >= lo - pad) & (x <= hi + pad), axis=-1)


def robust_spread(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """1.4826 × the median absolute deviation along ``axis``: a normal's sigma, robust to odd
    windows."""
    centre = np.median(values, axis=axis, keepdims=True)
    return 1.4826 * np.median(np.abs(values - centre), axis=axis)


class LinearBaseline(Compact):
    """Least-squares fit of ``y`` on condition features, accumulated window by window."""

    __slots__ = (
        "n_features",
        "ridge",
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
        self.n = 0
        # rows lo, hi (the range of conditions learned), beta, then the normal equations' sums
        # Σxxᵀ (n_features rows) and Σxy, in one array: one array header per unit instead of five
        self._params = np.zeros((n_features + 4, n_features))
        self._params[0], self._params[1] = np.inf, -np.inf
        self._fitted = False
        # the learning windows (start, n, Σx, Σy), for sigma and level; None once fitted
        self.windows: list[tuple[float, int, np.ndarray, float]] | None = []
        self.level = math.nan  # mean of y over the learning period
        self.sigma = math.nan  # spread of learning windows' mean residuals

    @property
    def xtx(self) -> np.ndarray:
        """Σ x xᵀ over every row learned (a view: adding to it adds to the fit's sums)."""
        return self._params[3 : 3 + self.n_features]

    @property
    def xty(self) -> np.ndarray:
        """Σ x y over every row learned."""
        return self._params[3 + self.n_features]

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """Learn rows (before :meth:`fit`; afterwards only whole windows, by :meth:`extend`)."""
        if self._fitted:
            raise RuntimeError("add() after fit(): later rows come in by extend()")
        xtx, xty = self.xtx, self.xty  # views: in-place adds reach the sums
        xtx += x.T @ x
        xty += x.T @ y
        self.n += len(y)
        if len(y):
            np.minimum(self.lo, x.min(axis=0), out=self.lo)
            np.maximum(self.hi, x.max(axis=0), out=self.hi)

    @property
    def lo(self) -> np.ndarray:
        """Lowest value of each feature learned."""
        return self._params[0]

    @property
    def hi(self) -> np.ndarray:
        """Highest value of each feature learned."""
        return self._params[1]

    @property
    def beta(self) -> np.ndarray | None:
        """The fitted coefficients (None before :meth:`fit`)."""
        return self._params[2] if self._fitted else None

    def within(self, x: np.ndarray, margin: float) -> np.ndarray:
        """Rows whose conditions lie inside the learned range, widened by ``margin`` of its
        width: the baseline is only trusted where it was learned, not extrapolated."""
        return within_range(x, self.lo, self.hi, margin)

    def __setstate__(self, state: object) -> None:
        super().__setstate__(state)
        # own copies: arrays fresh from a pickle keep the pickle's buffer alive
        if self.windows is not None:
            self.windows = [(t, n, sx.copy(), sy) for t, n, sx, sy in self.windows]

    def add_window(self, start: float, n: int, sx: np.ndarray, sy: float) -> None:
        if self.windows is None:
            raise RuntimeError("add_window() after fit(): sigma and level are set")
        self.windows.append((start, n, sx, sy))

    def _solve(self) -> None:
        a = self.xtx + self.ridge * np.eye(self.n_features)
        self._params[2] = np.linalg.solve(a, self.xty)
        self._fitted = True

    def residuals(self, beta: np.ndarray) -> np.ndarray:
        """Each learning window's mean residual against each of several fits (``beta``: fits ×
        features; fits × windows), at once: :meth:`window_residual` of many."""
        assert self.windows is not None
        n = np.array([w[1] for w in self.windows], dtype=float)
        sx = np.array([w[2] for w in self.windows])
        sy = np.array([w[3] for w in self.windows])
        return (sy - beta @ sx.T) / n

    def fit(self, split: int | None = None, step: float = 0.0) -> list[tuple[float, float]]:
        """Fit ``beta``; set ``level`` and ``sigma`` from the learning windows, then drop them;
        returns each learning window's (start, mean residual).

        With ``split`` (``learning_step.py``: the unit changed by ``step`` from the learning
        window ``split`` on, while it learned), the rows from the step on are moved back by it
        in the normal equations' sums and ``beta`` is the fit of the unit as it was before:
        ``level`` is the mean before the step, ``sigma`` the spread about the fit with the
        step, and a later :meth:`extend` or :meth:`pin` refits from the moved sums. The
        residuals returned are against ``beta``: the windows after the step show it."""
        if self.windows is None:
            raise RuntimeError("fit() twice: later windows come in by extend()")
        windows = self.windows
        if split is None:
            split, step = len(windows), 0.0
        else:
            self.xty[:] -= step * sum(sx for _, _, sx, _ in windows[split:])
        self._solve()
        tot_n = sum(n for _, n, _, _ in windows[:split])
        self.level = sum(sy for _, _, _, sy in windows[:split]) / tot_n if tot_n else math.nan
        res = np.array([self.window_shift(n, sx, sy) for _, n, sx, sy in windows])
        spread = res - step * (np.arange(len(windows)) >= split) if step else res
        # robust spread (MAD): one odd learning window (a pull-down after installation, a door
        # left open) must not make the unit's scale so wide that real faults stay hidden
        self.sigma = float(robust_spread(spread)) if len(spread) > 2 else math.nan
        learned = [(t, float(r)) for (t, _, _, _), r in zip(windows, res, strict=True)]
        self.windows = None  # not needed any more: keep per-unit state small
        return learned

    def extend(self, m: Moments) -> None:
        """Fold a window's rows into the fit, widen the learned range to cover them and refit
        ``beta``. ``level`` and ``sigma`` stay as learned."""
        if not self._fitted:
            raise RuntimeError("extend() before fit()")
        xtx, xty = self.xtx, self.xty
        xtx += m.xtx
        xty += m.xty
        self.n += m.n
        np.minimum(self.lo, m.lo, out=self.lo)
        np.maximum(self.hi, m.hi, out=self.hi)
        out = np.flatnonzero(dropped(self.lo, self.hi))
        if len(out):  # features out of the fit (:meth:`drop`) stay out
            self._zero(out.tolist())
        self._solve()

    def pin(self, j: int, coef: float, lo: float, hi: float, weight: float = 1.0) -> None:
        """Take ``coef`` as feature ``j``'s coefficient from outside the unit (``prior.py``):
        a penalty ``weight · (beta_j − coef)²`` in the normal equations (kept in the sums, so it
        stays through :meth:`extend`), and the learned range of ``j`` widened to ``lo``–``hi``;
        refits ``beta``."""
        if not self._fitted:
            raise RuntimeError("pin() before fit()")
        self.xtx[j, j] += weight
        self.xty[j] += weight * coef
        self.lo[j] = min(self.lo[j], lo)
        self.hi[j] = max(self.hi[j], hi)
        self._solve()

    def drop(self, features: Sequence[int]) -> None:
        """Before :meth:`fit`: take ``features`` out of the fit (a detector that chooses its
        model at the end of learning: ``speed.py``). Their sums become 0, in the normal
        equations and in each learning window, so the fit and the step search
        (``learning_step.py``) are those without them and their coefficients are 0; their
        learned ranges become ``±DROPPED`` (:func:`dropped`), so rows are judged whatever their
        values."""
        if self._fitted:
            raise RuntimeError("drop() after fit()")
        j = list(features)
        self._zero(j)
        self.lo[j], self.hi[j] = -DROPPED, DROPPED
        for _, _, sx, _ in self.windows or ():
            sx[j] = 0.0

    def _zero(self, features: list[int]) -> None:
        """The normal equations' sums of ``features`` set to 0 (out of the fit)."""
        self.xtx[features, :] = 0.0
        self.xtx[:, features] = 0.0
        self.xty[features] = 0.0

    @property
    def proportional(self) -> bool:
        """Has the fit no constant (feature 0 dropped, :meth:`drop`)? Then the quantity is
        modelled in proportion to a feature (ΔT to the compressor's current, ``speed.py``), and
        a window's shift reads relative to what the fit expects of it (:meth:`window_shift`)."""
        return bool(proportional(self.lo, self.hi))

    def window_shift(self, n: int, sx: np.ndarray, sy: float) -> float:
        """A window's mean residual as the detectors judge it: as it is, or for a
        :attr:`proportional` fit over the window's expected value times the level, so that a
        loss of a tenth reads as a tenth of the level whether the window expected much or
        little (a compressor at its top speed or its lowest)."""
        residual = self.window_residual(n, sx, sy)
        if not self.proportional:
            return residual
        expected = self.window_expected(n, sx)
        return residual * self.level / expected if expected > 0.0 else residual

    def window_residual(self, n: int, sx: np.ndarray, sy: float) -> float:
        assert self.beta is not None
        return (sy - float(sx @ self.beta)) / n

    def window_expected(self, n: int, sx: np.ndarray) -> float:
        assert self.beta is not None
        return float(sx @ self.beta) / n
