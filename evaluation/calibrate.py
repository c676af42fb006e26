"""How the static rule's one threshold (:data:`evaluation.static_rule.THRESHOLD_C`) was chosen.

``python -m evaluation.calibrate`` runs the development fleet qloop was tuned on (the built-in
``healthy`` scenario, 3 seeds) with the static rule at every threshold of a 0.5 °C grid and
prints, per threshold, its false unit and batch alarms per 1,000 healthy device-days; the chosen
threshold is the highest one whose false unit alarms stay within qloop's false-alarm budget
(1 per 1,000 healthy device-days). A higher threshold finds a capacity loss sooner, so this is the
most sensitive static rule that is as quiet as qloop is required to be. It is chosen once and
written into ``static_rule.py``; no scenario is ever scored at another threshold.
"""

from __future__ import annotations

from dataclasses import replace

from evaluation.batches import score_static
from evaluation.replay import run_fleet
from evaluation.scoring import DEFAULT_JUDGED_AFTER_S, FleetRun
from evaluation.static_rule import BUDGET_PER_1000, GRID_C, highest_within
from simulators.scenario import Scenario, load_scenario


def false_rates(
    scenario: Scenario, runs: list[FleetRun], thresholds: tuple[float, ...]
) -> dict[float, tuple[float, float]]:
    """Per threshold: false unit and batch alarms per 1,000 judged device-days of a fleet with
    no injected faults (every alarm is a false one)."""
    days = sum(len(r.devices) for r in runs) * (scenario.duration_s - DEFAULT_JUDGED_AFTER_S)
    days /= 86400.0
    out = {}
    for t in thresholds:
        st = score_static(scenario, runs, t, DEFAULT_JUDGED_AFTER_S)  # no faults: all false
        out[t] = (1000.0 * st.false_unit_alarms / days, 1000.0 * st.false_batch_alarms / days)
    return out


def choose(rates: dict[float, tuple[float, float]], budget: float = BUDGET_PER_1000) -> float:
    """The highest threshold whose false unit alarm rate is within ``budget``."""
    chosen = highest_within({t: unit for t, (unit, _batch) in rates.items()}, budget)
    if chosen is None:
        raise ValueError(f"no threshold within {budget:g} false unit alarms per 1,000")
    return chosen


def main(scenario_name: str = "healthy", seeds: int = 3) -> float:
    scenario = load_scenario(scenario_name)
    if any(b.faults for b in scenario.batches):
        raise SystemExit(f"{scenario_name}: a calibration fleet must have no injected faults")
    runs = [
        run_fleet(
            replace(scenario, seed=scenario.seed + k), static_thresholds=GRID_C, tickets=False
        )
        for k in range(seeds)
    ]
    rates = false_rates(scenario, runs, GRID_C)
    print("| threshold (°C) | false unit alarms / 1,000 device-days | false batch alarms |")
    print("| ---: | ---: | ---: |")
    for t, (unit, batch) in rates.items():
        print(f"| {t:g} | {unit:.2f} | {batch:.2f} |")
    chosen = choose(rates)
    print(f"\nchosen: {chosen:g} °C (highest within {BUDGET_PER_1000:g} per 1,000 device-days)")
    return chosen


if __name__ == "__main__":
    main()
