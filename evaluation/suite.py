"""Issue 15's acceptance in one command: ``qloop eval`` over every built-in evaluation scenario,
totalled.

``python -m evaluation.suite [--first-seed-offset N] [--jobs J] [--out DIR]`` runs each built-in
scenario but ``smoke`` and ``scale`` (a demo and a load test, not accuracy scenarios): 3 seeds
each, 1 for the long or dense ones (:data:`ONE_SEED`), as every session's table in BENCHMARKS.md
has. With ``--first-seed-offset N`` each scenario runs on its seed + N on instead of its own
(:func:`evaluation.fleet.run`'s ``first_seed``): fleets of the same kind that the detectors'
settings were not chosen on (S24). Each scenario's report goes to ``DIR/NAME.json`` (the same
JSON ``qloop eval --json`` writes), and the totals are printed (:func:`totals`, :func:`table`):

- 15 % cooling losses found within the horizon (48 h), against the goal of 95 %;
- false tickets (device and batch) per fault per 1,000 healthy device-days over the whole run,
  against the goal of at most 1, and the scenarios where one fault exceeds that rate alone;
- drifting batches whose qloop batch ticket came within ⅓ of the static rule's delay (a bound
  where the rule never alarmed), and the median ratio.

Scenarios run ``--jobs`` at a time (default 2, one per core here), each in its own process.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from evaluation.fleet import evaluate, write_report
from evaluation.goals import FALSE_GOAL, RATIO_GOAL, RECALL_GOAL
from evaluation.scoring import Report, per_1000
from simulators.scenario import BUILTIN_SCENARIOS, load_scenario

NOT_ACCURACY = frozenset({"smoke", "scale"})  # a demo's and a load test's fleets
# long or dense fleets: one seed is hours of simulated readings enough
ONE_SEED = frozenset({"seasons", "week", "leak15", "onehz", "onehz-healthy"})
SEEDS = 3
MAGNITUDE = 0.15  # the size of loss the recall goal is stated for


def scenarios() -> list[str]:
    """The built-in accuracy scenarios."""
    return [n for n in BUILTIN_SCENARIOS if n not in NOT_ACCURACY]


def run_one(name: str, seeds: int, offset: int, out: Path | None) -> Report:
    """One scenario's report on ``seeds`` fleets from its own seed + ``offset``; its JSON to
    ``out/NAME.json`` when ``out`` is given."""
    scenario = load_scenario(name)
    report = evaluate(replace(scenario, seed=scenario.seed + offset), seeds=seeds)
    if out is not None:
        write_report(report, out / f"{scenario.name}.json")
    return report


@dataclass
class Totals:
    eligible: int = 0  # losses of MAGNITUDE with the horizon's run after their onset
    found: int = 0  # of those, found within the horizon
    healthy_device_days: float = 0.0
    false_tickets: dict[str, int] = field(default_factory=dict)  # by fault
    over: list[tuple[str, str, float]] = field(default_factory=list)  # scenario, fault, rate
    ratios: list[float] = field(default_factory=list)  # per drifting batch (bounds included)

    @property
    def recall(self) -> float:
        return self.found / self.eligible if self.eligible else math.nan

    def per_1000(self, fault: str) -> float:
        return per_1000(self.false_tickets.get(fault, 0), self.healthy_device_days)


def totals(reports: Iterable[Report]) -> Totals:
    """The reports' figures added up (see the module docstring)."""
    t = Totals()
    for r in reports:
        for s in r.sizes:
            if math.isclose(s.magnitude, MAGNITUDE):
                t.eligible += s.eligible
                t.found += s.detected_in_horizon
        t.healthy_device_days += r.healthy_device_days
        for k in r.tickets:
            n = k.false_device_tickets + k.false_batch_tickets
            t.false_tickets[k.fault] = t.false_tickets.get(k.fault, 0) + n
            if n and r.per_1000(n) > FALSE_GOAL:
                t.over.append((r.scenario, k.fault, r.per_1000(n)))
        t.ratios += [b.ratio()[0] for b in r.batch_delays]
    return t


def table(t: Totals) -> str:
    """The totals as Markdown, each beside its goal."""
    faults = sorted(t.false_tickets)
    worst = max((t.per_1000(f) for f in faults), default=0.0)
    ratios = [r for r in t.ratios if not math.isnan(r)]
    within = sum(r <= RATIO_GOAL for r in ratios)
    median = statistics.median(ratios) if ratios else math.nan
    by_fault = ", ".join(f"`{f}` {t.false_tickets[f]}" for f in faults if t.false_tickets[f])
    over = "; ".join(f"`{s}` `{f}` {rate:.2f}" for s, f, rate in t.over) or "none"
    lines = [
        "| | figure | goal |",
        "| --- | ---: | ---: |",
        f"| {MAGNITUDE:.0%} losses found within 48 h | {t.found}/{t.eligible} "
        f"({t.recall:.1%}) | ≥ {RECALL_GOAL:.0%} |",
        f"| false tickets, the most of one fault per 1,000 healthy device-days | {worst:.2f} "
        f"({by_fault or 'none'} in {t.healthy_device_days:,.0f}) | ≤ {FALSE_GOAL:g} |",
        f"| drifting batches ticketed within ⅓ of the static rule's delay | {within} of "
        f"{len(ratios)} (median ratio {median:.2f}) | ≤ {RATIO_GOAL:g} |",
        "",
        f"Scenarios where one fault alone exceeds {FALSE_GOAL:g} per 1,000: {over}.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.suite", description=__doc__)
    p.add_argument("--first-seed-offset", type=int, default=0, help="run seed + N on (default 0)")
    p.add_argument("--jobs", type=int, default=2, help="scenarios at a time (default 2)")
    p.add_argument("--out", type=Path, help="write each scenario's JSON report here")
    p.add_argument("names", nargs="*", help="scenarios (default: every built-in accuracy one)")
    a = p.parse_args(argv)
    if a.jobs < 1 or a.first_seed_offset < 0:
        p.error("--jobs must be >= 1 and --first-seed-offset >= 0")
    names = a.names or scenarios()
    if a.out is not None:
        a.out.mkdir(parents=True, exist_ok=True)
    seeds = [1 if n in ONE_SEED else SEEDS for n in names]
    offsets = [a.first_seed_offset] * len(names)
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        reports = list(pool.map(run_one, names, seeds, offsets, [a.out] * len(names)))
    for r in reports:
        print(f"{r.scenario}: seeds {', '.join(map(str, r.seeds))}", file=sys.stderr)
    print(table(totals(reports)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
