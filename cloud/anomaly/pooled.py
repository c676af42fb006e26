"""Pooled batch evidence: does one production batch have more units drifting than its model's
other batches, judged from the units' continuous shift statistics rather than their alarms?

The per-unit detectors (``shift.py``) alarm when a unit's own CUSUM crosses its threshold; the
batch test of ticketing counts those alarms. A batch whose units drift slowly, each still below
its own threshold, shows nothing there until enough units have crossed. Here every unit past
learning contributes its *shift* every round, whether it alarmed or not.

The statistic, per baseline-shift fault, each round (every ``every_s`` of event time):

1. **Shift.** A unit's ``z``: the mean of its last 24 h of judged windows' residuals against its
   own baseline, in the fault's direction, in units of the unit's learned window spread
   (``DetectorBank.shifts``). A whole day is averaged so that the daily cycle of conditions
   (afternoon heat, night setpoints) weighs the same in every unit.
2. **Robust standardisation across the fleet.** ``u = (z - median) / (1.4826 · MAD)`` over every
   unit with this fault's detector in the round (the whole product fleet of the worker). Weather,
   the season and setpoint habits move all units together; the median and the MAD follow them,
   and a minority of drifting units (a batch is a small part of a fleet) moves neither.
3. **Exceedances.** A unit *stands beyond* when ``u > level`` (5: far beyond the bulk; the units'
   real tails are heavier than normal, so the level is not read as a normal p-value). What an
   exceedance means for the null is learned from the fleet, step 4, not assumed.
4. **The test** (:func:`exceedance_p_value`). The batch's units beyond the level now, ``k``, over
   its ``n`` units, against the reference's rate of exceedances over its recent history: the rest
   of the batch's model, or, for a model with a single batch, every other unit of the fault. A
   unit's 24-h mean is one independent look per day, so each round adds ``dt / span_s`` unit-days
   of exposure per unit (and exceedances weighted the same), forgotten with a time constant of
   ``memory_s``. Under the null (the batch is like its reference) the two counts are Poisson with
   rates proportional to their exposures, so ``k`` given ``k + x_rest`` is
   ``Binomial(k + x_rest, n / (n + e_rest))``: the exact conditional test of two Poisson rates,
   the same test the alarm counts use (``cloud/ticketing/policy.py``). The reference's history
   is what gives it power on small fleets: with 20 reference units, *now* alone could never
   make 3 units of 20 significant (at best ``(20/40)^3``); three days of them can. The
   fallback for a one-batch model is the rest of the fleet rather than a unit's own null
   N(0, 1): the shifts' real tails are far heavier than normal (in a healthy simulated fleet
   1.4 % of the units' 24-h shifts lay beyond 3 robust sigma, against 0.13 % for a normal), so a
   normal null would make batch tickets of healthy units. A fleet of a single batch has nothing
   to compare with: no pooled test (the alarm count test's background rate still applies).
5. **Correction** over every (fault, batch) hypothesis of the round, Holm at ``alpha``; as the
   test is discrete, hypotheses that cannot reach significance at all (their smallest attainable
   p-value, every exceedance of the margin in the batch, is above ``alpha / m``) are not counted
   in ``m`` (Tarone 1990). A batch *stands out* when its adjusted p-value is below ``alpha`` and
   at least ``min_affected`` of its units are beyond the level (as for alarm counts: one or two
   odd units never make a batch ticket).

``alpha`` (0.01, the alarm count test's) is per round. Rounds an hour apart look at almost the
same 24-h means, so the independent looks are about one a day: a healthy fleet's family-wise
false-alarm rate is at most about ``alpha`` per fleet-day (for a fleet of 100 units, 0.01 a day
is 0.1 per 1,000 device-days), inside the budget of 1 per 1,000 healthy device-days for any
fleet of 10 units or more; the test is discrete and conditional, so below ``alpha`` in practice.
The settings were chosen once, from the statistics above and the healthy spread of the shifts,
not fitted to a scenario. Two guards: a fault with fewer than ``min_units`` units in the round
(10) has no robust median and MAD, so no round for it; the MAD is floored at ``scale_floor``
(0.02 of a window's spread, far below any fleet's) so that identical shifts do not divide by 0.

What it returns: a :class:`BatchFinding` when a batch starts to stand out, and again when a
unit not named before is beyond the level (stronger evidence); nothing while it stands out as
before, or after a round or a few below ``alpha`` (what it named is forgotten after a day
without standing out). Ticketing makes it a batch ticket (``cloud/ticketing/batch_findings.py``).

With several workers each sees the units of its own partitions: a batch's units are spread over
partitions by device, so each worker tests a random part of every batch (valid, less power).

Pure: no I/O, no clock; time is the event time the caller passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy import stats

TEST = (
    "pooled shift: units beyond 5 robust sigma of the fleet's 24-h shifts now vs the model's"
    " other batches' rate over their recent history (exact conditional Poisson), Holm"
    " (Tarone) over batches and faults"
)
TEST_FLEET = (
    "pooled shift: units beyond 5 robust sigma of the fleet's 24-h shifts now vs the rest of"
    " the fleet's rate over its recent history (model has no other batch; exact conditional"
    " Poisson), Holm (Tarone) over batches and faults"
)


@dataclass(frozen=True, slots=True)
class BatchFinding:
    """A batch that stands out by its units' shifts (pooled evidence), for ticketing.

    ``shifts``: the batch's units beyond the level, each with its standardised shift ``u``;
    ``units``/``beyond``: units tested and beyond the level; ``reference_*``: what it was
    compared with (exposure in unit-days of independent looks, exceedances in the same units).
    """

    model: str
    batch: str
    fault: str
    ts: float  # event time of the round
    test: str
    units: int
    beyond: int
    reference_units: int
    reference_exposure: float
    reference_beyond: float
    p_value: float
    p_adjusted: float
    alpha: float
    level: float
    shifts: Mapping[str, float] = field(default_factory=dict)

    def as_evidence(self) -> dict[str, object]:
        return {
            "test": self.test,
            "ts": self.ts,
            "fault": self.fault,
            "statistic": self.beyond,
            "units": self.units,
            "level": self.level,
            "reference_units": self.reference_units,
            "reference_exposure_days": round(self.reference_exposure, 3),
            "reference_beyond": round(self.reference_beyond, 3),
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "alpha": self.alpha,
            "correction": "holm (tarone)",
            "shifts": {d: round(u, 3) for d, u in self.shifts.items()},
        }


def exceedance_p_value(k: int, n: float, x_rest: float, e_rest: float) -> float:
    """One-sided p-value that ``k`` exceedances over exposure ``n`` exceed the reference's
    rate (``x_rest`` over ``e_rest``): ``P(X >= k)``, ``X ~ Binomial(k + x_rest, n/(n+e_rest))``
    (``x_rest`` rounded down: fractional counts from the history's weights).

    >>> round(exceedance_p_value(3, 20, 0, 120), 5)  # 3 of 20 now, none in 120 unit-days
    0.00292
    >>> exceedance_p_value(0, 20, 4, 120)
    1.0
    """
    if k <= 0 or n <= 0:
        return 1.0
    if e_rest <= 0:
        return 1.0  # nothing to compare with
    return float(stats.binom.sf(k - 1, k + math.floor(x_rest), n / (n + e_rest)))


def holm_tarone(p: Sequence[float], p_min: Sequence[float], alpha: float) -> list[float]:
    """Holm-adjusted p-values over the hypotheses that can reach ``alpha`` at all (Tarone):
    ``m`` is the smallest number such that at most ``m`` hypotheses have a smallest attainable
    p-value at or below ``alpha / m``; the others get 1.0.

    >>> holm_tarone([0.001, 0.5, 1.0], [1e-6, 1e-6, 1.0], 0.01)
    [0.002, 0.5, 1.0]
    """
    order = sorted(p_min)
    m = 1
    while m < len(order) and sum(1 for q in order if q <= alpha / m) > m:
        m += 1
    testable = [i for i, q in enumerate(p_min) if q <= alpha / m]
    out = [1.0] * len(p)
    ranked = sorted(testable, key=lambda i: p[i])
    running = 0.0
    for rank, i in enumerate(ranked):
        running = max(running, min(1.0, (len(ranked) - rank) * p[i]))
        out[i] = running
    return out


@dataclass(slots=True)
class _History:
    """A batch's decayed exposure (unit-days of independent looks) and exceedances."""

    exposure: float = 0.0
    beyond: float = 0.0


class _Test(NamedTuple):
    key: tuple[str, str, str]  # (fault, model, batch)
    beyond: dict[str, float]  # the batch's units beyond the level, with their shift
    units: int
    x_rest: float
    e_rest: float
    reference_units: int
    test: str

    def p_value(self) -> float:
        return exceedance_p_value(len(self.beyond), self.units, self.x_rest, self.e_rest)

    def smallest_p(self) -> float:
        """The smallest p-value the test could give with this margin: every exceedance in the
        batch."""
        total = len(self.beyond) + math.floor(self.x_rest)
        if total <= 0 or self.e_rest <= 0:
            return 1.0
        return (self.units / (self.units + self.e_rest)) ** total


class PooledShift:
    """The pooled batch test over rounds of event time (see the module docstring).

    >>> p = PooledShift()
    >>> p.due(0.0), p.update(0.0, {}, lambda d: None)
    (True, [])
    >>> p.due(1800.0)
    False
    """

    def __init__(
        self,
        *,
        every_s: float = 3600.0,
        span_s: float = 86_400.0,
        level: float = 5.0,
        alpha: float = 0.01,
        min_affected: int = 3,
        min_units: int = 10,
        memory_s: float = 7 * 86_400.0,
        scale_floor: float = 0.02,
    ) -> None:
        self.every_s = every_s
        self.span_s = span_s
        self.level = level
        self.alpha = alpha
        self.min_affected = min_affected
        self.min_units = min_units
        self.memory_s = memory_s
        self.scale_floor = scale_floor
        self._reset()

    def _reset(self) -> None:
        self._last_ts: float | None = None
        self._history: dict[tuple[str, str, str], _History] = {}  # (fault, model, batch)
        # per (fault, model, batch) standing out: the units named so far, when it last stood out
        self._standing: dict[tuple[str, str, str], tuple[frozenset[str], float]] = {}

    def due(self, ts: float) -> bool:
        """Whether a round is due at event time ``ts``."""
        return self._last_ts is None or ts >= self._last_ts + self.every_s

    def update(
        self,
        ts: float,
        shifts: Mapping[str, tuple[Sequence[str], np.ndarray]],
        batch_of: Callable[[str], tuple[str, str] | None],
    ) -> list[BatchFinding]:
        """One round at event time ``ts``: per fault, the units' ``(devices, z)``
        (``DetectorBank.shifts``); ``batch_of(device)`` gives its (model, batch), None if not
        known. Returns the batches that start to stand out, or whose evidence grew."""
        if self._last_ts is not None and ts < self._last_ts:
            return []
        dt = self.span_s if self._last_ts is None else min(ts - self._last_ts, self.span_s)
        decay = math.exp(-dt / self.memory_s)
        self._last_ts = ts
        for h in self._history.values():
            h.exposure *= decay
            h.beyond *= decay
        tests: list[_Test] = []
        for fault, (devices, z) in shifts.items():
            tests += self._round(fault, devices, np.asarray(z, float), batch_of, dt / self.span_s)
        p = [t.p_value() for t in tests]
        adjusted = holm_tarone(p, [t.smallest_p() for t in tests], self.alpha)
        out = []
        for t, raw, adj in zip(tests, p, adjusted, strict=True):
            named, last = self._standing.get(t.key, (frozenset(), -math.inf))
            if not (adj < self.alpha and len(t.beyond) >= self.min_affected):
                if ts - last > self.span_s:  # a day without standing out: forget what was said
                    self._standing.pop(t.key, None)
                continue
            units = frozenset(t.beyond)
            self._standing[t.key] = (named | units, ts)
            if units <= named:
                continue  # stands out as before: nothing new to say
            fault, model, batch = t.key
            shifts_beyond = dict(sorted(t.beyond.items(), key=lambda i: (-i[1], i[0])))
            out.append(
                BatchFinding(
                    model,
                    batch,
                    fault,
                    ts,
                    t.test,
                    t.units,
                    len(t.beyond),
                    t.reference_units,
                    t.e_rest,
                    t.x_rest,
                    raw,
                    adj,
                    self.alpha,
                    self.level,
                    shifts_beyond,
                )  # fmt: skip
            )
        return out

    def _round(
        self,
        fault: str,
        devices: Sequence[str],
        z: np.ndarray,
        batch_of: Callable[[str], tuple[str, str] | None],
        weight: float,
    ) -> list[_Test]:
        """Standardise one fault's shifts, add the round to the history, and the tests to run."""
        if len(devices) < self.min_units:
            return []
        centre = float(np.median(z))
        scale = max(1.4826 * float(np.median(np.abs(z - centre))), self.scale_floor)
        u = (z - centre) / scale
        batches: dict[tuple[str, str], dict[str, float]] = {}
        for d, value in zip(devices, u.tolist(), strict=True):
            mb = batch_of(d)
            if mb is not None:
                batches.setdefault(mb, {})[d] = value
        for (model, batch), units in batches.items():
            h = self._history.setdefault((fault, model, batch), _History())
            h.exposure += weight * len(units)
            h.beyond += weight * sum(1 for v in units.values() if v > self.level)
        # the history's sums per model and over the fault (every batch ever seen)
        per_model: dict[str, tuple[float, float, int]] = {}
        total_e = total_x = 0.0
        for (f, model, _), h in self._history.items():
            if f == fault:
                e, x, k = per_model.get(model, (0.0, 0.0, 0))
                per_model[model] = (e + h.exposure, x + h.beyond, k + 1)
                total_e += h.exposure
                total_x += h.beyond
        now_units: dict[str, int] = {}
        for (model, _), units in batches.items():
            now_units[model] = now_units.get(model, 0) + len(units)
        tests = []
        for (model, batch), units in batches.items():
            own = self._history[(fault, model, batch)]
            model_e, model_x, n_batches = per_model[model]
            if n_batches > 1:
                e, x = model_e - own.exposure, model_x - own.beyond
                test, ref = TEST, now_units[model] - len(units)
            else:  # a model with one batch: the rest of the fleet
                e, x = total_e - own.exposure, total_x - own.beyond
                test, ref = TEST_FLEET, len(devices) - len(units)
            beyond = {d: v for d, v in units.items() if v > self.level}
            e, x = max(e, 0.0), max(x, 0.0)  # differences of sums: no rounding below zero
            tests.append(_Test((fault, model, batch), beyond, len(units), x, e, ref, test))
        return tests
