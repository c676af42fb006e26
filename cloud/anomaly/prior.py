"""The fleet's estimate of a condition feature's effect, for units that never varied it.

A unit's baseline (:class:`~cloud.anomaly.baseline.LinearBaseline`) learns the effect of each
condition feature from its own first days. A feature the unit held constant while learning (a fan
that ran at one speed all week) has a learned range of zero width: the unit's own history says
nothing about it, so rows at other values of it were never judged (``shift.py``). When such a unit
moves to another value for good — the hot season brings the higher fan speeds — it went unjudged
for the rest of its life, faults included.

:class:`FeaturePrior` collects, per feature, what the units of one detector kind in one fleet
(the bank's product group) say of the feature's effect, relative to each unit's mean level
(``beta_j / level``): units of different capacity differ in scale (a 5 kW unit's ΔT is not a
2.6 kW unit's), far less in how the quantity moves with the feature relative to its level
(airflow per fan step is a similar fraction across sizes). Two sources:

- a unit that varied the feature while learning: its fitted coefficient (:meth:`learn`);
- a unit that did not, past learning: a block of rows off the feature's learned value, with every
  other feature where its baseline holds, read against the baseline's prediction at the learned
  value (:meth:`offer`; at most ``per_unit`` blocks a unit, its first ones: a unit's first visits
  to a new fan speed come before most faults, and no unit outweighs the others).

The fleet's value is the median (half the units may be faulty or odd without moving it far), its
uncertainty the scaled MAD. It is used once ``min_units`` distinct units contributed (default 10:
the median of ten is a usable estimate, few enough that a fleet of a few dozen units has it soon
after learning), and a unit takes it only for a feature whose own learned range has zero width; a
feature no unit varies (the intercept's constant column) never has one.

A unit that takes it (:meth:`BaselineShift.use_prior`) gets the coefficient as a penalty in its
normal equations (one row's worth: far above the fit's ridge, far below a window's rows: it pins
the coefficient the unit's own rows cannot identify, and kept in the sums, so it stays through
later range extensions of other features), its range of the feature widened to the values the
fleet's units run at (``see``: every unit's valid rows; the effect is linear, so one coefficient
spans them, and a unit that took it follows that range as it grows), and its CUSUM scale
widened by the prior's uncertainty over half that range (the typical offset from the value it
learned at), so the prior's error does not add up to a finding.

Only detector kinds whose features are each one quantity with an effect that scales with the
unit's level take part (``BaselineShift.fleet_prior``: ``cooling_decline``). Noise in dB with fan
speed as speed and speed² does not: its two fan coefficients only hold as a pair (a median of
each is no unit's curve), and a dB level's change is not relative to it; taking part, it gave
false ``noise_rise`` tickets on healthy fleets.

Contributions count from the next :meth:`commit` (the bank commits once per batch, so every unit
of a batch sees the same fleet value whatever its position in the batch). The values are in
memory only: a restarted worker collects them again from its units, each unit restored past
learning handing its coefficients again (:meth:`learn_values`; a unit that took the fleet's
value keeps it, in its checkpointed normal equations and range, and hands that value back, but
its range no longer follows the fleet's). The fleet is the bank's product group, not the
model: the bank is not told a device's model; a fleet of models whose relative effects differ
widely would need it.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from cloud.anomaly.baseline import LinearBaseline, dropped, robust_spread


class FeaturePrior:
    """Per feature, the relative effects the fleet's units show (a bounded sample)."""

    def __init__(
        self,
        n_features: int,
        *,
        extra: int = 0,
        min_units: int = 10,
        per_unit: int = 4,
        keep: int = 4001,
    ) -> None:
        self.n_features = n_features
        self.min_units = min_units
        self.per_unit = per_unit
        self.keep = keep  # the first ``keep`` values per feature: a median's worth, bounded
        # ``extra`` slots after the features: effects a detector kind reads from its units past
        # learning that are no feature's coefficient (``BaselineShift.prior_slots``); only
        # offered (:meth:`offer`) and read (:meth:`get`), never pinned
        slots = n_features + extra
        self._ratios: list[list[float]] = [[] for _ in range(slots)]  # sorted
        self._units: list[set[str]] = [set() for _ in range(slots)]
        self._given: dict[tuple[str, int], int] = {}  # (device, feature) -> values given
        self._lo = np.full(slots, np.inf)
        self._hi = np.full(slots, -np.inf)
        self._queued: list[tuple[str, int, float, float, float]] = []
        self._pending = [0] * slots  # coefficients queued by learn_values, per feature
        # the values of each feature seen in any unit's valid rows (committed, and since)
        self.seen_lo = np.full(n_features, np.inf)
        self.seen_hi = np.full(n_features, -np.inf)
        self._seen_lo = self.seen_lo.copy()
        self._seen_hi = self.seen_hi.copy()
        self._pinned: dict[str, set[int]] = {}  # device -> features it took the fleet's value of
        # the units that handed their fit (committed), and of them those that left each feature
        # out of it (``speed.py``: the model each chose); then the same queued
        self._fits = 0
        self._left_out = np.zeros(n_features)
        self._fits_queued = 0
        self._left_out_queued = np.zeros(n_features)

    def learn(self, device: str, baseline: LinearBaseline) -> None:
        """Queue a freshly fitted baseline's coefficients of the features it varied."""
        if baseline.beta is not None:
            self.learn_values(device, baseline.beta, baseline.level, baseline.lo, baseline.hi)

    def learn_values(
        self, device: str, beta: np.ndarray, level: float, lo: np.ndarray, hi: np.ndarray
    ) -> None:
        """:meth:`learn` from a baseline's coefficients, mean level and learned range. A worker
        that restores a unit past learning from its checkpoint hands them again
        (``ShiftColumns.rejoin_prior``): the fleet's values are in memory only, and a unit
        gives them once, when it finishes learning."""
        if not math.isfinite(level) or level == 0.0:
            return
        out = dropped(lo, hi)
        self._fits_queued += 1
        self._left_out_queued += out
        # a feature taken out of the unit's fit (``speed.py``) says nothing of its effect
        for j in np.flatnonzero((hi > lo) & np.isfinite(beta) & ~out).tolist():
            # a full sample takes no more; a restart hands every unit's at once, so the queue
            # counts too (no list of 100,000 units' values before the next commit)
            if len(self._ratios[j]) + self._pending[j] < self.keep:
                self._pending[j] += 1
                ratio = float(beta[j]) / level
                self._queued.append((device, j, ratio, float(lo[j]), float(hi[j])))

    def wants(self, device: str, j: int) -> bool:
        """Does the fleet still take values of feature ``j`` from ``device``?"""
        return self._given.get((device, j), 0) < self.per_unit and len(self._ratios[j]) < self.keep

    def offer(self, device: str, j: int, ratio: float, lo: float, hi: float) -> None:
        """Queue one reading of feature ``j``'s relative effect, seen over ``lo``–``hi``."""
        if not math.isfinite(ratio):
            return
        self._given[device, j] = self._given.get((device, j), 0) + 1
        self._queued.append((device, j, ratio, lo, hi))

    def see(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Valid rows of some unit spanned ``lo``–``hi`` per feature (counted at commit)."""
        np.minimum(self._seen_lo, lo, out=self._seen_lo)
        np.maximum(self._seen_hi, hi, out=self._seen_hi)

    def pin(self, device: str, j: int) -> None:
        """``device`` took the fleet's value of feature ``j``."""
        self._pinned.setdefault(device, set()).add(j)

    def pinned(self, device: str) -> set[int]:
        return self._pinned.get(device, set())

    def commit(self) -> None:
        """Count the queued values."""
        self.seen_lo[:] = self._seen_lo
        self.seen_hi[:] = self._seen_hi
        queued, self._queued = self._queued, []
        self._pending = [0] * len(self._ratios)
        self._fits += self._fits_queued
        self._left_out += self._left_out_queued
        self._fits_queued = 0
        self._left_out_queued[:] = 0.0
        for device, j, ratio, lo, hi in queued:
            if len(self._ratios[j]) < self.keep:
                bisect.insort(self._ratios[j], ratio)
                self._units[j].add(device)
                self._lo[j] = min(self._lo[j], lo)
                self._hi[j] = max(self._hi[j], hi)

    def left_out(self, j: int) -> float:
        """The share of the fleet's units that left feature ``j`` out of their fit (the model
        each chose at the end of learning, ``speed.py``); NaN under ``min_units`` units."""
        if self._fits < self.min_units:
            return math.nan
        return float(self._left_out[j] / self._fits)

    def available(self) -> np.ndarray:
        """Per feature: has the fleet a value for it yet (from ``min_units`` units, over a range
        of some width)?"""
        n = self.n_features
        counted = np.array([len(u) >= self.min_units for u in self._units[:n]], dtype=bool)
        return counted & (self._hi[:n] > self._lo[:n])

    def _has(self, j: int) -> bool:
        return len(self._units[j]) >= self.min_units and bool(self._hi[j] > self._lo[j])

    def quantile(self, j: int, q: float) -> float:
        """The ``q`` quantile of feature (or extra slot) ``j``'s relative effects; NaN while
        not available. A low quantile is a conservative value of an effect with a known sign:
        most of the fleet's units show at least that much of it."""
        if j >= len(self._ratios) or not self._has(j):
            return math.nan
        return float(np.quantile(np.asarray(self._ratios[j]), q))

    def get(self, j: int) -> tuple[float, float, float, float] | None:
        """Feature (or extra slot) ``j``'s ``(ratio, spread, lo, hi)``: the median relative
        effect, its scaled MAD and the range of values the fleet's units were seen at (the
        effect is linear, so it holds beyond the values the contributions came from as far as
        the units run); None while not :meth:`available`, or for a slot this prior lacks."""
        if j >= len(self._ratios) or not self._has(j):
            return None
        r = np.asarray(self._ratios[j])
        med = float(np.median(r))
        spread = float(robust_spread(r))
        lo, hi = float(self._lo[j]), float(self._hi[j])
        if j < self.n_features:
            lo, hi = min(lo, float(self.seen_lo[j])), max(hi, float(self.seen_hi[j]))
        return med, spread, lo, hi
