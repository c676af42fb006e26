"""Fleet-wide detector state: one row per device in a few arrays, each detector run once per batch.

The per-device detector classes (``shift.py``, ``stuck.py``, ...) are the reference: small
objects a reader can follow. A worker tracking 100,000 devices cannot afford an object graph per
device and detector, nor a dozen small numpy calls per detector and block. So the bank
(``bank.py``) keeps each kind of detector's state here, as columns:

- :class:`ShiftColumns` holds the state of one baseline-shift detector kind (cooling decline,
  noise rise, vibration rise) for every device as arrays with one row per device (window sums,
  the baseline's parameters, the CUSUM, the recent window levels), and judges a batch of blocks
  (one per device) with a few numpy calls over all of them. The common case is vectorised: rows
  that fall inside the current window and the learned range. Past learning, a block that closes
  a window hands the rows taken here to the reference object's window sums and judge; a block
  that closes a learning window, ends the learning period, lies beyond the learned range, or
  lacks a column goes through the reference object's whole update — built from the device's
  row, updated, written back — so the rare paths are the reference's own code. The kind's
  fleet prior (``prior.py``: the effect of a feature a unit never varied) is the columns' own,
  shared by the rows; a block that may take from it or give to it goes through the reference
  too. Sums over a batch are taken in another order than a block's own numpy sums, so figures
  agree with the reference to rounding, not bit for bit.
- :class:`~cloud.anomaly.stuck_columns.StuckColumns` (its own module) holds ``sensor_stuck``'s
  per-field run state for every device over the union of the devices' fields; a block in which
  some field's run may trip or clear (the only blocks with findings), a field new to the device,
  or the end of learning goes through the reference object the same way.
- :class:`ObjectColumns` keeps one reference object per device (the generic detector), with the
  same interface.

Each exports a device's state as the reference object (``export``) and takes one back
(``load``: a checkpoint written before the columns), and gives a device's row as a few arrays
for its checkpoint (``save``, ``restore``), so a device's state still moves alone when its
partition moves.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np

from cloud.anomaly.base import Block, Detector, Finding
from cloud.anomaly.baseline import WindowMoments, dropped, proportional
from cloud.anomaly.batch import Batch
from cloud.anomaly.extrapolate import into_range
from cloud.anomaly.prior import FeaturePrior
from cloud.anomaly.shift import BaselineShift
from cloud.anomaly.stuck import SensorStuck
from cloud.anomaly.stuck_columns import StuckColumns

# columns of ShiftColumns._s (None is NaN for the optional times)
_FIRST = 0  # first valid reading's time (NaN: none yet)
_LEARNING = 1
_ACTIVE = 2
_ONSET = 3
_CLEAR_RUN = 4
_START = 5  # the open window's start (NaN: none yet)
_N = 6  # rows in the open window
_SY = 7  # their Σy
_BASE_N = 8  # rows the baseline learned
_FITTED = 9
_LEVEL = 10
_SIGMA = 11
_C_SIGMA = 12  # the CUSUM's scale (NaN: not calibrated)
_C_MIN_SHIFT = 13
_C_STAT = 14
_C_RUN = 15  # start of the CUSUM's run of evidence (NaN: none)
_NEWEST = 16  # start of the newest recent window (NaN: none)
_CARRY = 17  # then the subclass's carried values (BaselineShift._carry)


def _opt(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _unopt(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


class ObjectColumns:
    """One reference detector object per device row (for detectors without a columnar form)."""

    def __init__(self, make: Callable[[], Detector]) -> None:
        self.make = make
        self._kind = type(make())
        self._objects: list[Detector] = []

    def add(self) -> int:
        self._objects.append(self.make())
        return len(self._objects) - 1

    def kind(self) -> type:
        return self._kind

    def load(self, row: int, det: object) -> None:
        if type(det) is not self._kind:
            raise ValueError(f"a {type(det).__name__} where a {self._kind.__name__} was")
        self._objects[row] = det  # type: ignore[assignment]

    def export(self, row: int) -> Detector:
        return self._objects[row]

    def save(self, row: int) -> Detector:
        """What a checkpoint keeps of ``row``: here the object itself."""
        return self._objects[row]

    restore = load

    def update_many(self, rows: Sequence[int], batch: Batch) -> list[list[Finding]]:
        return [self._objects[r].update(b) for r, b in zip(rows, batch.blocks, strict=True)]


class ShiftColumns:
    """The state of one :class:`BaselineShift` kind for every device, one row each."""

    def __init__(self, make: Callable[[], BaselineShift]) -> None:
        proto = make()
        self.make = make
        self.proto = proto
        k = proto.n_features
        self._rows = 0
        self._s = np.empty((0, _CARRY + len(proto._carry)))
        self._sx = np.empty((0, k))  # the open window's Σx
        self._params = np.empty((0, k + 4, k))  # LinearBaseline._params
        self._levels = np.empty((0, proto.trend_windows), dtype=np.float32)
        # row -> learning windows, a row (start, n, Σy, Σx...) each (absent: none yet)
        self._windows: dict[int, np.ndarray] = {}
        self._beyond: dict[int, WindowMoments] = {}  # row -> open window beyond the range
        self._blank = self._row_of(proto)  # a fresh detector's row
        self._scratch = make()  # the slow path's reference object
        # the fleet's effects of features a unit never varied (prior.py), shared by the rows;
        # committed once per batch
        self.prior = FeaturePrior(k, extra=proto.prior_slots)
        self._pinned = np.zeros((0, k), dtype=bool)  # row -> features it took the fleet's of

    def kind(self) -> type:
        return type(self.proto)

    def _grow(self, need: int) -> None:
        cap = len(self._s)
        if need <= cap:
            return
        cap = max(need, cap + max(1024, cap // 8))  # a few % spare at 100,000 rows
        for name in ("_s", "_sx", "_params", "_levels", "_pinned"):
            old = getattr(self, name)
            new = np.empty((cap, *old.shape[1:]), dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def add(self) -> int:
        row = self._rows
        self._grow(row + 1)
        self._rows += 1
        self._set_row(row, self._blank)
        self._pinned[row] = False
        return row

    # --- between a row and a reference object ---------------------------------------------

    def _row_of(self, det: BaselineShift) -> tuple:
        s = np.empty(self._s.shape[1])
        b, c, r, w = det._baseline, det._cusum, det._recent, det._sums
        s[_FIRST], s[_LEARNING], s[_ACTIVE] = _opt(det._first_ts), det._learning, det._active
        s[_ONSET], s[_CLEAR_RUN] = det._onset, det._clear_run
        s[_START], s[_N], s[_SY] = _opt(w.start), w.n, w.sy
        s[_BASE_N], s[_FITTED], s[_LEVEL], s[_SIGMA] = b.n, b._fitted, b.level, b.sigma
        s[_C_SIGMA], s[_C_MIN_SHIFT] = _opt(c.sigma), c.min_shift
        s[_C_STAT], s[_C_RUN] = c.statistic, _opt(c._run_start)
        s[_NEWEST] = _opt(r._newest)
        for k, name in enumerate(det._carry):
            s[_CARRY + k] = getattr(det, name)
        return s, w.sx, b._params, r._levels, b.windows, det._beyond

    def _set_row(self, row: int, values: tuple) -> None:
        s, sx, params, levels, windows, beyond = values
        self._s[row], self._sx[row], self._params[row], self._levels[row] = s, sx, params, levels
        self._windows.pop(row, None)
        if windows:  # one small array instead of a tuple, an array and three numbers each
            self._windows[row] = np.array([(t, n, y, *x) for t, n, x, y in windows])
        self._beyond.pop(row, None)
        if beyond is not None:
            self._beyond[row] = beyond

    def load(self, row: int, det: BaselineShift) -> None:
        """Take ``det``'s state into ``row``."""
        if type(det) is not type(self.proto) or det.n_features != self.proto.n_features:
            raise ValueError(f"a {type(det).__name__} where a {type(self.proto).__name__} was")
        self._set_row(row, self._row_of(det))

    def save(self, row: int) -> tuple:
        """What a checkpoint keeps of ``row``: its numbers as one float64 and one float32 array,
        the learning windows and the open window beyond the range (None when there are none)."""
        flat = np.concatenate((self._s[row], self._sx[row], self._params[row].ravel()))
        return flat, self._levels[row].copy(), self._windows.get(row), self._beyond.get(row)

    def restore(self, row: int, saved: tuple) -> None:
        """Take back what :meth:`save` gave (``ValueError`` if its shapes are not this kind's)."""
        flat, levels, windows, beyond = saved
        a, b = self._s.shape[1], self._s.shape[1] + self._sx.shape[1]
        if flat.shape != (b + self._params[0].size,) or levels.shape != self._levels[0].shape:
            raise ValueError(f"a {type(self.proto).__name__} state of another shape")
        self._s[row], self._sx[row] = flat[:a], flat[a:b]
        self._params[row] = flat[b:].reshape(self._params.shape[1:])
        self._levels[row] = levels
        self._windows.pop(row, None)
        if windows is not None:
            self._windows[row] = np.array(windows, dtype=float)  # its own copy
        self._beyond.pop(row, None)
        if beyond is not None:
            self._beyond[row] = beyond

    def rejoin_prior(self, row: int, device: str) -> None:
        """A row restored past learning hands its coefficients to the fleet prior again, as
        it did when it finished learning (``FeaturePrior.learn_values``): the prior is in
        memory only, and without this a restarted worker would have none until ten new units
        finished learning."""
        if not self.proto.fleet_prior or self._s[row, _LEARNING] or not self._s[row, _FITTED]:
            return
        params = self._params[row]
        self.prior.learn_values(
            device, params[2], float(self._s[row, _LEVEL]), params[0], params[1]
        )

    def export(self, row: int, into: BaselineShift | None = None) -> BaselineShift:
        """The reference object with ``row``'s state (a new one unless ``into``)."""
        det = self.make() if into is None else into
        s = self._s[row].tolist()
        b, c, r, w = det._baseline, det._cusum, det._recent, det._sums
        det._first_ts, det._learning = _unopt(s[_FIRST]), bool(s[_LEARNING])
        det._active, det._onset, det._clear_run = bool(s[_ACTIVE]), s[_ONSET], int(s[_CLEAR_RUN])
        w.start, w.n, w.sy, w.sx = _unopt(s[_START]), int(s[_N]), s[_SY], self._sx[row].copy()
        b.n, b._fitted, b.level, b.sigma = int(s[_BASE_N]), bool(s[_FITTED]), s[_LEVEL], s[_SIGMA]
        b._params = self._params[row].copy()
        if b._fitted:
            b.windows = None
        else:
            b.windows = [
                (t, int(n), w[3:].copy(), y)
                for w in self._windows.get(row, ())
                for t, n, y in [w[:3].tolist()]
            ]
        c.sigma, c.min_shift = _unopt(s[_C_SIGMA]), s[_C_MIN_SHIFT]
        c.statistic, c._run_start = s[_C_STAT], _unopt(s[_C_RUN])
        r._newest, r._levels = _unopt(s[_NEWEST]), self._levels[row].copy()
        for k, name in enumerate(det._carry):
            v = s[_CARRY + k]
            setattr(det, name, type(getattr(self.proto, name))(v))
        beyond = self._beyond.get(row)
        det._beyond = beyond if into is not None or beyond is None else copy.deepcopy(beyond)
        return det

    def recent_shift(self, span: int) -> tuple[np.ndarray, np.ndarray]:
        """Read-only, for the pooled batch test (``pooled.py``): ``(rows, z)`` of the rows past
        learning with at least half of their last ``span`` windows judged, ``z`` the mean of
        those windows' residuals in the fault's direction, in units of the CUSUM's scale (the
        learned spread of one window's mean)."""
        s = self._s[: self._rows]
        levels = self._levels[: self._rows, -span:].astype(float)
        seen = np.isfinite(levels).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(levels, axis=1) / seen
            z = self.proto.direction * mean / s[:, _C_SIGMA]
        ok = (s[:, _LEARNING] == 0.0) & (2 * seen >= span) & np.isfinite(z)
        rows = np.flatnonzero(ok)
        return rows, z[rows]

    def learned(self, provisional_windows: int | None = None) -> tuple[np.ndarray, ...]:
        """Read-only, for the peer level test (``peers.py``): ``(rows, beta, mean, varied,
        learning)`` of the rows past learning: their fitted coefficients, the mean of the
        conditions their fit learned (the normal equations' first row over its count: feature 0
        is the constant) and whether their learned range of each feature has any width. With
        ``provisional_windows``, also the rows still learning that have that many learning
        windows, each with a provisional fit of its sums so far (``learning`` True)."""
        s, params = self._s[: self._rows], self._params[: self._rows]
        past = (s[:, _LEARNING] == 0.0) & (s[:, _FITTED] != 0.0)
        early = np.zeros_like(past)
        if provisional_windows is not None:  # the learning rows' windows, not every row's
            still = np.flatnonzero(s[:, _LEARNING] != 0.0)
            enough = [len(self._windows.get(r, ())) >= provisional_windows for r in still.tolist()]
            early[still[np.array(enough, dtype=bool)]] = True
        rows = np.flatnonzero(past | early)
        p, learning = params[rows], early[rows]
        beta = p[:, 2].copy()
        if learning.any():  # the fit the learning end would make now (``LinearBaseline.fit``)
            k, ridge = self.proto.n_features, self.proto._baseline.ridge
            sums = p[learning, 3 : 3 + k]
            unused = self.proto.unused_features(sums, self.prior)  # the learning end's models
            a = np.where(unused[:, :, None] | unused[:, None, :], 0.0, sums) + ridge * np.eye(k)
            rhs = np.where(unused, 0.0, p[learning, 3 + k])
            with np.errstate(invalid="ignore"):
                beta[learning] = np.linalg.solve(a, rhs[..., None])[..., 0]
        first = p[:, 3]  # Σx of the constant's row: (count, Σx_1, ...)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = first / first[:, :1]
        ok = np.isfinite(mean).all(axis=1) & np.isfinite(beta).all(axis=1)
        varied = (p[ok, 1] > p[ok, 0]) & ~dropped(p[ok, 0], p[ok, 1])
        return rows[ok], beta[ok], mean[ok], varied, learning[ok]

    def finish_learning(self, row: int, device: str) -> bool:
        """End ``row``'s learning now, as its learning end would (``BaselineShift._freeze``:
        the step search, the fit, the CUSUM's scale; the fleet prior is handed its
        coefficients), without waiting for the rest of ``learn_s``: the peer level test's
        verdict that the unit is short of its peers (``peers.py``), whose baseline's level then
        comes from them anyway. It needs the kind's ``min_learn_windows`` as any learning end
        does. The windows after a learned step are not judged here (``_judge_learned`` needs
        the block's device and time; the move that follows judges the unit against its peers
        anyway). False (nothing done) for a row past learning or with fewer windows."""
        if not self._s[row, _LEARNING]:
            return False
        if len(self._windows.get(row, ())) < self.proto.min_learn_windows:
            return False
        det = self.export(row, self._scratch)
        det._freeze(self.prior)
        self._set_row(row, self._row_of(det))
        if self.proto.fleet_prior:
            self.prior.learn(device, det._baseline)
        return True

    def move_baseline(self, row: int, delta: float) -> bool:
        """Move ``row``'s learned baseline by ``delta`` (in the monitored quantity's units), as
        if every row it learned had read ``delta`` more: the peer level test's verdict that the
        unit was born short of its model's other batches (``peers.py``). The normal equations'
        Σxy move with it (``xty += delta · Σx``, feature 0 the constant: a later refit gives
        ``beta_0 + delta``, to within the fit's ridge; a proportional fit, ``speed.py``, has no
        constant and is scaled instead), as do its level, the practical minimum
        taken from that level, and its recent windows' residuals; the CUSUM then judges the
        windows that follow against the moved baseline. False (nothing moved) for a row still
        learning."""
        s = self._s[row]
        if s[_LEARNING] or not s[_FITTED] or not np.isfinite(delta):
            return False
        p, k = self._params[row], self.proto.n_features
        if proportional(p[0], p[1]):  # no constant (``speed.py``)
            if not s[_LEVEL]:
                return False
            scale = (s[_LEVEL] + delta) / s[_LEVEL]  # beta and Σxy (a refit's) in proportion
            p[2] *= scale
            p[3 + k] *= scale
        else:
            p[3 + k] += delta * p[3]  # Σxy += delta · Σx (the constant's row of Σxxᵀ is Σx)
            p[2, 0] += delta
        s[_LEVEL] += delta
        proto = self.proto
        s[_C_MIN_SHIFT] = max(proto.min_shift, proto.min_shift_fraction * abs(s[_LEVEL]))
        self._levels[row] -= np.float32(delta)  # NaN (no window) stays NaN
        return True

    # --- judging ----------------------------------------------------------------------------

    def _pooling(
        self,
        batch: Batch,
        idx: np.ndarray,
        learning: np.ndarray,
        params: np.ndarray,
        ok: np.ndarray,
        like: np.ndarray,
        x: np.ndarray,
        rows: np.ndarray,
    ) -> np.ndarray:
        """The blocks the reference must see for the fleet's prior (``prior.py``): a unit past
        learning that takes the fleet's value of a zero-width feature now (``use_prior``), or
        whose block may offer the fleet a reading of one (``_offer``) or of an effect in its
        extra slots (``offer_effects``; a superset: the reference checks the row count)."""
        p, prior = self.proto, self.prior
        if not p.fleet_prior:
            return np.zeros(len(idx), dtype=bool)
        lo, hi = params[:, 0], params[:, 1]
        zero = (hi == lo) & ~learning[:, None]
        out = (zero & prior.available()).any(axis=1)
        # a feature taken from the fleet follows the fleet's range as it grows
        narrow = (lo > prior.seen_lo) | (hi < prior.seen_hi)
        out |= ~learning & (self._pinned[rows] & narrow).any(axis=1)
        if p.prior_slots:  # only a proportional fit past learning offers: scan those alone
            cand = np.flatnonzero(proportional(lo, hi) & ~learning & ~out)
            offers = (ok[cand] & p.offer_rows(x[cand])).any(axis=1)
            for i in cand[offers].tolist():
                device = batch.blocks[int(idx[i])].device
                out[i] = any(prior.wants(device, p.n_features + j) for j in range(p.prior_slots))
        if not zero.any():
            return out
        lo, hi = lo[:, None], hi[:, None]
        pad = (p.range_margin + p.extend_margin) * (hi - lo)
        with np.errstate(invalid="ignore"):
            inside = (x >= lo - pad) & (x <= hi + pad)
        for j in np.flatnonzero(zero.any(axis=0)).tolist():
            others = np.delete(inside, j, axis=2).all(axis=2)
            off = ok & ~like & others & np.isfinite(x[..., j]) & (x[..., j] != lo[..., j])
            maybe = np.flatnonzero(zero[:, j] & off.any(axis=1) & ~out)
            for i in maybe.tolist():
                out[i] = prior.wants(batch.blocks[int(idx[i])].device, j)
        return out

    def update_many(self, rows: Sequence[int], batch: Batch) -> list[list[Finding]]:
        """Judge ``batch`` (one block per device, of the devices in ``rows``, all different):
        each block's findings, as the reference's ``update`` would give them."""
        out: list[list[Finding]] = [[] for _ in rows]
        row = np.asarray(rows, dtype=np.intp)
        usable = np.ones(len(row), dtype=bool)
        for name in (*self.proto.needs, *self.proto.optional):
            has = batch.has.get(name)
            usable &= False if has is None else has
        usable &= batch.lengths > 0
        if self._beyond:
            usable &= [r not in self._beyond for r in rows]
        fast = np.flatnonzero(usable)
        slow = set(np.flatnonzero(~usable).tolist())
        if len(fast):
            left, found = self._fast(row, fast, batch)
            slow.update(left.tolist())
            for i, fs in found.items():
                out[i] = fs
        for i in sorted(slow):
            out[i] = self._reference(int(row[i]), batch.blocks[i])
        self.prior.commit()
        return out

    def _reference(self, row: int, block: Block) -> list[Finding]:
        det = self.export(row, self._scratch)
        found = det.update_pooled(block, self.prior)
        pinned = self.prior.pinned(block.device)
        if pinned:
            self._pinned[row, sorted(pinned)] = True
        self._set_row(row, self._row_of(det))
        return found

    def _fast(
        self, row: np.ndarray, idx: np.ndarray, batch: Batch
    ) -> tuple[np.ndarray, dict[int, list[Finding]]]:
        """Update the blocks ``idx`` of ``batch`` whose rows stay in their window and range,
        and those that close a window (:meth:`_close`); returns the others' positions (for the
        reference; their state untouched) and the closings' findings by position."""
        p, rows = self.proto, row[idx]
        s = self._s[rows]
        every = len(idx) == len(batch.blocks)  # the usual round: no copies of the columns
        ts = batch.ts if every else batch.ts[idx]
        cols = batch.cols if every else {n: c[idx] for n, c in batch.cols.items()}
        lengths = batch.lengths if every else batch.lengths[idx]
        learning = s[:, _LEARNING] != 0.0
        ok, x, y, carry = p._rows_many(ts, cols, lengths, s[:, _CARRY:], learning)
        params = self._params[rows]
        # the learned range matters only to units past learning (a learning unit takes every
        # valid row): ``like`` stays False for the others
        like, beyond = np.zeros_like(ok), np.zeros(len(rows), dtype=bool)
        # the rows judged, their features and monitored quantity (``BaselineShift.bounded``)
        judge, xs, ys = like, x, y
        judged = np.flatnonzero(~learning)
        if len(judged):
            j = slice(None) if len(judged) == len(rows) else judged
            xj, okj = x[j], ok[j]
            lo, hi = params[j, None, 0], params[j, None, 1]
            with np.errstate(invalid="ignore"):
                pad = p.range_margin * (hi - lo)
                ratio = proportional(params[j, 0], params[j, 1])
                floor = np.full(xj.shape[:-1], True)  # ``BaselineShift.trusted``
                if p.floor is not None:
                    floor = ~ratio[:, None] | (xj[..., p.floor] >= lo[..., p.floor])
                like[j] = likej = okj & floor & np.all((xj >= lo - pad) & (xj <= hi + pad), axis=-1)
                if p.extend_margin > 0:
                    wide = (p.range_margin + p.extend_margin) * (hi - lo)
                    inside = np.all((xj >= lo - wide) & (xj <= hi + wide), axis=-1)
                    beyond[j] = (okj & ~likej & inside).any(axis=1)
                yj = y[j]
                moved = p.corrected(xj, yj, params[j, 2], s[j, _LEVEL], ratio, self.prior)
                if moved is not yj:  # ``BaselineShift.bounded``
                    ys, judge = y.copy(), like.copy()
                    ys[j] = yj = moved
                    judge[j] = likej & np.isfinite(moved)
                cols = [j for j, _ in p.extrapolated]
                bottom, top = (lo - pad)[..., cols], (hi + pad)[..., cols]
                v = xj[..., cols]
                if cols and (okj & ~likej & ((v > top) | (v < bottom)).any(axis=-1)).any():
                    beta, level = params[j, 2][:, cols], s[j, _LEVEL]
                    below, above = p.range_slopes(beta, level, self.prior)
                    xb, yb = into_range(xj, yj, cols, bottom, top, below[:, None], above[:, None])
                    xs, ys, judge = x.copy(), y.copy(), like.copy()
                    xs[j], ys[j] = xb, yb
                    inside = np.all((xb >= lo - pad) & (xb <= hi + pad), axis=-1)
                    judge[j] = okj & floor & inside & np.isfinite(yb)
        with np.errstate(invalid="ignore"):
            take = np.where(learning[:, None], ok, judge)
            wins = np.floor(ts / p.window_s) * p.window_s
            count = ok.sum(axis=1)
            at = np.arange(len(rows))
            # a unit's first valid rows start its first window and its learning period
            fresh = np.isnan(s[:, _FIRST]) & (count > 0)
            start = np.where(fresh, np.where(take, wins, np.inf).min(axis=1), s[:, _START])
            first = np.where(fresh, ts[at, np.argmax(ok, axis=1)], s[:, _FIRST])
            closes = (take & (wins > start[:, None])).any(axis=1)
            untimed = (take & ~np.isfinite(ts)).any(axis=1)  # no time: the reference's case
        fits = np.zeros(len(rows), dtype=bool)
        if learning.any():
            last_ok = np.where(count > 0, ts.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1), 0)
            n_windows = np.fromiter((len(self._windows.get(r, ())) for r in rows.tolist()), float)
            fits = (
                learning
                & (ts[at, last_ok] - first >= p.learn_s)
                & (n_windows >= p.min_learn_windows)
                & (count > 0)
            )
        slow = (closes | untimed | beyond | fits) & (count > 0)
        if p.fleet_prior and (count > 0).any():  # the values the fleet's units run at
            seen = x[ok]
            self.prior.see(seen.min(axis=0), seen.max(axis=0))
        pooled = self._pooling(batch, idx, learning, params, ok, like, x, rows)
        closing = slow & closes & ~(untimed | beyond | pooled | learning)
        slow |= pooled
        found: dict[int, list[Finding]] = {}
        if closing.any():
            found = self._close(batch, idx, rows, closing, ts, xs, ys, take, carry)
            slow &= ~closing
        go = ~(slow | closing)
        if not go.all():  # else the arrays as they are: no copies
            rows, take, xs, ys, s, carry = rows[go], take[go], xs[go], ys[go], s[go], carry[go]
            learning, count = learning[go], count[go]
        learn = learning & (count > 0)
        # the reference's state after the block: carried values, window sums, what was learned
        s[:, _FIRST], s[:, _START] = first[go], start[go]
        s[:, _CARRY:] = carry
        xz = np.where(take[..., None], xs, 0.0)
        yz = np.where(take, ys, 0.0)
        s[:, _N] += take.sum(axis=1)
        s[:, _SY] += yz.sum(axis=1)
        self._sx[rows] += xz.sum(axis=1)
        if learn.any():
            lr, xl, yl, tl = rows, xz, yz, take
            if not learn.all():
                lr, xl, yl, tl = rows[learn], xz[learn], yz[learn], take[learn]
            taken = tl.sum(axis=1)  # > 0: a learning unit takes its valid rows, and has some
            s[learn, _BASE_N] += taken
            params = self._params[lr]
            k = p.n_features
            params[:, 3 : 3 + k] += np.matmul(xl.transpose(0, 2, 1), xl)
            params[:, 3 + k] += np.einsum("sli,sl->si", xl, yl)
            # each block's range of conditions: its taken rows, gathered in block order
            xt, bounds = xl[tl], np.concatenate(([0], np.cumsum(taken)[:-1]))
            np.minimum(params[:, 0], np.minimum.reduceat(xt, bounds), out=params[:, 0])
            np.maximum(params[:, 1], np.maximum.reduceat(xt, bounds), out=params[:, 1])
            self._params[lr] = params
        self._s[rows] = s
        return idx[slow], found

    def _close(
        self,
        batch: Batch,
        idx: np.ndarray,
        rows: np.ndarray,
        closing: np.ndarray,
        ts: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        take: np.ndarray,
        carry: np.ndarray,
    ) -> dict[int, list[Finding]]:
        """Past learning, blocks whose rows close their open window: the reference object's
        window sums take the rows already taken here and judge what closes
        (:meth:`BaselineShift.judge_rows`, however the rows fall into windows), which spares it
        finding the block's rows, its sampling period and its range again. Returns the blocks'
        findings by position in ``idx``."""
        at = np.flatnonzero(closing)
        need = self.proto.min_rows_many(batch.ts[idx[at]], batch.lengths[idx[at]])
        det = self._scratch
        found: dict[int, list[Finding]] = {}
        for i, n in zip(at.tolist(), need.tolist(), strict=True):
            r, sel = int(rows[i]), take[i]
            self.export(r, det)
            got = det.judge_rows(
                batch.blocks[int(idx[i])].device, ts[i, sel], x[i, sel], y[i, sel], n
            )
            if got:
                found[int(idx[i])] = got
            self._set_row(r, self._row_of(det))
            self._s[r, _CARRY:] = carry[i]
        return found


def columns_for(make: Callable[[], Detector]) -> ShiftColumns | StuckColumns | ObjectColumns:
    """The columnar form of a detector kind: its own where it has one, else one object a row."""
    probe = make()
    if isinstance(probe, BaselineShift) and type(probe)._rows_many is not BaselineShift._rows_many:
        return ShiftColumns(make)  # type: ignore[arg-type]
    if type(probe) is SensorStuck:
        return StuckColumns(make)  # type: ignore[arg-type]
    return ObjectColumns(make)


__all__ = ["Batch", "ObjectColumns", "ShiftColumns", "StuckColumns", "columns_for"]
