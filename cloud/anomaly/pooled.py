"""Pooled batch evidence: does one production batch have more units drifting than its model's
other batches, judged from the units' continuous shift statistics rather than their alarms?

The per-unit detectors (``shift.py``) alarm when a unit's own CUSUM crosses its threshold; the
batch test of ticketing counts those alarms. A batch whose units drift slowly, each still below
its own threshold, shows nothing there until enough units have crossed. Here every unit past
learning contributes its *shift* every round, whether it alarmed or not.

The statistic, per baseline-shift fault and span, each round (every ``every_s`` of event time):

1. **Shift.** A unit's ``z``: the mean of its judged windows' residuals over the span against its
   own baseline, in the fault's direction, in units of the unit's learned window spread
   (``DetectorBank.shifts(span)``). The span is **24 h** (``SPANS``), so that the daily cycle of
   conditions (afternoon heat, night setpoints) weighs the same in every unit. Shorter spans are
   possible (``spans``: each span its own set of hypotheses, all counted in step 5) and a 6-h
   span (two 3-h windows), which a step moves four times as fast as the day's mean, was
   measured beside the 24-h one and **not kept**: a 6-h mean sees the daily cycle unevenly, and
   what step 2 does not remove of it is shared within a batch (a batch's units share part of
   their parts and settings, so they answer the afternoon alike), so a healthy batch's units
   cross the level together more often than independent units would, which the Poisson null of
   step 4 does not allow for. It gave false batch tickets on healthy simulated fleets (2 in
   1,050 healthy device-days of one fleet: 1.9 per 1,000, over the budget), and the 24-h span
   none (BENCHMARKS.md, issue 15).
2. **Robust standardisation across the fleet.** ``u = (z - median) / (1.4826 · MAD)`` over every
   unit with this fault's detector in the round (the whole product fleet of the worker). Weather,
   the season and setpoint habits move all units together; the median and the MAD follow them,
   and a minority of drifting units (a batch is a small part of a fleet) moves neither. As each
   unit's ``z`` is in its own spread and the fleet's bulk sets the scale, units of different
   models are on one scale, which is what lets a batch be compared with other models' units.
3. **Exceedances.** A unit *stands beyond* when ``u > level`` (5: far beyond the bulk; the units'
   real tails are heavier than normal, so the level is not read as a normal p-value). What an
   exceedance means for the null is learned from the fleet, step 4, not assumed.
4. **The test** (:func:`exceedance_p_value`). The batch's units beyond the level now, ``k``, over
   its ``n`` units, against a reference's rate of exceedances over its recent history. A unit's
   span mean is one independent look per span, so each round adds ``dt / span`` looks per unit
   (and exceedances weighted the same), forgotten with a time constant of ``memory_s``. Under
   the null (the batch is like its reference) the two counts are Poisson with rates proportional
   to their exposures, so ``k`` given ``k + x_rest`` is ``Binomial(k + x_rest, n / (n + e_rest))``:
   the exact conditional test of two Poisson rates, the same test the alarm counts use
   (``cloud/ticketing/policy.py``). The reference's history is what gives it power on small
   fleets: with 20 reference units, *now* alone could never make 3 units of 20 significant (at
   best ``(20/40)^3``); days of them can. **Two references, both tested:** the model's other
   batches (same design, same tails: the sound null, but a model with one other batch of 20
   units needs about six days of its history before three units of 20 can be significant on the
   24-h span), and every other unit of the fault, all models (four times the exposure in a
   fleet of five such batches, at the price of assuming that other models' units have the same
   tails once standardised, step 2). Both are hypotheses of the round, counted in step 5; a
   reference too small to ever give significance costs nothing there (Tarone), so there is no
   exposure threshold to choose. The fleet reference is tested only when other models have
   units (otherwise it is the model's), the model's only when the model has another batch. The
   fleet, not a unit's own null N(0, 1): the shifts' real tails are far heavier than normal (in
   a healthy simulated fleet 1.4 % of the units' 24-h shifts lay beyond 3 robust sigma, against
   0.13 % for a normal). A fleet of a single batch has nothing to compare with: no pooled test.
   **A batch that stands out is no one's reference** (its whole history leaves the sums while it
   stands out and for a day after), from the round it starts to stand out in (the round is
   tested again without it until no other batch starts to): a leaking batch's exceedances are
   not evidence of the healthy rate, and left in they would hide the next batch. What this
   costs: a batch whose model's reference alone would do waits a little longer (the fleet's
   hypotheses enter step 5 too), and where every batch of the fleet is faulty the ones left
   have only faulty references (the alarm count test still applies).
5. **Correction** over every (fault, span, reference, batch) hypothesis of the round, Holm at
   ``alpha``; as the test is discrete, hypotheses that cannot reach significance at all (their
   smallest attainable p-value, every exceedance of the margin in the batch, is above
   ``alpha / m``) are not counted in ``m`` (Tarone 1990): a healthy batch with no unit beyond
   and no exceedance in its reference's history costs nothing. A batch *stands out* when one of
   its adjusted p-values is below ``alpha`` and at least ``min_affected`` of its units are beyond
   the level in that test (as for alarm counts: one or two odd units never make a batch ticket;
   so no batch ticket comes before the third affected unit's shift shows, whatever the span).

``alpha`` (0.01, the alarm count test's) is per round. Rounds an hour apart look at almost the
same 24-h means, so the independent looks are about one a day: a healthy fleet's family-wise
false-alarm rate is at most about ``alpha`` per fleet-day (for a fleet of 100 units, 0.01 a day
is 0.1 per 1,000 device-days), inside the budget of 1 per 1,000 healthy device-days for any
fleet of 10 units or more; the test is discrete and conditional, so below ``alpha`` in practice.
(A span of ``s`` hours makes it about ``24 / s`` looks a day.) The settings were chosen once,
from the statistics above and the healthy spread of the shifts, not fitted to a scenario. Two
guards: a fault with fewer than ``min_units`` units in the round (10) has no robust median and
MAD, so no round for it; the MAD is floored at ``scale_floor`` (0.02 of a window's spread, far
below any fleet's) so that identical shifts do not divide by 0.

What it returns: a :class:`BatchFinding` when a batch starts to stand out (its strongest test:
smallest adjusted p-value, then most units), and again when a unit not named before is beyond the
level (stronger evidence); nothing while it stands out as before, or after a round or a few
below ``alpha`` (what it named is forgotten after a day without standing out). Ticketing makes
it a batch ticket (``cloud/ticketing/batch_findings.py``).

With several workers each sees the units of its own partitions: a batch's units are spread over
partitions by device, so each worker tests a random part of every batch (valid, less power).

Pure: no I/O, no clock; time is the event time the caller passes.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy import stats

from cloud.anomaly.baseline import robust_spread
from cloud.anomaly.standing import Standing

WINDOW_S = 3 * 3600.0  # the baseline-shift detectors' window (``shift.py``)
SPANS = (8,)  # the shifts' spans in windows: 24 h (a 6-h span, 2, was measured: not kept)
REFERENCES = {
    "model": "the model's other batches",
    "fleet": "every other unit of the fault, all models",
}
Shifts = Mapping[str, tuple[Sequence[str], np.ndarray]]  # fault -> (devices, z)


def describe_test(span: int = 8, reference: str = "model", level: float = 5.0) -> str:
    """What a finding says about the test that made it (a ticket's ``opened_by``)."""
    return (
        f"pooled shift: units beyond {level:g} robust sigma of the fleet's"
        f" {span * WINDOW_S / 3600:g}-h shifts now vs {REFERENCES[reference]}, their rate over"
        " their recent history (exact conditional Poisson), Holm (Tarone) over batches, faults,"
        " spans and references"
    )


TEST = describe_test(8, "model")
TEST_FLEET = describe_test(8, "fleet")


@dataclass(frozen=True, slots=True)
class BatchFinding:
    """A batch that stands out by its units' shifts (pooled evidence), for ticketing.

    ``shifts``: the batch's units beyond the level, each with its standardised shift ``u``;
    ``units``/``beyond``: units tested and beyond the level; ``reference_*``: what it was
    compared with (exposure in independent looks of ``span_s`` each, exceedances in the same
    units); ``reference``: ``model`` (the model's other batches) or ``fleet`` (every other unit
    of the fault).
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
    span_s: float = 86_400.0  # the span of the shifts the test took (24 h or 6 h)
    reference: str = "model"  # what it was compared with: ``model`` or ``fleet``

    def as_evidence(self) -> dict[str, object]:
        return {
            "test": self.test,
            "ts": self.ts,
            "fault": self.fault,
            "statistic": self.beyond,
            "units": self.units,
            "level": self.level,
            "reference_units": self.reference_units,
            "span_h": self.span_s / 3600.0,
            "reference": self.reference,
            "reference_exposure_looks": round(self.reference_exposure, 3),
            "reference_exposure_days": round(self.reference_exposure * self.span_s / 86_400.0, 3),
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
    m = 1  # the count at or below alpha / m falls as m grows: the first m where it is <= m
    while m < len(order) and bisect.bisect_right(order, alpha / m) > m:
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
    """A batch's decayed exposure (independent looks of one span) and exceedances."""

    exposure: float = 0.0
    beyond: float = 0.0


class _Round(NamedTuple):
    fault: str
    span: int  # windows
    units: int  # every unit of the fault in the round
    batches: dict[tuple[str, str], dict[str, float]]  # (model, batch) -> device -> u


class _Test(NamedTuple):
    key: tuple[str, str, str]  # (fault, model, batch)
    span: int  # windows
    reference: str  # "model" or "fleet"
    beyond: dict[str, float]  # the batch's units beyond the level, with their shift
    units: int
    x_rest: float
    e_rest: float
    reference_units: int

    def p_value(self) -> float:
        return exceedance_p_value(len(self.beyond), self.units, self.x_rest, self.e_rest)

    def smallest_p(self) -> float:
        """The smallest p-value the test could give with this margin: every exceedance in the
        batch."""
        total = len(self.beyond) + math.floor(self.x_rest)
        if total <= 0 or self.e_rest <= 0:
            return 1.0
        return (self.units / (self.units + self.e_rest)) ** total


def _strongest(test: tuple[_Test, float, float]) -> tuple[float, int]:
    t, _, adjusted = test
    return adjusted, -len(t.beyond)


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
        spans: Sequence[int] = SPANS,
        window_s: float = WINDOW_S,
        level: float = 5.0,
        alpha: float = 0.01,
        min_affected: int = 3,
        min_units: int = 10,
        memory_s: float = 7 * 86_400.0,
        scale_floor: float = 0.02,
    ) -> None:
        self.every_s = every_s
        self.spans = tuple(spans)
        self.window_s = window_s
        self.level = level
        self.alpha = alpha
        self.min_affected = min_affected
        self.min_units = min_units
        self.memory_s = memory_s
        self.scale_floor = scale_floor
        self._reset()

    def _reset(self) -> None:
        # per (fault, span, model, batch)
        self._history: dict[tuple[str, int, str, str], _History] = {}
        # the rounds, and per (fault, model, batch) standing out the units named so far: a day
        # without standing out forgets what was said
        self._standing = Standing(self.every_s, self.spans_s_max)

    def state(self) -> dict[str, object]:
        """What the test has learned, as plain data for a checkpoint: the last round's time,
        every batch's decayed history, and the batches standing out with the units named."""
        return {
            **self._standing.state(),
            "history": {k: (h.exposure, h.beyond) for k, h in self._history.items()},
        }

    def restore(self, state: Mapping[str, object]) -> None:
        """Take back what :meth:`state` gave (the settings stay this object's own).

        >>> a, b = PooledShift(), PooledShift()
        >>> a._history[("cooling_decline", 8, "M", "B1")] = _History(12.5, 1.0)
        >>> b.restore(a.state())
        >>> b._history == a._history and b.state() == a.state()
        True
        """
        history = state["history"]
        assert isinstance(history, Mapping)
        self._standing.restore(state)
        self._history = {tuple(k): _History(float(e), float(b)) for k, (e, b) in history.items()}

    def due(self, ts: float) -> bool:
        """Whether a round is due at event time ``ts``."""
        return self._standing.due(ts)

    def update(
        self,
        ts: float,
        shifts: Mapping[int, Shifts],
        batch_of: Callable[[str], tuple[str, str] | None],
    ) -> list[BatchFinding]:
        """One round at event time ``ts``: per span (in windows, ``spans``) and fault, the units'
        ``(devices, z)`` (``DetectorBank.shifts(span)``; a span not given is not tested);
        ``batch_of(device)`` gives its (model, batch), None if not known. Returns the batches
        that start to stand out, or whose evidence grew."""
        last = self._standing.last_ts
        if not self._standing.begin(ts):
            return []
        gap = math.inf if last is None else ts - last
        rounds: list[_Round] = []
        for span in self.spans:
            span_s = span * self.window_s
            dt = min(gap, span_s)
            decay = math.exp(-dt / self.memory_s)
            for key, h in self._history.items():
                if key[1] == span:
                    h.exposure *= decay
                    h.beyond *= decay
            for fault, (devices, z) in shifts.get(span, {}).items():
                r = self._standardise(fault, span, devices, np.asarray(z, float), batch_of)
                if r is not None:
                    self._add(r, dt / span_s)
                    rounds.append(r)
        # A batch that stands out is no one's reference, from the round it stands out in:
        # test again without it until no other batch starts to stand out.
        out_of_reference = self._standing.keys()
        best: dict[tuple[str, str, str], tuple[float, float, _Test]] = {}
        tested: set[tuple[str, str, str]] = set()
        while True:
            tests = [t for r in rounds for t in self._tests(r, out_of_reference)]
            tested |= {t.key for t in tests}
            p = [t.p_value() for t in tests]
            adjusted = holm_tarone(p, [t.smallest_p() for t in tests], self.alpha)
            new = False
            for t, raw, adj in sorted(zip(tests, p, adjusted, strict=True), key=_strongest):
                if adj < self.alpha and len(t.beyond) >= self.min_affected and t.key not in best:
                    best[t.key] = (raw, adj, t)  # the batch's strongest evidence
                    new |= t.key not in out_of_reference
            if not new:
                break
            out_of_reference |= best.keys()
        for key in tested - best.keys():
            self._standing.quiet(key, ts)
        out = []
        for key, (raw, adj, t) in best.items():
            if not self._standing.stands(key, t.beyond, ts):
                continue  # stands out as before: nothing new to say
            fault, model, batch = key
            out.append(
                BatchFinding(
                    model,
                    batch,
                    fault,
                    ts,
                    describe_test(t.span, t.reference, self.level),
                    t.units,
                    len(t.beyond),
                    t.reference_units,
                    t.e_rest,
                    t.x_rest,
                    raw,
                    adj,
                    self.alpha,
                    self.level,
                    dict(sorted(t.beyond.items(), key=lambda i: (-i[1], i[0]))),
                    t.span * self.window_s,
                    t.reference,
                )
            )
        return out

    @property
    def spans_s_max(self) -> float:
        return max(self.spans, default=0) * self.window_s

    def _standardise(
        self,
        fault: str,
        span: int,
        devices: Sequence[str],
        z: np.ndarray,
        batch_of: Callable[[str], tuple[str, str] | None],
    ) -> _Round | None:
        """One fault's shifts of one span, standardised across the fleet, per batch."""
        if len(devices) < self.min_units:
            return None
        centre = float(np.median(z))
        scale = max(float(robust_spread(z)), self.scale_floor)
        u = (z - centre) / scale
        batches: dict[tuple[str, str], dict[str, float]] = {}
        for d, value in zip(devices, u.tolist(), strict=True):
            mb = batch_of(d)
            if mb is not None:
                batches.setdefault(mb, {})[d] = value
        return _Round(fault, span, len(devices), batches)

    def _add(self, r: _Round, weight: float) -> None:
        """The round's looks and exceedances into the batches' history."""
        for (model, batch), units in r.batches.items():
            h = self._history.setdefault((r.fault, r.span, model, batch), _History())
            h.exposure += weight * len(units)
            h.beyond += weight * sum(1 for v in units.values() if v > self.level)

    def _tests(self, r: _Round, out_of_reference: set[tuple[str, str, str]]) -> list[_Test]:
        """The round's tests: each batch against the model's other batches (a model with
        several), and against every other unit of the fault (when other models have units);
        batches in ``out_of_reference`` are in no one's reference."""
        fault, span = r.fault, r.span
        per_model: dict[str, tuple[float, float, int]] = {}
        total_e = total_x = 0.0
        for (f, s, model, batch), h in self._history.items():
            if f != fault or s != span or (fault, model, batch) in out_of_reference:
                continue
            e, x, k = per_model.get(model, (0.0, 0.0, 0))
            per_model[model] = (e + h.exposure, x + h.beyond, k + 1)
            total_e += h.exposure
            total_x += h.beyond
        batches_in_sums = sum(k for _, _, k in per_model.values())
        now_units: dict[str, int] = {}
        for (model, _), units in r.batches.items():
            now_units[model] = now_units.get(model, 0) + len(units)
        tests = []
        for (model, batch), units in r.batches.items():
            key, n = (fault, model, batch), len(units)
            own, in_sums = self._history[(fault, span, model, batch)], key not in out_of_reference
            if not in_sums:
                own = _History()  # already out of the sums
            model_e, model_x, model_k = per_model.get(model, (0.0, 0.0, 0))
            beyond = {d: v for d, v in units.items() if v > self.level}
            refs = []
            if model_k > in_sums:  # the model's other batches
                e, x = model_e - own.exposure, model_x - own.beyond
                refs.append(("model", e, x, now_units[model] - n))
            if batches_in_sums > model_k:  # other models too: every other unit of the fault
                e, x = total_e - own.exposure, total_x - own.beyond
                refs.append(("fleet", e, x, r.units - n))
            for ref, e, x, ref_units in refs:
                e, x = max(e, 0.0), max(x, 0.0)  # differences of sums: no rounding below zero
                tests.append(_Test(key, span, ref, beyond, n, x, e, ref_units))
        return tests
