"""The shape shared by the baseline-shift detectors (cooling decline, noise rise, vibration rise).

Learn the unit's own baseline for like conditions (:class:`LinearBaseline`) over its first
``learn_s`` of valid readings, then judge each window of ``window_s``: the mean residual against
the baseline feeds a one-sided CUSUM (:class:`WindowCusum`); when it crosses ``h`` the detector
reports the fault once, with its evidence. While the fault stands, ``clear_windows`` windows in a
row back near the baseline report it cleared (``Finding.active = False``), which is what fix
verification listens for.

A unit that changed while it learned (an installation leak) keeps the baseline from before the
change: ``learned_step`` and ``learning_step.py``, which says where that stops. The learning
windows after the change are then judged at once (:meth:`BaselineShift._judge_learned`): the
CUSUM hears them at the learning end, and a finding they raise comes with the block that ends
learning instead of ``min_windows`` windows later (S23: about 5 h sooner in the test's units).

A detector may learn more than one model of its quantity and keep one at the end of learning
(:meth:`unused_features`, ``LinearBaseline.drop``): the cooling detector's fixed- and
variable-speed models (``speed.py``). A model without a constant (ΔT in proportion to the
compressor's current) is judged in proportion: each window's residual over what the baseline
expects of it, times the level (``LinearBaseline.window_shift``). A detector whose ``_rows``
moves a row back to what the unit learned (the cooling detector's inverter units at a setpoint
beyond those they learned at) corrects its monitored quantity in :meth:`corrected`.

After learning, only windows at conditions the baseline has seen (its learned range widened by
``range_margin`` of its width) are judged, with one exception: ``extrapolated`` features, whose
effect on the monitored quantity has a known sign (a coil's sensible ΔT rises with the air it
takes in and falls with the airflow). Rows outside the range in such features alone are judged
against the baseline at the range's nearer end, extrapolated with the slope that errs away from
the fault (``extrapolate.py``: the gentler of the unit's and its fleet's slope where the
prediction rises, the steeper where it falls, and there only within a fleet).

The seasons move a unit out of that range (installed in a mild week, running through the
summer), so rows just beyond it, within a further ``extend_margin`` of its width, are collected
window by window (:class:`WindowMoments`) and a closed window of them (at least ``min_count``
rows) is folded into the baseline (:meth:`LinearBaseline.extend`: sums, range, refit) when the
unit looks healthy:

- no fault stands and the CUSUM holds no evidence (statistic at most ``k``), and
- the window's own mean residual against the current fit is not in the fault's direction by more
  than the larger of ``k`` sigma and half the practical minimum shift (what the CUSUM counts as
  "back at the baseline"): a fault that coincides with a heat wave is not learned as normal.

So the range grows only next to itself (at most ``range_margin + extend_margin`` of its width per
window) and never from windows inside it: a slow decline at known conditions cannot be absorbed.
The CUSUM's scale (``sigma``) and practical threshold stay as learned. A feature the unit never
varied while learning (a fan that always ran at one speed) has a range of zero width, so it is
not extended from the unit's own rows: alone, those conditions stay unjudged. Within a fleet
(:meth:`BaselineShift.update_pooled`, as the bank's columns run it) a detector kind with
``fleet_prior`` takes such a feature's effect from the fleet's other units (``prior.py``) and
judges those conditions with it. ``extend_margin = 0`` turns extension off.

Each window's mean residual (the learning windows' once the baseline is fitted, then each judged
window's) is also kept for the last ``trend_windows`` windows (48 h at the defaults; ``trend.py``):
a finding carries their Theil–Sen slope per day and Mann–Kendall p-value (``trend_per_day``,
``trend_p``), the trend test that tells a steady decline from a step.

A window counts (is learned from, judged, or folded in) when it holds enough valid rows:
``min_count`` at the 60-s period the detectors' settings were chosen at (5 rows: 5 minutes of
steady readings), scaled to the sampling period of the block that closes it (the median step of
its timestamps; 30 rows at 10 s, 300 at 1 Hz), and never fewer than two rows (one odd reading is
not a mean). A count of rows alone means something else at
every period: at 5-minute sampling a 3 h window has 36 readings, and a lightly loaded unit's
cooling detector keeps only those taken after 5 minutes of a compressor run, a few per window;
5 rows there are 25 minutes of steady running, which such a unit rarely gathers, so its learning
ran on for days, until a leak that began meanwhile was learned as its normal and widened its
scale. The scale (``sigma``) is learned from the same kind of windows and the CUSUM needs
``min_windows`` of them (``cusum.py``), so sparse windows widen the scale rather than alarm.

A subclass names its fault and direction and turns a block into ``(ts, x, y)``: the valid rows,
their condition features and the monitored quantity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from cloud.anomaly.base import Block, Finding
from cloud.anomaly.baseline import LinearBaseline, Moments, WindowMoments, WindowSums
from cloud.anomaly.compact import Compact
from cloud.anomaly.cusum import WindowCusum
from cloud.anomaly.extrapolate import into_range, range_slopes
from cloud.anomaly.learning_step import Step, find_steps
from cloud.anomaly.prior import FeaturePrior
from cloud.anomaly.trend import RecentWindows

_REFERENCE_PERIOD_S = 60.0  # the sampling period ``min_count`` is stated at
_MIN_ROWS = 2  # the fewest rows a window's mean is taken over, at any period
# the longest a unit at the end of learning waits for its fleet's word (``waits``): a fleet's
# units that finished learning in the same hours have told it by then, a small fleet never will
WAIT_S = 6 * 3600.0

# what :meth:`BaselineShift._rows_many` gives: valid rows, features, monitored quantity, carry
RowsMany = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Carry = np.ndarray  # blocks × BaselineShift._carry: each unit's carried values


class BaselineShift(Compact):
    fault = ""
    direction = -1
    n_features = 1
    # the columns a block must have to be judged (:meth:`_rows_many`), and the unit's state
    # that :meth:`_rows` carries from one block to the next (floats or bools)
    needs: tuple[str, ...] = ()
    # columns read where a block has them (the columns' path sends a block without one through
    # the reference object, whose :meth:`_rows` reads the absence)
    optional: tuple[str, ...] = ()
    _carry: tuple[str, ...] = ()
    # does a unit take the fleet's effect of a feature it never varied (``prior.py``)? Only
    # where each feature is one quantity whose effect scales with the unit's level
    fleet_prior = False
    # is the unit's learned level compared with its model's other batches (``peers.py``)? Only
    # where healthy batches of a model learn alike (cooling capacity: a manufacturing tolerance)
    peer_levels = False
    # features whose effect on the monitored quantity has a known sign (+1 rising, -1 falling):
    # rows outside the trusted range in them alone are judged against the baseline at the
    # range's nearer end, extrapolated with the slope that errs away from the fault
    # (:meth:`bounded`, :meth:`range_slopes`)
    extrapolated: tuple[tuple[int, float], ...] = ()  # (feature, sign of its effect)
    # slots of the fleet prior after the features, for effects the kind reads from its units
    # past learning (:meth:`offer_effects`; the cooling detector's setpoint effect)
    prior_slots = 0
    # in a fit without a constant (``LinearBaseline.proportional``), the feature the quantity is
    # in proportion to: rows below its learned minimum are not judged, margin or not
    # (:meth:`trusted`; the cooling detector's current); None: no such floor
    floor: int | None = None
    # does the step search at the end of learning also read a step against the windows after
    # it alone (``learning_step._after_fit``)? Measured for cooling only
    after_steps = False

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
        "extend_margin",
        "trend_windows",
        "step_t",
        "step_side",
        "_sums",
        "_baseline",
        "_cusum",
        "_first_ts",
        "_learning",
        "_active",
        "_onset",
        "_clear_run",
        "_beyond",
        "_recent",
    )
    _config = frozenset(__slots__[:16])  # the constructor arguments

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
        extend_margin: float = 0.5,
        trend_windows: int = 16,
        step_t: float = 4.0,
        step_side: int = 2,
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
        self.extend_margin = extend_margin
        self.trend_windows = trend_windows
        self.step_t = step_t
        self.step_side = step_side
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
        # the open window of rows beyond the trusted range; None while there is none (most of
        # the time for most units: no per-unit arrays for it)
        self._beyond: WindowMoments | None = None
        self._recent = RecentWindows(self.trend_windows, self.window_s)  # for the trend test

    @property
    def learning(self) -> bool:
        return self._learning

    @property
    def active(self) -> bool:
        return self._active

    def _rows(self, block: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def update_pooled(self, block: Block, prior: FeaturePrior) -> list[Finding]:
        """:meth:`update` within a fleet: first take the fleet's coefficient of any feature the
        unit never varied (:meth:`use_prior`); past learning, offer ``prior`` what the block's
        rows off such a feature's learned value say of its effect (:meth:`_offer`); once the
        unit finishes learning, hand ``prior`` its coefficients. ``prior`` counts both from its
        next ``commit``."""
        if not self.fleet_prior:
            return self.update(block)
        self.use_prior(prior, block.device)
        learning = self._learning
        out = self._update(block, prior)
        if learning and not self._learning:
            prior.learn(block.device, self._baseline)
        return out

    def use_prior(self, prior: FeaturePrior, device: str) -> bool:
        """Past learning, pin each feature whose learned range has zero width to the fleet's
        coefficient (``prior.py``), when the fleet has one: the feature's range becomes the
        fleet's, and the CUSUM's scale widens by the prior's uncertainty over half that range.
        A feature pinned before follows the fleet's range as it grows. Returns whether anything
        was taken."""
        if self._learning:
            return False
        b, c = self._baseline, self._cusum
        for j in sorted(prior.pinned(device)):
            b.lo[j] = min(b.lo[j], prior.seen_lo[j])
            b.hi[j] = max(b.hi[j], prior.seen_hi[j])
        took = False
        for j in np.flatnonzero((b.hi == b.lo) & prior.available()).tolist():
            got = prior.get(j)
            assert got is not None
            ratio, spread, lo, hi = got
            b.pin(j, ratio * b.level, lo, hi)
            prior.pin(device, j)
            if c.sigma is not None:
                c.sigma = math.hypot(c.sigma, spread * abs(b.level) * (hi - lo) / 2)
            took = True
        return took

    def _rows_many(
        self,
        ts: np.ndarray,
        cols: Mapping[str, np.ndarray],
        lengths: np.ndarray,
        carry: Carry,
        learning: np.ndarray,
    ) -> RowsMany:
        """:meth:`_rows` of many units' blocks at once (``cloud/anomaly/columns.py``): blocks ×
        rows arrays, each block's rows padded with NaN after its ``lengths``; ``carry`` holds
        each unit's :attr:`_carry` values before its block, ``learning`` whether it is still
        learning. Returns the valid rows' mask, the features (blocks × rows ×
        ``n_features``), the monitored quantity and the carry after."""
        raise NotImplementedError

    def corrected(
        self,
        x: np.ndarray,
        y: np.ndarray,
        beta: np.ndarray,
        level: np.ndarray | float,
        proportional: np.ndarray | bool,
        prior: FeaturePrior | None,
    ) -> np.ndarray:
        """Past learning, the monitored quantity of rows (units × rows, or rows) that
        :meth:`_rows` moved back into what the unit learned, corrected along the unit's fitted
        coefficients ``beta`` (units × features) with the slope that errs away from the fault
        (``range_slopes``); NaN where no such slope is known (not judged). ``y`` itself where
        nothing was moved: by default, always."""
        return y

    def offer_effects(
        self,
        prior: FeaturePrior,
        device: str,
        x: np.ndarray,
        y: np.ndarray,
        like: np.ndarray,
        need: int,
    ) -> None:
        """Past learning, offer ``prior``'s extra slots (:attr:`prior_slots`) what this block's
        rows (``y`` as read, before :meth:`corrected`) say of their effects; none here."""

    def offer_rows(self, x: np.ndarray) -> np.ndarray:
        """The rows (any leading shape) from which :meth:`offer_effects` may read an effect: a
        superset, so the columns send their blocks through the reference; none here."""
        return np.zeros(x.shape[:-1], dtype=bool)

    def min_rows(self, ts: np.ndarray) -> int:
        """The valid rows a window needs, at the sampling period of a block stamped ``ts``:
        ``min_count`` at 60 s scaled to the period, at least two (``min_count`` itself when the
        block shows no period: a single row)."""
        steps = np.diff(ts)
        steps = steps[np.isfinite(steps) & (steps > 0.0)]
        if not len(steps):
            return self.min_count
        period = float(np.median(steps))
        return max(_MIN_ROWS, math.ceil(self.min_count * _REFERENCE_PERIOD_S / period - 1e-9))

    def min_rows_many(self, ts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """:meth:`min_rows` of many blocks at once (blocks × rows, each block's ``lengths``
        rows first): one median per row where every step of a full row is a positive number
        (the same value as the row's own median), the row's own call otherwise."""
        steps = np.diff(ts, axis=1)
        regular = (lengths == ts.shape[1]) & (steps > 0.0).all(axis=1)  # NaN > 0 is False
        need = np.empty(len(ts))
        if regular.any() and steps.shape[1]:
            period = np.median(steps[regular], axis=1)
            rows = np.ceil(self.min_count * _REFERENCE_PERIOD_S / period - 1e-9)
            need[regular] = np.maximum(_MIN_ROWS, rows)
        for i in np.flatnonzero(~regular | (steps.shape[1] == 0)).tolist():
            need[i] = self.min_rows(ts[i, : lengths[i]])
        return need

    def update(self, block: Block) -> list[Finding]:
        return self._update(block, None)

    def _update(self, block: Block, prior: FeaturePrior | None) -> list[Finding]:
        ts, x, y = self._rows(block)
        if len(ts) == 0:
            return []
        if self._first_ts is None:
            self._first_ts = float(ts[0])
        if prior is not None:
            prior.see(x.min(axis=0), x.max(axis=0))
        need = self.min_rows(block.ts)
        if self._learning:
            return self._learn(block.device, ts, x, y, need, prior)
        # judge only like conditions: those the baseline has seen
        b = self._baseline
        moved = self.corrected(x, y, b.beta, b.level, b.proportional, prior)
        known = np.isfinite(moved)  # rows moved without a known slope are not used
        like = self.trusted(x) & known
        if prior is not None:
            self._offer(prior, block.device, x, moved, like, need)
            if self.prior_slots:
                self.offer_effects(prior, block.device, x, y, like, need)
        y = moved
        xb, yb, judged = self.bounded(x, y, like, prior)
        out = self.judge_rows(block.device, ts[judged], xb[judged], yb[judged], need)
        if self.extend_margin > 0:
            self._extend(ts, x, y, ~like & known, need)
        return out

    def bounded(
        self, x: np.ndarray, y: np.ndarray, like: np.ndarray, prior: FeaturePrior | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Past learning, the rows to judge: ``like`` and the rows that lie outside the trusted
        range (the learned range widened by ``range_margin``) in :attr:`extrapolated` features
        alone, judged against the baseline at the range's nearer end extrapolated with
        :meth:`range_slopes` (:func:`into_range`). Returns the features, the monitored quantity
        and the rows to judge; with no row outside, ``x``, ``y`` and ``like`` as they are."""
        if not self.extrapolated:
            return x, y, like
        b, cols = self._baseline, [j for j, _ in self.extrapolated]
        pad = self.range_margin * (b.hi[cols] - b.lo[cols])
        bottom, top = b.lo[cols] - pad, b.hi[cols] + pad
        v = x[:, cols]
        if not ((v > top) | (v < bottom)).any():
            return x, y, like  # nothing outside the range: the common case, no copies
        below, above = self.range_slopes(b.beta[cols], b.level, prior)
        xb, yb = into_range(x, y, cols, bottom, top, below, above)
        return xb, yb, self.trusted(xb) & np.isfinite(yb)

    def trusted(self, x: np.ndarray) -> np.ndarray:
        """Past learning, the rows within the trusted range: the learned range widened by
        ``range_margin``, and for a proportional fit not below the learned minimum of
        :attr:`floor`."""
        b = self._baseline
        like = b.within(x, self.range_margin)
        if self.floor is not None and b.proportional:
            like &= x[:, self.floor] >= b.lo[self.floor]
        return like

    def range_slopes(
        self, beta: np.ndarray, level: np.ndarray | float, prior: FeaturePrior | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The slopes each :attr:`extrapolated` feature is extrapolated with below and above the
        range (:func:`~cloud.anomaly.extrapolate.range_slopes`), the fleet's from ``prior``."""
        fleet = np.full(len(self.extrapolated), np.nan)
        if prior is not None:
            for i, (j, _) in enumerate(self.extrapolated):
                got = prior.get(j)
                fleet[i] = got[0] if got is not None else np.nan
        signs = np.array([sign for _, sign in self.extrapolated])
        return range_slopes(beta, level, fleet, signs)

    def judge_rows(
        self, device: str, ts: np.ndarray, x: np.ndarray, y: np.ndarray, need: int | float
    ) -> list[Finding]:
        """Past learning: add rows of like conditions to their windows, and judge each window
        they close that holds at least ``need`` rows."""
        out = []
        for start, n, sx, sy in self._sums.add(ts, x, y):
            if n >= need:
                f = self._judge(device, start, n, sx, sy)
                if f is not None:
                    out.append(f)
        return out

    def offers(self, x: np.ndarray, like: np.ndarray) -> np.ndarray:
        """Per feature of zero learned width, the rows that lie off its learned value while
        every other feature lies within the range extension reaches (``range_margin +
        extend_margin``; the other zero-width features at their learned values): rows from
        which that feature's effect can be read against the baseline (features × rows)."""
        b = self._baseline
        zero = b.hi == b.lo
        pad = (self.range_margin + self.extend_margin) * (b.hi - b.lo)
        inside = (x >= b.lo - pad) & (x <= b.hi + pad)  # a zero-width feature: at its value
        out = np.zeros((self.n_features, len(x)), dtype=bool)
        for j in np.flatnonzero(zero).tolist():
            others = np.delete(inside, j, axis=1).all(axis=1)
            out[j] = ~like & others & np.isfinite(x[:, j]) & (x[:, j] != b.lo[j])
        return out

    def _offer(
        self,
        prior: FeaturePrior,
        device: str,
        x: np.ndarray,
        y: np.ndarray,
        like: np.ndarray,
        need: int,
    ) -> None:
        """Offer ``prior`` this block's reading of each zero-width feature's effect: the mean
        residual of the rows off its learned value (at least ``need``), against the baseline's
        prediction at the learned value, relative to ``level``, per unit of the feature."""
        b = self._baseline
        if not (b.hi == b.lo).any() or b.beta is None or not b.level:
            return
        for j, sel in enumerate(self.offers(x, like)):
            if sel.sum() < need or not prior.wants(device, j):
                continue
            xs = x[sel].copy()
            step = float(np.mean(xs[:, j] - b.lo[j]))
            if step == 0.0:
                continue
            xs[:, j] = b.lo[j]
            residual = float(np.mean(y[sel]) - np.mean(xs @ b.beta))
            lo, hi = float(np.min(x[sel, j])), float(np.max(x[sel, j]))
            prior.offer(device, j, residual / b.level / step, min(lo, b.lo[j]), max(hi, b.lo[j]))

    def _learn(
        self,
        device: str,
        ts: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        need: int,
        prior: FeaturePrior | None,
    ) -> list[Finding]:
        """Take a block's rows into the learning sums; at the end of learning, fit
        (:meth:`_freeze`) and return what the windows after a learned step already show."""
        assert self._first_ts is not None
        closed = self._sums.add(ts, x, y)
        b = self._baseline
        b.add(x, y)
        for start, n, sx, sy in closed:
            if n >= need:
                b.add_window(start, n, sx, sy)
        learned_s = ts[-1] - self._first_ts
        if (
            learned_s >= self.learn_s
            and b.windows is not None
            and len(b.windows) >= self.min_learn_windows
            and not (learned_s < self.learn_s + WAIT_S and self.waits(prior))
        ):
            return self._freeze(prior, device, float(ts[-1]))
        return []

    def _extend(
        self, ts: np.ndarray, x: np.ndarray, y: np.ndarray, beyond: np.ndarray, need: int
    ) -> None:
        """Collect the rows just beyond the trusted range; fold in the windows they complete."""
        near = beyond & self._baseline.within(x, self.range_margin + self.extend_margin)
        pending = self._beyond
        closed: list[Moments] = []
        if near.any():
            if pending is None:
                pending = self._beyond = WindowMoments(self.window_s, self.n_features)
            closed = pending.add(ts[near], x[near], y[near])
        if pending is not None:
            closed += pending.close_before(float(np.max(ts)))
            if not pending.n:
                self._beyond = None
        for m in closed:
            if self._healthy(m, need):
                self._baseline.extend(m)

    def _healthy(self, m: Moments, need: int) -> bool:
        """May this window beyond the range (of ``m.n`` rows, ``need`` needed) be learned as
        the unit's normal?"""
        c = self._cusum
        if m.n < need or self._active or c.statistic > self.k:
            return False
        level = self._baseline.window_shift(m.n, m.sx, m.sy)
        return self.direction * level <= max(self.k * (c.sigma or 0.0), c.min_shift / 2)

    def learned_step(self) -> Step | None:
        """At the end of learning: a step in the fault's direction within the learning
        windows, at least ``step_side`` windows from either end, ``step_t`` standard errors
        and the practical minimum shift large (a unit that changed while it learned), or
        None. Of the readings that pass (``find_steps``), the largest: one through a wrong
        slope or at a split a few windows off reads a part of the step."""
        if not math.isfinite(self.step_t):
            return None
        # the reading after the split: not extrapolated beyond the range a baseline is judged
        # in and grows into
        margin = self.range_margin + self.extend_margin if self.after_steps else None
        steps = find_steps(self._baseline, self.direction, self.step_side, after_margin=margin)
        passed = [
            step
            for step in steps
            if step.t >= self.step_t
            and abs(step.delta) >= max(self.min_shift, self.min_shift_fraction * abs(step.level))
        ]
        return max(passed, key=lambda step: abs(step.delta), default=None)

    def unused_features(self, xtx: np.ndarray, prior: FeaturePrior | None = None) -> np.ndarray:
        """At the end of learning: which features the unit's fit leaves out
        (``LinearBaseline.drop``), from the normal equations' Σxxᵀ of the rows it learned (any
        leading shape: one mask per set of sums) and what the unit's fleet chose (``prior``). A
        detector with more than one model of its quantity chooses here (``speed.py``); by
        default, none."""
        return np.zeros(np.shape(xtx)[:-1], dtype=bool)

    def waits(self, prior: FeaturePrior | None) -> bool:
        """At the end of learning: does the unit wait for its fleet's word before it chooses
        (:meth:`unused_features`; at most ``WAIT_S``)? By default, no."""
        return False

    def _freeze(
        self, prior: FeaturePrior | None = None, device: str | None = None, now: float = math.nan
    ) -> list[Finding]:
        """End learning: choose the model, search the learning windows for a step, fit, and
        calibrate the CUSUM. With ``device``, the windows after a learned step are judged at
        once against the unit before it (:meth:`_judge_learned`), and a finding they raise is
        stamped ``now``, the learning end, when it is first known."""
        b = self._baseline
        unused = self.unused_features(b.xtx, prior)
        if unused.any():
            b.drop(np.flatnonzero(unused).tolist())
        step = self.learned_step()
        windows = b.windows or []
        learned = b.fit() if step is None else b.fit(step.split, step.delta)
        for start, residual in learned:  # the trend test starts with the learning windows
            self._recent.add(start, residual)
        scale = abs(b.level) if math.isfinite(b.level) else 0.0
        sigma = b.sigma if math.isfinite(b.sigma) else 0.0
        self._cusum.calibrate(
            max(sigma, self.sigma_floor, self.sigma_floor_fraction * scale),
            max(self.min_shift, self.min_shift_fraction * scale),
        )
        self._learning = False
        if step is None or device is None:
            return []
        return self._judge_learned(device, now, windows[step.split :], learned[step.split :])

    def _judge_learned(
        self,
        device: str,
        now: float,
        windows: list[tuple[float, int, np.ndarray, float]],
        residuals: list[tuple[float, float]],
    ) -> list[Finding]:
        """The learning windows after a learned step, judged as the windows after learning
        are: each one's residual against the unit before the step into the CUSUM. They show
        the unit as it now is, the step search has already found them beyond the practical
        minimum, and otherwise the CUSUM would wait for ``min_windows`` more windows after
        learning to hear what it already holds (``learning_step.py``, S23). A finding is
        stamped ``now`` (its onset is the run's start, within learning)."""
        alarm, last = None, None
        for (start, n, sx, sy), (_, residual) in zip(windows, residuals, strict=True):
            alarm = self._cusum.update(start, residual, self.window_s) or alarm
            last = (n, sx, sy)
        if alarm is None or last is None:
            return []
        self._active, self._onset, self._clear_run = True, alarm.onset_ts, 0
        n, sx, sy = last
        return [self._finding(device, now, n, sx, sy, alarm.statistic, True)]

    def _judge(
        self, device: str, start: float, n: int, sx: np.ndarray, sy: float
    ) -> Finding | None:
        level = self._baseline.window_shift(n, sx, sy)
        self._recent.add(start, level)
        alarm = self._cusum.update(start, level, self.window_s)
        end = start + self.window_s
        if not self._active:
            if alarm is None:
                return None
            self._active, self._onset, self._clear_run = True, alarm.onset_ts, 0
            return self._finding(device, end, n, sx, sy, alarm.statistic, True)
        if self.direction * level < self._cusum.min_shift / 2:
            self._clear_run += 1
        else:
            self._clear_run = 0
        if self._clear_run < self.clear_windows:
            return None
        self._active = False
        self._cusum.restart()
        return self._finding(device, end, n, sx, sy, 0.0, False)

    def _finding(
        self,
        device: str,
        ts: float,
        n: int,
        sx: np.ndarray,
        sy: float,
        statistic: float,
        active: bool,
    ) -> Finding:
        expected = self._baseline.window_expected(n, sx)
        residual = self._baseline.window_residual(n, sx, sy)
        trend_per_day, trend_p = self._recent.trend()
        evidence = {
            "baseline": expected,
            "current": sy / n,
            "change": residual,  # in the quantity's units; the CUSUM judged its ``window_shift``
            "change_fraction": residual / expected if expected else math.nan,
            "sigma": float(self._cusum.sigma or math.nan),
            "statistic": statistic,
            "readings": float(n),
            "trend_per_day": trend_per_day,
            "trend_p": trend_p,
        }
        score = 1.0 - math.exp(-statistic / self.h) if active else 0.0
        return Finding(device, self.fault, ts, self._onset, score, evidence, active)
