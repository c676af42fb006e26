"""Scoring an evaluation run: its findings matched to the fleet's ground truth.

- an injected fault is **detected** when its device gets an active finding with one of the fault
  names its kind should produce (``FAULT_KINDS[kind].expected_faults``) at or after its onset;
  the **delay** is from the onset to the first such finding; ``recall@h`` counts detections
  within ``horizon_s``, over the faults whose onset lies at least ``horizon_s`` before the end;
- a finding is **true** when its device has an injected fault that accepts the finding's name
  and the finding comes after that fault's onset (and not more than ``horizon_s`` after its
  repair); every other finding is false;
- **healthy device-days** are the days of units with no injected fault at all, counted after
  ``judged_after_s`` (default 36 h: the learning period of the baseline detectors, during which
  they cannot fire, so counting it would flatter the rate). Findings on those units are the
  false findings per 1,000 healthy device-days.

Rows of the report are per reported fault name (CONTRACTS.md §3).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from cloud.anomaly.base import Finding
from cloud.ingest.ingestor import IngestStats
from simulators.fleet import InjectedFault
from simulators.scenario import FAULT_KINDS, Scenario

DEFAULT_HORIZON_S = 48 * 3600.0
DEFAULT_JUDGED_AFTER_S = 36 * 3600.0


@dataclass(frozen=True)
class FaultScore:
    """Accuracy for one reported fault name."""

    fault: str
    injected: int  # injected faults whose main expected fault is this one
    detected: int
    eligible: int  # injected faults with at least horizon_s of run after their onset
    detected_in_horizon: int
    findings: int  # active findings with this name
    true_findings: int
    false_on_healthy: int  # findings on units with no injected fault
    delays_s: tuple[float, ...] = ()

    @property
    def recall(self) -> float:
        return self.detected / self.injected if self.injected else math.nan

    @property
    def recall_in_horizon(self) -> float:
        return self.detected_in_horizon / self.eligible if self.eligible else math.nan

    @property
    def precision(self) -> float:
        return self.true_findings / self.findings if self.findings else math.nan

    @property
    def median_delay_s(self) -> float:
        return statistics.median(self.delays_s) if self.delays_s else math.nan


@dataclass(frozen=True)
class Report:
    scenario: str
    seeds: tuple[int, ...]
    units: int  # over all seeds
    healthy_device_days: float
    horizon_s: float
    rows: tuple[FaultScore, ...]
    late_blocks: int = 0

    def false_rate(self, row: FaultScore) -> float:
        """False findings per 1,000 healthy device-days."""
        d = self.healthy_device_days
        return 1000.0 * row.false_on_healthy / d if d > 0 else math.nan

    def row(self, fault: str) -> FaultScore:
        for r in self.rows:
            if r.fault == fault:
                return r
        raise KeyError(fault)

    def table(self) -> str:
        """The report as a Markdown table."""
        h = f"{self.horizon_s / 3600:g} h"
        lines = [
            f"| fault | injected | recall | recall ≤ {h} | median delay (h) | findings "
            "| precision | false / 1,000 healthy device-days |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in self.rows:
            lines.append(
                f"| `{r.fault}` | {r.injected} | {_pct(r.recall, r.detected, r.injected)} "
                f"| {_pct(r.recall_in_horizon, r.detected_in_horizon, r.eligible)} "
                f"| {_num(r.median_delay_s / 3600)} | {r.findings} "
                f"| {_pct(r.precision, r.true_findings, r.findings)} "
                f"| {_num(self.false_rate(r), 2)} ({r.false_on_healthy}) |"
            )
        total_false = sum(r.false_on_healthy for r in self.rows)
        days = self.healthy_device_days
        rate = _num(1000 * total_false / days, 2) if days else "–"
        lines.append(
            f"\n{self.units} units over seeds {', '.join(map(str, self.seeds))}; "
            f"{days:,.0f} healthy device-days judged; {total_false} false findings on healthy "
            f"units in all ({rate} per 1,000 healthy device-days)."
        )
        return "\n".join(lines)

    def to_json(self) -> dict:
        doc = asdict(self)
        for raw, r in zip(doc["rows"], self.rows, strict=True):
            raw.update(
                recall=r.recall,
                recall_in_horizon=r.recall_in_horizon,
                precision=r.precision,
                median_delay_s=r.median_delay_s,
                false_per_1000_healthy_device_days=self.false_rate(r),
            )
        return doc


def _pct(x: float, num: int, den: int) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.1f} % ({num}/{den})"


def _num(x: float, digits: int = 1) -> str:
    return "–" if math.isnan(x) else f"{x:.{digits}f}"


@dataclass
class FleetRun:
    """What one seed's fleet produced: the findings the cloud reported, the ground truth, and
    the ingest's counters."""

    seed: int
    findings: list[Finding] = field(default_factory=list)
    truth: list[InjectedFault] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    late_blocks: int = 0
    ingest: IngestStats = field(default_factory=IngestStats)


