"""When a batch stands out, how bad it is, who gets it and by when: rules as data, pure functions.

Batch statistics
----------------
For one (model, fault) every registered batch of the model is tested: does this batch have more
affected units (distinct devices whose fault is currently active) than the rest of the model's
fleet, given how long each has been in the field? Exposure is unit-days in the field (each unit
counts at least ``min_unit_days``, so brand-new units are not weightless). With ``k_b`` affected
units over exposure ``E_b`` in the batch and ``k_r`` over ``E_r`` in the rest of the model, and
equal rates under the null hypothesis, ``k_b`` given ``k_b + k_r`` is
``Binomial(k_b + k_r, E_b / (E_b + E_r))``: the exact conditional test for comparing two Poisson
rates. The one-sided p-value is ``P(X >= k_b)``.
A model with a single batch has no rest to compare with; that batch is tested against a background
rate per unit-day instead (one-sided Poisson test). P-values are adjusted across all the model's
batches with Holm (family-wise error, the default) or Benjamini–Hochberg (false discovery rate).

For the detectors' alarms (``decisions.py``, with ``TicketPolicy.background_too``) a batch of a
model with other batches is tested against the background rate too, as a second hypothesis in
the same correction: a rest of one or two small batches says little (3 of 20 units against 0 of
20 gives p = 0.125, and it takes 8 of them for Holm's 0.01), so a batch whose units alarm far
beyond what healthy units do stands out by this test at its third alarm, as a user's static rule
alarms at its third unit, and a problem shared by every batch of a model (which the conditional
test cannot see) shows on each. The background rate (5e-4 per unit-day) is about 20 times the
false tickets measured on the simulated fleets (2 in 87,096 healthy device-days, S15). Found on the
``evenings`` fleets (S16): half of one batch of each model leaking, one reference batch of 20
each; batch tickets came 22-138 h after the first onset, with 3-6 units alarmed for days before.
Complaints (``complaint_batches.py``) keep the conditional test alone: no background rate of
complaints is measured.

A batch *stands out* when its adjusted p-value is below ``alpha`` (0.01) AND it has at least
``min_affected`` (3) affected units: one false finding in a healthy batch never makes a batch
ticket.

A second batch test runs in the worker on the units' continuous shifts rather than their alarms
(``cloud/anomaly/pooled.py``: the same exact conditional test on units beyond a shift level);
its findings open batch tickets through ``batch_findings.py``.

Example: 8 of 20 units affected against 0 of 60 elsewhere (same days in field) gives
``p = 0.25**8 ≈ 1.5e-5``; 1 of 20 gives ``p = 0.25``.

Grading, routing, SLA
---------------------
Tables below, first matching rule wins. Severity: safety ⇒ III; share ≥ 30 % or ≥ 20 units ⇒ III;
share ≥ 10 % ⇒ II; else I. Priority follows severity (III urgent, II normal, I low; safety always
urgent). Deadlines of the stages are in ``sla.py`` (``TicketPolicy.sla``).

Verification
------------
``verify_window_s`` (48 h of event time) is how long after a fix's ``effective_from`` a fixed unit
may keep reporting data without its fault clearing before the fix counts as failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import numpy as np
from scipy import stats

from cloud.ticketing.sla import SlaPolicy

SECONDS_PER_DAY = 86_400.0

Correction = Literal["holm", "bh"]


@dataclass(frozen=True, slots=True)
class SeverityRule:
    """Gives ``severity`` when every condition that is set holds."""

    severity: str
    categories: frozenset[str] | None = None
    min_share: float | None = None
    min_affected: int | None = None

    def matches(self, category: str, affected: int, share: float) -> bool:
        return (
            (self.categories is None or category in self.categories)
            and (self.min_share is None or share >= self.min_share)
            and (self.min_affected is None or affected >= self.min_affected)
        )


@dataclass(frozen=True, slots=True)
class RouteRule:
    """Routes tickets matching every set field to ``departments`` (the first one leads)."""

    departments: tuple[str, ...]
    fault: str | None = None
    category: str | None = None
    model: str | None = None

    def matches(self, fault: str, category: str, model: str) -> bool:
        return (
            (self.fault is None or self.fault == fault)
            and (self.category is None or self.category == category)
            and (self.model is None or self.model == model)
        )


DEFAULT_SEVERITY_RULES: tuple[SeverityRule, ...] = (
    SeverityRule("III", categories=frozenset({"safety"})),
    SeverityRule("III", min_share=0.30),
    SeverityRule("III", min_affected=20),
    SeverityRule("II", min_share=0.10),
)

DEFAULT_PRIORITY_BY_SEVERITY: dict[str, str] = {"III": "urgent", "II": "normal", "I": "low"}
URGENT_CATEGORIES: frozenset[str] = frozenset({"safety"})

DEFAULT_ROUTES: tuple[RouteRule, ...] = (
    RouteRule(("R&D", "Production"), fault="cooling_decline"),
    RouteRule(("Production",), fault="noise_rise"),
    RouteRule(("Production",), fault="vibration_rise"),
    RouteRule(("Purchasing",), fault="sensor_stuck"),  # supplier quality
    RouteRule(("R&D",), fault="clock_skew"),  # the unit's firmware keeps its clock
    RouteRule(("R&D", "Quality"), fault="overcurrent"),
    RouteRule(("Service",), fault="device_offline"),
    RouteRule(("Quality", "R&D"), category="safety"),
)
DEFAULT_DEPARTMENTS: tuple[str, ...] = ("Quality",)

SEVERITY_ORDER: dict[str, int] = {"I": 1, "II": 2, "III": 3}
PRIORITY_ORDER: dict[str, int] = {"low": 1, "normal": 2, "urgent": 3}


@dataclass(frozen=True, slots=True)
class TicketPolicy:
    """Every knob of ticket opening; build one from settings and pass it to the service."""

    alpha: float = 0.01
    min_affected: int = 3
    correction: Correction = "holm"
    device_tickets: bool = True
    min_unit_days: float = 1.0
    background_rate_per_unit_day: float = 5e-4
    background_too: bool = True  # alarms: each batch against the background rate as well
    severity_rules: tuple[SeverityRule, ...] = DEFAULT_SEVERITY_RULES
    default_severity: str = "I"
    priority_by_severity: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_PRIORITY_BY_SEVERITY)
    )
    urgent_categories: frozenset[str] = URGENT_CATEGORIES
    routes: tuple[RouteRule, ...] = DEFAULT_ROUTES
    default_departments: tuple[str, ...] = DEFAULT_DEPARTMENTS
    sla: SlaPolicy = field(default_factory=SlaPolicy)
    verify_window_s: float = 48 * 3600.0
    repeat_similarity: float = 0.8  # complaints about one unit this alike are one problem
    # repeated complaints alert the department head (``alerts.py``): this many complaints
    # received within the window of each other about one unit or from one contact, or this many
    # units of one batch complaining about one problem
    repeat_alert_window_s: float = 30 * SECONDS_PER_DAY
    repeat_alert_unit_min: int = 2
    repeat_alert_customer_min: int = 2
    repeat_alert_batch_min: int = 3
    # who heads each department ("*": everyone else's), named in the alerts
    department_heads: dict[str, str] = field(default_factory=dict)

    # --- grading ---------------------------------------------------------------------------
    def severity(self, category: str, affected: int, share: float) -> str:
        for rule in self.severity_rules:
            if rule.matches(category, affected, share):
                return rule.severity
        return self.default_severity

    def priority(self, category: str, severity: str) -> str:
        if category in self.urgent_categories:
            return "urgent"
        return self.priority_by_severity.get(severity, "normal")

    # --- routing ---------------------------------------------------------------------------
    def departments(self, fault: str, category: str, model: str) -> tuple[str, ...]:
        for rule in self.routes:
            if rule.matches(fault, category, model):
                return rule.departments
        return self.default_departments

    def ack_deadline(self, priority: str) -> timedelta:
        return self.sla.ack_deadline(priority)


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """What the database knows about one batch for one (model, fault)."""

    batch: str
    units: int
    exposure_days: float
    affected: int


@dataclass(frozen=True, slots=True)
class BatchResult:
    batch: str
    units: int
    affected: int
    exposure_days: float
    rest_units: int
    rest_affected: int
    rest_exposure_days: float
    share: float
    rate_ratio: float | None  # batch rate / rest rate; None when the rest has no affected units
    p_value: float
    p_adjusted: float
    stands_out: bool
    test: str

    def as_evidence(self, policy: TicketPolicy) -> dict[str, object]:
        return {
            "test": self.test,
            "correction": policy.correction,
            "alpha": policy.alpha,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "share": round(self.share, 6),
            "rate_ratio": self.rate_ratio,
            "batch_units": self.units,
            "batch_affected": self.affected,
            "batch_exposure_days": round(self.exposure_days, 3),
            "rest_units": self.rest_units,
            "rest_affected": self.rest_affected,
            "rest_exposure_days": round(self.rest_exposure_days, 3),
        }


TEST_CONDITIONAL = "exact conditional binomial, batch vs rest of model, exposure in unit-days"
TEST_BACKGROUND = "one-sided Poisson vs background rate (model has no other batch)"
TEST_BEYOND_BACKGROUND = "one-sided Poisson vs background rate (beside the rest of the model)"


def exposure_p_value(
    affected: int, exposure: float, rest_affected: int, rest_exposure: float, background: float
) -> float:
    """One-sided p-value that the batch's rate of affected units exceeds the reference rate."""
    if affected <= 0 or exposure <= 0:
        return 1.0
    if rest_exposure > 0:
        p0 = exposure / (exposure + rest_exposure)
        return float(stats.binom.sf(affected - 1, affected + rest_affected, p0))
    return float(stats.poisson.sf(affected - 1, background * exposure))


