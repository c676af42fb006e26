"""``cooling_decline``: the return–supply ΔT while cooling falls against the unit's own baseline.

ΔT across the indoor coil is the unit's cooling capacity divided by airflow, so at like
conditions a lower ΔT means less capacity (refrigerant leak, fouled coil, failing compressor).
Only steady cooling counts: the compressor on for at least ``settle_s`` (the first minutes of a
run are a transient), and the supply air not warmer than the return air by more than
``HEATING_MARGIN_K``. The contract's telemetry has no operating mode, and the products are heat
pumps: a unit heating blows air 10-25 K above its return air, which as cooling would read as a
total loss. In cooling, supply air is below the return air while the circuit works at all, and
with no refrigerant left it is the return air plus the fan motor's heat (a few tenths of a
kelvin) and the two sensors' offsets; 3 K above it is heating (or a reversing valve stuck in
heating, which is not this fault). Heating rows are neither learned nor judged.

The baseline is linear in outdoor temperature, fan speed and return-air
temperature, which carry most of the capacity's dependence on conditions. For a unit whose
compressor changes its speed (an inverter unit) it is ΔT per ampere of the unit's current that
is linear in them: the detector learns both models and keeps one at the end of learning
(``speed.py``). A block without a current column reads as 0 (a fixed-speed unit); a row whose
current is missing is neither learned nor judged.

An inverter unit holds its room a few tenths of a kelvin from the setpoint, so while it learns
its return air moves only with the load (and the compressor's speed with it): the return air's
per-ampere coefficient, fitted over a kelvin or two, takes up the load's effect, and at a
setpoint the user chose later it misleads (measured in S18 on S17's detector: 10 of the 12 false
findings on one seed of ``inverter-healthy`` came at return air outside what the unit learned
at, 9 of them above it). The unit's rows at a setpoint
beyond those it learned at (``_setpoint_lo``–``_setpoint_hi``, carried) are judged as at the
nearest learned one: the per-ampere return-air feature less the setpoint's excess
(:func:`beyond`), the ΔT corrected by the excess times a slope that errs away from a loss
(:meth:`CoolingDecline.corrected`). Below the learned setpoints it is the steeper of the unit's
per-ampere return-air coefficient and its fleet's, and only with a fleet's, as
``extrapolate.py`` does for the learned range. Above them that coefficient's size is not the
return air's effect (a unit that learned at one setpoint, whose return air followed the load,
fits into it how its ΔT per ampere bends with the compressor's speed: the board's and fans'
current is in the ampere too). There the slope is the gentler of it and the setpoint's effect
the fleet's units show past learning (:meth:`CoolingDecline.offer_effects`, the prior's extra
slot), 0 until the fleet has one: a warmer room raises a coil's ΔT, so no correction errs away.

The same current is why an inverter unit's rows at a current below the least it drew while it
learned are not judged, whatever the range's margin (``floor``, ``BaselineShift.trusted``): the
model has no constant, so down there, at a compressor's lowest speeds, it expects more ΔT than a
healthy unit gives (the remaining false windows of S19, one seed of ``inverter-healthy``, read
7-9 % short at 1.4-1.8 A against 1-4 % at 2-3.5 A), and a loss makes the compressor run faster,
not slower: its rows move up in current. Measured on three seeds each of ``inverter-healthy``
and ``inverter``: false findings 5 and 5 before, 3 and 5 after; leaks within 48 h 77 and 78 of 90.
Such rows still extend the learned range when they look healthy (``shift.py``).

Return temperature is partly the fault's own effect (a unit short of capacity lets its room
warm) and partly the user's (a setpoint lower than any the unit learned at), and a fan speed may
be one the unit did not use while learning, so rows outside the learned range in those two are
judged too, extrapolated conservatively (``extrapolated``, ``extrapolate.py``).

A drop must be both statistically clear (CUSUM over window means) and practically relevant:
at least ``min_drop`` of the baseline ΔT (default 8 %).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from cloud.anomaly import speed
from cloud.anomaly.base import Block
from cloud.anomaly.extrapolate import range_slopes
from cloud.anomaly.prior import FeaturePrior
from cloud.anomaly.shift import BaselineShift, Carry, RowsMany

_NAN = np.array([], dtype=float)
# the features each model leaves out (``features``): the fixed-speed model the current-weighted
# ones, the variable-speed model the plain ones
_UNUSED_FIXED = np.array([False] * 4 + [True] * 4)
_UNUSED_VARIABLE = ~_UNUSED_FIXED
# supply air this much warmer than the return air: the unit is heating, not cooling
HEATING_MARGIN_K = 3.0
# the quantile of the fleet's readings of the setpoint's effect that ``corrected`` takes above
# the learned setpoints: most of the fleet's units show at least that much of it
EFFECT_Q = 0.25
# a setpoint excess below this (K) is the features' rounding, not a move (``corrected``)
_MOVED_K = 1e-6


def cooling(return_c: np.ndarray, supply_c: np.ndarray) -> np.ndarray:
    """Which rows can be cooling rows: supply air not ``HEATING_MARGIN_K`` above the return air
    (False where either is missing).

    >>> cooling(np.array([25.0, 20.0, 25.0]), np.array([15.0, 38.0, np.nan])).tolist()
    [True, False, False]
    """
    with np.errstate(invalid="ignore"):  # two infinities: not a cooling row either
        return supply_c - return_c < HEATING_MARGIN_K


def features(
    amb: np.ndarray, fan: np.ndarray, ret: np.ndarray, amps: np.ndarray, moved: np.ndarray
) -> np.ndarray:
    """The cooling detector's features of rows (any leading shape): the conditions (a
    constant, outdoor, fan speed and return air, centred), then the same times the current,
    with the return air less ``moved`` (:func:`beyond`).

    >>> features(np.array([32.0]), np.array([1.0]), np.array([26.0]), np.array([2.0]),
    ...          np.array([0.5])).tolist()
    [[1.0, 2.0, -1.0, 1.0, 2.0, 4.0, -2.0, 1.0]]
    """
    conditions = np.stack([np.ones_like(amb), amb - 30.0, fan - 2.0, ret - 25.0], axis=-1)
    per_amp = np.stack([np.ones_like(amb), amb - 30.0, fan - 2.0, ret - moved - 25.0], axis=-1)
    return np.concatenate([conditions, per_amp * amps[..., None]], axis=-1)


def beyond(setpoint: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """How far each row's setpoint lies beyond the setpoints ``lo``–``hi`` a unit learned at
    (K, above positive); 0 within them, where the setpoint is missing, or with none learned.

    >>> beyond(np.array([24.0, 26.0, 21.0, np.nan]), 23.0, 25.0).tolist()
    [0.0, 1.0, -2.0, 0.0]
    """
    with np.errstate(invalid="ignore"):
        d = setpoint - np.minimum(np.maximum(setpoint, lo), hi)
        return np.where(np.isfinite(d) & (np.asarray(lo) <= np.asarray(hi)), d, 0.0)


def _excess(x: np.ndarray) -> np.ndarray:
    """The setpoint's excess :func:`features` moved each row's per-ampere return air by (0
    where it cannot be read: no current)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        moved = x[..., 3] - x[..., 7] / x[..., 4]
    return np.where(np.isfinite(moved), moved, 0.0)


