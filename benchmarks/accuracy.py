"""Detector accuracy against its targets as benchmark figures: ``qloop eval`` on the scenarios
BENCHMARKS.md reports — ``leak15`` (recall for a 15 % capacity loss within 48 h), ``healthy``
(false findings per 1,000 healthy device-days) and ``week`` (every fault kind) — with
:func:`evaluation.fleet.evaluate`, 3 seeds each.

Accuracy figures are counts, not timings, so their "same-run baseline" is the reference the
ratio needs, taken from the same run's ground truth rather than measured separately:

* recall: faults found beside faults injected (what a detector that finds everything reports; a
  null detector finds 0) — the ratio is the recall;
* false findings on healthy units beside what the issue's target allows for the healthy
  device-days this run judged (1 per 1,000) — a ratio <= 1 meets the target;
* for a scenario with a drifting batch (issue 15), qloop's batch-ticket delay beside the
  static-rule baseline's batch alarm from the same run (:mod:`evaluation.static_rule`) — a ratio
  <= 0.33 meets the target.

Quick mode shrinks every batch to 2 units and runs one seed: seconds, and figures that say
nothing about accuracy (the ``week`` fleet then has no faulty unit at all).
"""

from __future__ import annotations

import math
from dataclasses import replace

from benchmarks.common import ROOT, Result
from evaluation.fleet import Report, evaluate
from evaluation.goals import FALSE_GOAL, RATIO_GOAL, RECALL_GOAL
from simulators.scenario import Scenario, load_scenario

SCENARIOS = ("leak15", "healthy", "week")
RECALL_TARGET = {("leak15", "cooling_decline"): RECALL_GOAL}  # within 48 h


def scenario(name: str, units_per_batch: int | None = None) -> Scenario:
    """A scenario of simulators/scenarios/, each batch cut to ``units_per_batch`` if given."""
    s = load_scenario(ROOT / "simulators" / "scenarios" / f"{name}.toml")
    if units_per_batch is None:
        return s
    return replace(s, batches=tuple(replace(b, units=units_per_batch) for b in s.batches))


def add_report(res: Result, report: Report, command: str = "") -> None:
    """The report's recall and false-finding figures, each beside its reference; ``command``
    (the ``qloop eval`` line that prints the per-fault table) goes into the note."""
    name = report.scenario
    h = f"{report.horizon_s / 3600:g} h"
    for row in report.rows:
        if row.injected:
            res.add(
                f"{name}: `{row.fault}` faults found",
                row.detected,
                "faults",
                "faults injected (a null detector finds 0)",
                row.injected,
            )
        if row.eligible:
            target = RECALL_TARGET.get((name, row.fault))
            res.add(
                f"{name}: `{row.fault}` faults found within {h} of onset",
                row.detected_in_horizon,
                "faults",
                f"faults injected with >= {h} of run after onset",
                row.eligible,
                target="" if target is None else f"ratio (recall) >= {target:.0%}",
                met=None if target is None else row.recall_in_horizon >= target,
            )
    false = sum(r.false_on_healthy for r in report.rows)
    allowed = FALSE_GOAL * report.healthy_device_days / 1000
    res.add(
        f"{name}: false findings on healthy units ({report.healthy_device_days:,.0f} judged "
        "device-days)",
        false,
        "findings",
        "allowed by the target for those device-days (1 per 1,000; derived, not measured)",
        allowed,
        target="ratio <= 1",
        met=false <= allowed,
    )
    add_batch_delay(res, report)
    findings = sum(r.findings for r in report.rows)
    true = sum(r.true_findings for r in report.rows)
    res.notes.append(
        f"{name}: {report.units} units over seeds {', '.join(map(str, report.seeds))}; "
        f"{findings} active findings, {true} true"
        + (f"; per-fault table: `{command}`." if command else ".")
    )


def add_batch_delay(res: Result, report: Report) -> None:
    """qloop's median batch-ticket delay beside the static rule's (same run), at its fixed
    threshold and at the one tuned on the fleet (``evaluation/batches.py``), if the scenario has
    drifting batches. When the rule raised no batch alarm in the run, its baseline is the
    shortest time the run watched a batch after its onset (a lower bound on the rule's delay)."""
    if not report.batch_delays:
        return
    for tuned, rule in ((False, "static rule"), (True, "static rule tuned on the fleet")):
        if tuned and report.tuned is None:
            continue
        q, s, _ = report.delays(tuned)
        baseline, name = s, f"{rule}'s batch alarm, median (same run)"
        if math.isnan(s):
            baseline = min(b.watched_s for b in report.batch_delays)
            name = f"{rule}: no batch alarm within this long after an onset (a lower bound)"
        res.add(
            f"{report.scenario}: batch ticket after the first unit's onset, median"
            + (" (against the tuned rule)" if tuned else ""),
            q / 3600,
            "h",
            name,
            baseline / 3600,
            target=f"ratio <= {RATIO_GOAL}",
            met=q / baseline <= RATIO_GOAL if not math.isnan(q) else False,
        )


def bench_accuracy(quick: bool = False) -> Result:
    units, seeds = (2, 1) if quick else (None, 3)
    res = Result("accuracy")
    for name in SCENARIOS:
        command = "" if quick else f"qloop eval simulators/scenarios/{name}.toml --seeds {seeds}"
        add_report(res, evaluate(scenario(name, units), seeds=seeds), command)
    res.params = {"scenarios": list(SCENARIOS), "seeds": seeds, "units_per_batch": units}
    return res