def adjust(p_values: Sequence[float], method: Correction = "holm") -> list[float]:
    """Holm step-down or Benjamini–Hochberg adjusted p-values, in the input order."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * ranked))
    elif method == "bh":
        scaled = ranked * m / np.arange(1, m + 1)
        adjusted = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    else:
        raise ValueError(f"unknown correction {method!r} (holm or bh)")
    out = np.empty(m)
    out[order] = adjusted
    return [float(x) for x in out]


def compare_batches(
    counts: Sequence[BatchCounts], policy: TicketPolicy, *, background: bool = False
) -> list[BatchResult]:
    """Test every batch of one model for one fault against the rest of that model (and, with
    ``background`` and a rest, against the background rate too: two hypotheses a batch, one
    correction; a batch's result is the test that gives it the smaller adjusted p-value)."""
    total_units = sum(c.units for c in counts)
    total_affected = sum(c.affected for c in counts)
    total_exposure = sum(c.exposure_days for c in counts)
    rate = policy.background_rate_per_unit_day
    raw: list[float] = []
    for c in counts:
        raw.append(
            exposure_p_value(
                c.affected,
                c.exposure_days,
                total_affected - c.affected,
                total_exposure - c.exposure_days,
                rate,
            )
        )
    beside = [i for i, c in enumerate(counts) if background and total_exposure > c.exposure_days]
    second = [exposure_p_value(counts[i].affected, counts[i].exposure_days, 0, 0.0, rate)
              for i in beside]  # fmt: skip
    every = adjust(raw + second, policy.correction)
    adjusted, tests = every[: len(raw)], [TEST_CONDITIONAL] * len(raw)
    for j, i in enumerate(beside):
        if every[len(raw) + j] < adjusted[i]:
            raw[i], adjusted[i], tests[i] = second[j], every[len(raw) + j], TEST_BEYOND_BACKGROUND
    results = []
    for c, p, p_adj, test in zip(counts, raw, adjusted, tests, strict=True):
        rest_affected = total_affected - c.affected
        rest_exposure = total_exposure - c.exposure_days
        ratio = None
        if rest_affected > 0 and c.exposure_days > 0 and rest_exposure > 0:
            ratio = round((c.affected / c.exposure_days) / (rest_affected / rest_exposure), 6)
        results.append(
            BatchResult(
                batch=c.batch,
                units=c.units,
                affected=c.affected,
                exposure_days=c.exposure_days,
                rest_units=total_units - c.units,
                rest_affected=rest_affected,
                rest_exposure_days=rest_exposure,
                share=c.affected / c.units if c.units else 0.0,
                rate_ratio=ratio,
                p_value=p,
                p_adjusted=p_adj,
                stands_out=p_adj < policy.alpha and c.affected >= policy.min_affected,
                test=test if rest_exposure > 0 else TEST_BACKGROUND,
            )
        )
    return results
