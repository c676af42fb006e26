"""The batch side of an evaluation: drifting batches, qloop's batch tickets for them, and the
static-rule baseline's batch alarms beside them (:mod:`evaluation.scoring` puts them in its
report).

Two static rules are scored, both on the run's own readings:

- the rule at its one **fixed** threshold (:data:`evaluation.static_rule.THRESHOLD_C`, chosen once
  on the development fleet): the baseline every scenario shares;
- the rule **tuned on this fleet**: the highest threshold of the grid a user would try
  (:data:`~evaluation.static_rule.GRID_C`) whose false unit alarms on this run's healthy units
  stay within the budget qloop is held to (1 per 1,000 healthy device-days). That is how the
  issue's reporter set up the rule they compared with (ΔT < 8.5 °C on their fleet); it knows
  which units were healthy, which no user knows in advance, so it is the strongest rule of
  its kind and qloop's ratio against it the honest one. A fleet whose healthy units have a
  higher ΔT gets a higher threshold, which alarms on a slow drift long before the fixed one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evaluation.static_rule import BATCH_MIN_UNITS, THRESHOLD_C, batch_alarms, highest_within
from simulators.faults import FAULT_KINDS
from simulators.scenario import Scenario

if TYPE_CHECKING:
    from evaluation.scoring import FleetRun

COOLING = "cooling_decline"
COOLING_KINDS = tuple(k for k, v in FAULT_KINDS.items() if COOLING in v.expected_faults)


@dataclass(frozen=True)
class BatchDelay:
    """One drifting batch: from its first cooling onset to qloop's batch ticket and to the
    static rule's batch alarm, at the fixed threshold (``static_s``) and at the one tuned on the
    fleet (``tuned_s``); NaN: none in the run."""

    seed: int
    batch: str
    affected: int
    first_onset_ts: float
    qloop_s: float
    static_s: float
    watched_s: float  # run left after the first onset: a delay NaN above is longer than this
    opened_by: str = ""  # the batch test that opened qloop's ticket (its evidence ``opened_by``)
    tuned_s: float = math.nan

    def ratio(self, tuned: bool = False) -> tuple[float, bool]:
        """qloop's delay over the static rule's (the tuned rule's with ``tuned``), and whether
        that is an upper bound (the rule raised no batch alarm in the run: its delay is longer
        than ``watched_s``); inf when only qloop missed the batch, NaN when both did."""
        static = self.tuned_s if tuned else self.static_s
        if math.isnan(self.qloop_s):
            return (math.nan if math.isnan(static) else math.inf), False
        if math.isnan(static):
            return self.qloop_s / self.watched_s, True
        return self.qloop_s / static, False


@dataclass(frozen=True)
class StaticScore:
    """The static rule at one threshold, over all seeds."""

    threshold_c: float
    unit_alarms: int
    false_unit_alarms: int  # on units with no injected fault, after judged_after_s
    batch_alarms: int
    false_batch_alarms: int


def first_onsets(run: FleetRun, fault: str) -> dict[str, float]:
    """Per batch, the first onset of an injected fault that ``fault`` explains."""
    first: dict[str, float] = {}
    for t in run.truth:
        if fault in FAULT_KINDS[t.kind].expected_faults:
            first[t.batch] = min(first.get(t.batch, math.inf), t.onset_ts)
    return first


def drifting(run: FleetRun) -> dict[str, tuple[int, float]]:
    """Batches with >= BATCH_MIN_UNITS units with a cooling fault: (units, first onset)."""
    units: dict[str, set[str]] = {}
    for t in run.truth:
        if t.kind in COOLING_KINDS:
            units.setdefault(t.batch, set()).add(t.device)
    first = first_onsets(run, COOLING)
    return {b: (len(u), first[b]) for b, u in units.items() if len(u) >= BATCH_MIN_UNITS}


def batch_delays(run: FleetRun, end_ts: float, tuned_c: float | None = None) -> list[BatchDelay]:
    """Each drifting batch of ``run``: qloop's delay, the fixed rule's and (when a threshold was
    tuned) the tuned rule's."""
    tickets: dict[str, tuple[float, str]] = {}
    for t in run.tickets:
        if t.scope == "batch" and t.fault == COOLING:
            tickets.setdefault(t.batch, (t.opened_ts, t.opened_by))  # opened in time order
    alarms = _batch_alarms(run, THRESHOLD_C)
    tuned = _batch_alarms(run, tuned_c) if tuned_c is not None else {}
    out = []
    for batch, (units, onset) in sorted(drifting(run).items()):
        (q, by), s = tickets.get(batch, (math.nan, "")), alarms.get(batch, math.nan)
        u = tuned.get(batch, math.nan)
        out.append(
            BatchDelay(
                run.seed,
                batch,
                units,
                onset,
                q - onset if q >= onset else math.nan,
                s - onset if s >= onset else math.nan,
                end_ts - onset,
                by if q >= onset else "",
                u - onset if u >= onset else math.nan,
            )
        )
    return out


def _batch_alarms(run: FleetRun, threshold: float) -> dict[str, float]:
    return batch_alarms((ts, d, run.batch_of[d]) for ts, d in run.static_alarms.get(threshold, []))


def score_static(
    scenario: Scenario, runs: Sequence[FleetRun], threshold: float, judged_after_s: float
) -> StaticScore:
    """The static rule at ``threshold`` over ``runs``: its alarms, and the false ones."""
    judged_from = scenario.start_ts + judged_after_s
    alarms = false_units = batches = false_batches = 0
    for run in runs:
        faulty = {t.device for t in run.truth}
        unit_alarms = run.static_alarms.get(threshold, [])
        alarms += len(unit_alarms)
        false_units += sum(d not in faulty and ts >= judged_from for ts, d in unit_alarms)
        raised = _batch_alarms(run, threshold)
        batches += len(raised)
        drift = drifting(run)
        false_batches += sum(ts < drift.get(b, (0, math.inf))[1] for b, ts in raised.items())
    return StaticScore(threshold, alarms, false_units, batches, false_batches)


def tuned_threshold(
    scenario: Scenario, runs: Sequence[FleetRun], judged_after_s: float, healthy_days: float
) -> float | None:
    """The rule tuned on this fleet: the highest threshold every run was scored at whose false
    unit alarms stay within the budget over ``healthy_days`` (None: none does, or no healthy
    device-days to tune on)."""
    if healthy_days <= 0 or not runs:
        return None
    common = set.intersection(*(set(r.static_alarms) for r in runs))
    rates = {
        t: 1000.0 * score_static(scenario, runs, t, judged_after_s).false_unit_alarms / healthy_days
        for t in common
    }
    return highest_within(rates)