def score(
    scenario: Scenario,
    runs: Sequence[FleetRun],
    *,
    horizon_s: float = DEFAULT_HORIZON_S,
    judged_after_s: float = DEFAULT_JUDGED_AFTER_S,
) -> Report:
    """Match the runs' findings to their ground truth (see the module docstring)."""
    end = scenario.start_ts + scenario.duration_s
    judged_days = max(0.0, scenario.duration_s - judged_after_s) / 86400.0
    names = sorted({f for k in FAULT_KINDS.values() for f in k.expected_faults})
    counts: dict[str, dict[str, int]] = {}
    delays: dict[str, list[float]] = {}

    def tally(name: str) -> dict[str, int]:
        delays.setdefault(name, [])
        keys = ("inj", "det", "elig", "det_h", "find", "true", "false_h")
        return counts.setdefault(name, dict.fromkeys(keys, 0))

    for n in names:
        tally(n)
    healthy_days = 0.0
    units = 0
    for run in runs:
        units += len(run.devices)
        by_device: dict[str, list[InjectedFault]] = {}
        for t in run.truth:
            by_device.setdefault(t.device, []).append(t)
        healthy_days += judged_days * sum(1 for d in run.devices if d not in by_device)
        firsts: dict[tuple[str, str], list[float]] = {}
        for f in run.findings:
            if not f.active:
                continue
            c = tally(f.fault)
            c["find"] += 1
            faults = by_device.get(f.device)
            if faults is None:
                c["false_h"] += 1
                continue
            if any(_explains(t, f, horizon_s) for t in faults):
                c["true"] += 1
            firsts.setdefault((f.device, f.fault), []).append(f.ts)
        for t in run.truth:
            accepted = FAULT_KINDS[t.kind].expected_faults
            c = counts[t.expected_fault]
            c["inj"] += 1
            eligible = t.onset_ts + horizon_s <= end
            c["elig"] += eligible
            hits = [
                ts
                for name in accepted
                for ts in firsts.get((t.device, name), [])
                if ts >= t.onset_ts
            ]
            if hits:
                delay = min(hits) - t.onset_ts
                c["det"] += 1
                delays[t.expected_fault].append(delay)
                c["det_h"] += eligible and delay <= horizon_s
    rows = tuple(
        FaultScore(
            n,
            c["inj"],
            c["det"],
            c["elig"],
            c["det_h"],
            c["find"],
            c["true"],
            c["false_h"],
            tuple(delays[n]),
        )
        for n, c in sorted(counts.items())
    )
    return Report(
        scenario.name,
        tuple(r.seed for r in runs),
        units,
        healthy_days,
        horizon_s,
        rows,
        sum(r.late_blocks for r in runs),
    )


def _explains(t: InjectedFault, f: Finding, horizon_s: float) -> bool:
    if f.fault not in FAULT_KINDS[t.kind].expected_faults or f.ts < t.onset_ts:
        return False
    return t.repair_ts is None or f.ts <= t.repair_ts + horizon_s