def _fleet(prior: FeaturePrior | None, j: int) -> np.ndarray:
    """The fleet's relative effect in ``prior``'s slot ``j`` (NaN: none), as ``range_slopes``
    takes it."""
    got = prior.get(j) if prior is not None else None
    return np.array([math.nan if got is None else got[0]])


class CoolingDecline(BaselineShift):
    """Detect a sustained fall of return–supply ΔT under like conditions.

    >>> import pickle
    >>> d = CoolingDecline()
    >>> d.learning
    True
    >>> pickle.loads(pickle.dumps(d)).learning
    True
    """

    fault = "cooling_decline"
    direction = -1
    # the conditions (constant, outdoor, fan speed, return air), then the same times the unit's
    # current: the fixed-speed model uses the first four, the variable-speed one the last four
    n_features = 8
    # ΔT scales with the unit's capacity, and each feature is one quantity, so a fan speed's
    # relative effect carries from the fleet's units to one that never varied it (prior.py)
    fleet_prior = True
    # a batch born short of capacity learns it as its normal; its model's other batches show it
    peer_levels = True
    # return-air temperature: a unit that lost capacity cannot hold its room, so the rows that
    # show the loss lie above the learned range of return temperatures, and a user may set a
    # lower setpoint than any it learned at. A healthy coil's ΔT rises with the return
    # temperature, so above the range it is at least the baseline's at the top plus the excess
    # times a slope no steeper than its own or its fleet's, and below it at least the baseline's
    # at the bottom less the deficit times the steeper of the two (``BaselineShift.bounded``).
    # Fan speed: more air through the coil, a lower ΔT, so the same with the sides swapped (a
    # unit that learned at two speeds and runs at a third)
    extrapolated = ((3, 1.0), (2, -1.0))
    # the setpoint's effect on an inverter unit's ΔT per ampere (``corrected``)
    prior_slots = 1
    # an inverter unit's current below what it drew while learning: not judged (see above)
    floor = 4
    # a leak while the unit learns (an installation leak): also read against the windows after it
    after_steps = True

    needs = ("compressor_on", "return_c", "supply_c", "ambient_c", "fan_speed")
    optional = ("current_a", "setpoint_c")

    # the compressor's run, and the setpoints the unit learned at (``corrected``)
    _carry = ("_on_since", "_was_on", "_setpoint_lo", "_setpoint_hi")

    __slots__ = ("settle_s", "min_drop", "_on_since", "_was_on", "_setpoint_lo", "_setpoint_hi")
    _config = BaselineShift._config | {"settle_s", "min_drop"}

    def __init__(self, *, settle_s: float = 300.0, min_drop: float = 0.08, **kw: float) -> None:
        kw.setdefault("min_shift_fraction", min_drop)
        kw.setdefault("sigma_floor_fraction", 0.01)
        super().__init__(**kw)
        self.settle_s = settle_s
        self.min_drop = min_drop
        self._on_since = -np.inf  # start of the current compressor run, carried across blocks
        self._was_on = False
        self._setpoint_lo, self._setpoint_hi = math.inf, -math.inf

    def unused_features(self, xtx: np.ndarray, prior: FeaturePrior | None = None) -> np.ndarray:
        """The model each set of sums keeps (``speed.py``): ΔT per ampere where the current
        varied beyond the conditions while the unit learned (or varied some, and most of its
        fleet's units chose it: feature 0 left out), else ΔT."""
        fleet = math.nan if prior is None else prior.left_out(0)
        variable = speed.varies(xtx, 4, fleet)
        return np.where(variable[..., None], _UNUSED_VARIABLE, _UNUSED_FIXED)

    def waits(self, prior: FeaturePrior | None) -> bool:
        """A unit whose current's spread is where its fleet decides (``speed.DOUBT``) waits
        for the fleet's word while it has none (its units mostly finish learning in the same
        hour)."""
        return (
            prior is not None
            and math.isnan(prior.left_out(0))
            and speed.doubtful(self._baseline.xtx, 4)
        )

    def corrected(
        self,
        x: np.ndarray,
        y: np.ndarray,
        beta: np.ndarray,
        level: np.ndarray | float,
        proportional: np.ndarray | bool,
        prior: FeaturePrior | None,
    ) -> np.ndarray:
        """The ΔT of an inverter unit's rows at a setpoint beyond those it learned at, judged as
        at the nearest of those: :meth:`_rows` moved their return air by the setpoint's excess
        (the room follows the setpoint; the distance between them, which the compressor's
        speed follows, stays), and their ΔT moves by the excess times a per-ampere slope
        (``extrapolate.range_slopes``): below, the steeper of the unit's return-air
        coefficient and its fleet's (not judged without the fleet's); above, the gentler of
        that coefficient and the fleet's setpoint effect (:meth:`offer_effects`; 0 without
        it). A fixed-speed unit's rows are not moved.

        Measured in S19 on three seeds each of ``inverter-healthy`` and ``inverter`` (false
        findings on each, then leaks found within 48 h of 90):

        - above, the gentler of the unit's and the fleet's coefficient (S18): 7 and 8, 76;
        - not moved above: 3 and 3, 69;
        - the gentler of the unit's and the median setpoint effect: 8 and 9, 76 (the fleet's
          readings spread widely: 10-90 % of them -0.4 to 3.9 % of the level per A and K);
        - the gentler of the unit's and the lower quartile (kept): 5 and 5, 77."""
        if not np.any(proportional):
            return y
        lead = x.shape[:-2]
        moved = np.where(np.reshape(proportional, (*lead, 1)), _excess(x), 0.0)
        up, down = moved > _MOVED_K, moved < -_MOVED_K
        if not (up.any() or down.any()):
            return y
        coef = np.reshape(np.asarray(beta)[..., 7], (*lead, 1))
        level = np.reshape(level, lead)
        below, _ = range_slopes(coef, level, _fleet(prior, 7), np.ones(1))
        effect = math.nan if prior is None else prior.quantile(self.n_features, EFFECT_Q)
        _, above = range_slopes(coef, level, np.array([effect]), np.ones(1))
        with np.errstate(invalid="ignore"):
            shift = np.where(up, moved * above, 0.0) + np.where(down, moved * below, 0.0)
        return y - shift * x[..., 4]

    def offer_effects(
        self,
        prior: FeaturePrior,
        device: str,
        x: np.ndarray,
        y: np.ndarray,
        like: np.ndarray,
        need: int,
    ) -> None:
        """Offer the fleet the setpoint's effect an inverter unit shows past learning: over its
        rows at a setpoint above those it learned at (at least ``need``, within the learned
        range once moved back), the ΔT as read less the baseline's, per ampere and kelvin of
        excess, relative to the level. A unit that looks faulty (a fault standing, or evidence
        in its CUSUM) offers nothing; the fleet takes a unit's first ``per_unit`` readings
        (``prior.py``), and :meth:`corrected` their lower quartile (``EFFECT_Q``)."""
        b = self._baseline
        slot = self.n_features
        if not b.proportional or b.beta is None or not b.level or not prior.wants(device, slot):
            return
        if self._active or self._cusum.statistic > self.k:
            return
        moved = _excess(x)
        sel = like & (moved > _MOVED_K)
        if sel.sum() < need:
            return
        per = float(np.sum(moved[sel] * x[sel, 4]))
        if per <= 0.0:
            return
        residual = float(np.sum(y[sel] - x[sel] @ b.beta))
        prior.offer(device, slot, residual / b.level / per, 0.0, float(moved[sel].max()))

    def offer_rows(self, x: np.ndarray) -> np.ndarray:
        """Rows at a setpoint moved back (:meth:`offer_effects` reads those above)."""
        return _excess(x) > _MOVED_K

    def _rows(self, block: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cols = [block.get(n) for n in self.needs]
        if any(c is None for c in cols):
            return _NAN, _NAN.reshape(0, 8), _NAN
        comp, ret, sup, amb, fan = cols
        amps, setpoint = block.get("current_a"), block.get("setpoint_c")
        ts = block.ts
        if len(ts) == 0:
            return _NAN, _NAN.reshape(0, 8), _NAN
        amps = np.zeros_like(ts) if amps is None else amps
        setpoint = np.full_like(ts, np.nan) if setpoint is None else setpoint
        on = comp > 0.5  # a missing compressor state (NaN) counts as off
        prev = np.concatenate(([self._was_on], on[:-1]))
        starts = np.where(on & ~prev, ts, -np.inf)
        if self._was_on and on[0]:
            starts[0] = self._on_since
        since = np.maximum.accumulate(starts)
        if len(on):
            self._was_on = bool(on[-1])
            self._on_since = float(since[-1])
        ok = on & (ts - since >= self.settle_s)
        ok &= np.isfinite(ret) & np.isfinite(sup) & np.isfinite(amb) & np.isfinite(fan)
        ok &= np.isfinite(amps) & cooling(ret, sup)
        setpoint = setpoint[ok]
        if self._learning:
            seen = setpoint[np.isfinite(setpoint)]
            if len(seen):
                self._setpoint_lo = min(self._setpoint_lo, float(seen.min()))
                self._setpoint_hi = max(self._setpoint_hi, float(seen.max()))
        moved = beyond(setpoint, self._setpoint_lo, self._setpoint_hi)
        x = features(amb[ok], fan[ok], ret[ok], amps[ok], moved)
        return ts[ok], x, ret[ok] - sup[ok]

    def _rows_many(
        self,
        ts: np.ndarray,
        cols: Mapping[str, np.ndarray],
        lengths: np.ndarray,
        carry: Carry,
        learning: np.ndarray,
    ) -> RowsMany:
        """:meth:`_rows` of many blocks at once: (blocks × rows) arrays padded with NaN at the
        end of each row; ``carry`` holds each block's unit's :attr:`_carry` before it, and the
        same after it is returned."""
        comp, ret, sup, amb, fan = (cols[n] for n in self.needs)
        amps, setpoint = cols["current_a"], cols["setpoint_c"]  # every block here has them
        was_on, on_since = carry[:, 1] != 0.0, carry[:, 0]
        on = comp > 0.5
        prev = np.concatenate((was_on[:, None], on[:, :-1]), axis=1)
        starts = np.where(on & ~prev, ts, -np.inf)
        starts[:, 0] = np.where(was_on & on[:, 0], on_since, starts[:, 0])
        since = np.maximum.accumulate(starts, axis=1)
        last = lengths - 1
        at = np.arange(len(ts))
        ok = on & (ts - since >= self.settle_s)
        ok &= np.isfinite(ret) & np.isfinite(sup) & np.isfinite(amb) & np.isfinite(fan)
        ok &= np.isfinite(amps) & cooling(ret, sup)
        lo, hi = carry[:, 2], carry[:, 3]
        seen = ok & np.isfinite(setpoint) & learning[:, None]
        lo = np.minimum(lo, np.where(seen, setpoint, np.inf).min(axis=1))
        hi = np.maximum(hi, np.where(seen, setpoint, -np.inf).max(axis=1))
        x = features(amb, fan, ret, amps, beyond(setpoint, lo[:, None], hi[:, None]))
        carry = np.column_stack([since[at, last], on[at, last], lo, hi]).astype(float)
        return ok, x, ret - sup, carry
