"""Detector accuracy, measured: a simulated fleet with known faults through the cloud's ingest.

``qloop eval SCENARIO`` runs one fleet of the scenario per seed (seed, seed + 1, ...: independent
fleets) through the edge's cores and the cloud's :class:`~cloud.ingest.ingestor.Ingestor`
(:mod:`evaluation.replay`), its findings on into a ticket service, and the static-rule baseline
(:mod:`evaluation.static_rule`) over the same readings; then matches the findings, tickets and
alarms to the fleet's ground truth (:mod:`evaluation.scoring`) and prints the per-fault table,
qloop's tickets and the batch delays of qloop and the static rule side by side.
:func:`evaluate` is the same as a function (the accuracy benchmark calls it); :func:`run` is the
command.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from cloud.anomaly.bank import DetectorFactory
from evaluation.replay import run_fleet
from evaluation.scoring import (
    DEFAULT_HORIZON_S,
    DEFAULT_JUDGED_AFTER_S,
    FaultScore,
    FleetRun,
    Report,
    score,
)
from evaluation.static_rule import GRID_C
from simulators.scenario import Scenario, ScenarioError, load_scenario

__all__ = ["FaultScore", "FleetRun", "Report", "evaluate", "run", "run_fleet", "score"]


def evaluate(
    scenario: Scenario,
    *,
    detectors: Mapping[str, Sequence[DetectorFactory]] | None = None,
    seeds: int = 1,
    block_rows: int | None = None,
    horizon_s: float = DEFAULT_HORIZON_S,
    judged_after_s: float = DEFAULT_JUDGED_AFTER_S,
) -> Report:
    """Run ``seeds`` fleets of ``scenario`` (seed, seed + 1, ...) and score their findings, the
    tickets they opened and the static rule beside them. ``block_rows`` (readings per telemetry
    block, default 60) applies to a scenario that does not set its own."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if block_rows is not None and block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    runs = [
        run_fleet(
            replace(scenario, seed=scenario.seed + k),
            detectors=detectors,
            block_rows=block_rows,
            static_thresholds=GRID_C,  # the fixed threshold and the ones a tuning tries
        )
        for k in range(seeds)
    ]
    return score(scenario, runs, horizon_s=horizon_s, judged_after_s=judged_after_s)


def run(
    scenario_name: str,
    *,
    seeds: int = 1,
    first_seed: int | None = None,
    block_rows: int | None = None,
    horizon_h: float = DEFAULT_HORIZON_S / 3600.0,
    json_path: str | Path | None = None,
) -> int:
    """``qloop eval``: print the accuracy table of a built-in scenario or TOML file (and write
    the report as JSON to ``json_path``); the exit status (2: a scenario or argument error).
    ``first_seed`` replaces the scenario's own seed: fleets of the same kind that the
    detectors' settings were not chosen on (S24: the development seeds gave 978/1,025 15 %
    losses within 48 h, seeds 50 on 966/1,025; BENCHMARKS.md)."""
    try:
        scenario = load_scenario(scenario_name)
        if first_seed is not None:
            scenario = replace(scenario, seed=first_seed)
        report = evaluate(
            scenario, seeds=seeds, block_rows=block_rows, horizon_s=horizon_h * 3600.0
        )
    except (ScenarioError, ValueError) as e:
        print(f"qloop eval: {e}", file=sys.stderr)
        return 2
    print(f"## {scenario.name}: {scenario.description}\n")
    print(report.table())
    if json_path:
        write_report(report, json_path)
    return 0


def write_report(report: Report, path: str | Path) -> None:
    """``report`` as JSON to ``path`` (what ``qloop eval --json`` writes)."""
    doc = json.dumps(report.to_json(), indent=2, allow_nan=True) + "\n"
    Path(path).write_text(doc, encoding="utf-8")
