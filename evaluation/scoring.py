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

Tickets and the static-rule baseline (:mod:`evaluation.static_rule`), same run:

- a **false ticket** is a device ticket on a unit with no injected fault, or a batch ticket of a
  fault in a batch where no unit has an injected fault that accepts it (or opened before the
  first such onset); per fault, per 1,000 healthy device-days;
- a **drifting batch** is one with at least ``BATCH_MIN_UNITS`` units with a cooling fault
  (``refrigerant_leak``, ``clogged_filter``); its **batch delay** is from the first of those
  onsets to qloop's first ``cooling_decline`` batch ticket for it, and to the static rule's
  batch alarm (the third unit alarmed); a ticket or alarm before that onset is a false one, and
  a batch with none in the run has no delay (it is counted as missed);
- the static rule's **false unit alarms** are alarms on units with no injected fault, counted
  after ``judged_after_s`` as qloop's findings are; its **false batch alarms** are batch alarms
  in batches that are not drifting, or before their first onset.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from cloud.anomaly.base import Finding
from cloud.ingest.ingestor import IngestStats
from evaluation.batches import (
    COOLING,
    COOLING_KINDS,
    BatchDelay,
    StaticScore,
    batch_delays,
    first_onsets,
    score_static,
    tuned_threshold,
)
from evaluation.goals import RATIO_GOAL
from evaluation.static_rule import THRESHOLD_C
from evaluation.tickets import OpenedTicket
from simulators.faults import FAULT_KINDS
from simulators.fleet import InjectedFault
from simulators.scenario import Scenario

DEFAULT_HORIZON_S = 48 * 3600.0
DEFAULT_JUDGED_AFTER_S = 36 * 3600.0


def per_1000(count: int, healthy_device_days: float) -> float:
    """``count`` per 1,000 healthy device-days (NaN without any).

    >>> per_1000(3, 1500.0), per_1000(1, 0.0)
    (2.0, nan)
    """
    return 1000.0 * count / healthy_device_days if healthy_device_days > 0 else math.nan


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
class SizeScore:
    """Recall of the injected cooling faults of one kind and size (e.g. 15 % leaks)."""

    kind: str
    magnitude: float
    eligible: int  # with at least horizon_s of run after their onset
    detected_in_horizon: int
    delays_s: tuple[float, ...] = ()  # of every one found (within the horizon or not)


@dataclass(frozen=True)
class TicketScore:
    """qloop's tickets for one fault name."""

    fault: str
    device_tickets: int
    false_device_tickets: int  # on units with no injected fault
    batch_tickets: int
    false_batch_tickets: int


@dataclass(frozen=True)
class Report:
    scenario: str
    seeds: tuple[int, ...]
    units: int  # over all seeds
    healthy_device_days: float
    horizon_s: float
    rows: tuple[FaultScore, ...]
    late_blocks: int = 0
    tickets: tuple[TicketScore, ...] = ()
    batch_delays: tuple[BatchDelay, ...] = ()
    static: StaticScore | None = None
    sizes: tuple[SizeScore, ...] = ()
    tuned: StaticScore | None = None  # the static rule tuned on this fleet (``batches.py``)

    def false_rate(self, row: FaultScore) -> float:
        """False findings per 1,000 healthy device-days."""
        return self.per_1000(row.false_on_healthy)

    def per_1000(self, count: int) -> float:
        """``count`` per 1,000 healthy device-days."""
        return per_1000(count, self.healthy_device_days)

    def delays(self, tuned: bool = False) -> tuple[float, float, float]:
        """Median batch delay of qloop and of the static rule (s) over the drifting batches
        each found, and their ratio (qloop / static; NaN when either found none); the rule
        tuned on the fleet with ``tuned``, else the fixed one."""
        q = [b.qloop_s for b in self.batch_delays if not math.isnan(b.qloop_s)]
        rule = [b.tuned_s if tuned else b.static_s for b in self.batch_delays]
        st = [d for d in rule if not math.isnan(d)]
        mq = statistics.median(q) if q else math.nan
        ms = statistics.median(st) if st else math.nan
        return mq, ms, mq / ms if ms > 0 else math.nan

    def ratio_bound(self) -> float:
        """When the static rule found no drifting batch but qloop did: the ratio is below this
        (qloop's median delay over the shortest time the run watched a batch after its onset)."""
        q, s, _ = self.delays()
        if not self.batch_delays or not math.isnan(s) or math.isnan(q):
            return math.nan
        return q / min(b.watched_s for b in self.batch_delays)

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
        if self.sizes:
            lines += [
                "",
                "| injected | recall ≤ " + h + " | median delay (h) |",
                "| --- | ---: | ---: |",
            ]
            for z in self.sizes:
                recall = z.detected_in_horizon / z.eligible if z.eligible else math.nan
                median = statistics.median(z.delays_s) / 3600 if z.delays_s else math.nan
                lines.append(
                    f"| `{z.kind}` {100 * z.magnitude:g} % "
                    f"| {_pct(recall, z.detected_in_horizon, z.eligible)} | {_num(median)} |"
                )
        if self.tickets:
            lines += ["", *self._ticket_table()]
        if self.static is not None:
            lines += ["", *self._baseline_lines()]
        return "\n".join(lines)

    def _ticket_table(self) -> list[str]:
        lines = [
            "| fault | device tickets | false (/ 1,000 healthy device-days) | batch tickets "
            "| false (/ 1,000 healthy device-days) |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for t in self.tickets:
            lines.append(
                f"| `{t.fault}` | {t.device_tickets} "
                f"| {t.false_device_tickets} ({_num(self.per_1000(t.false_device_tickets), 2)}) "
                f"| {t.batch_tickets} "
                f"| {t.false_batch_tickets} ({_num(self.per_1000(t.false_batch_tickets), 2)}) |"
            )
        return lines

    def _baseline_lines(self) -> list[str]:
        st = self.static
        assert st is not None
        cooling = next((r for r in self.rows if r.fault == COOLING), None)
        false_q = cooling.false_on_healthy if cooling else 0
        lines = [
            f"Static rule (compressor on and ΔT < {st.threshold_c:g} °C for an hour; batch alarm "
            "at the third unit), same run:",
            "",
            "| | qloop | static rule |",
            "| --- | ---: | ---: |",
            f"| false unit alarms (qloop: `{COOLING}` findings) / 1,000 healthy device-days "
            f"| {_num(self.per_1000(false_q), 2)} ({false_q}) "
            f"| {_num(self.per_1000(st.false_unit_alarms), 2)} ({st.false_unit_alarms}) |",
            f"| false batch alarms (qloop: `{COOLING}` batch tickets) / 1,000 healthy "
            f"device-days | {self._false_batch(COOLING)} "
            f"| {_num(self.per_1000(st.false_batch_alarms), 2)} ({st.false_batch_alarms}) |",
        ]
        if not self.batch_delays:
            return lines
        lines += [
            "",
            "| drifting batch (seed) | units with a cooling fault | qloop batch ticket (h after "
            "the first onset) | opened by | static batch alarm (h) | ratio |",
            "| --- | ---: | ---: | --- | ---: | ---: |",
        ]
        cells, summary = self._against(tuned=False)
        for b, (static, ratio) in zip(self.batch_delays, cells, strict=True):
            lines.append(
                f"| {b.batch} ({b.seed}) | {b.affected} | {_num(b.qloop_s / 3600)} "
                f"| {_test_name(b.opened_by)} | {static} | {ratio} |"
            )
        return [*lines, "", summary, *self._tuned_lines()]

    def _against(self, tuned: bool) -> tuple[list[tuple[str, str]], str]:
        """Per drifting batch, the static rule's delay and qloop's ratio as table cells (the
        rule tuned on this fleet with ``tuned``, else the fixed one), and the summary line."""
        cells, met = [], 0
        for b in self.batch_delays:
            ratio, bound = b.ratio(tuned=tuned)
            met += ratio <= RATIO_GOAL
            delay = b.tuned_s if tuned else b.static_s
            static = f"> {b.watched_s / 3600:.0f}" if bound else _num(delay / 3600)
            cells.append((static, f"{'< ' if bound else ''}{_num(ratio, 2)}"))
        rule = "tuned static rule" if tuned else "static rule"
        summary = (
            f"Batch delay ratio qloop / {rule} ≤ {RATIO_GOAL:g} in {met} of "
            f"{len(self.batch_delays)} drifting batches."
        )
        return cells, summary

    def _tuned_lines(self) -> list[str]:
        """qloop's batch delays against the static rule tuned on this fleet."""
        st = self.tuned
        if st is None:
            return ["", "Static rule tuned on this fleet: no threshold within the budget."]
        lines = [
            "",
            f"Static rule tuned on this fleet (ΔT < {st.threshold_c:g} °C: the highest threshold "
            "whose false unit alarms stay within 1 per 1,000 healthy device-days of this run; "
            f"{st.false_unit_alarms} false unit alarms, {st.false_batch_alarms} false batch "
            "alarms), same run:",
            "",
            "| drifting batch (seed) | qloop batch ticket (h) | tuned static batch alarm (h) "
            "| ratio |",
            "| --- | ---: | ---: | ---: |",
        ]
        cells, summary = self._against(tuned=True)
        for b, (static, ratio) in zip(self.batch_delays, cells, strict=True):
            lines.append(
                f"| {b.batch} ({b.seed}) | {_num(b.qloop_s / 3600)} | {static} | {ratio} |"
            )
        return [*lines, "", summary]

    def _false_batch(self, fault: str) -> str:
        t = next((t for t in self.tickets if t.fault == fault), None)
        n = t.false_batch_tickets if t else 0
        return f"{_num(self.per_1000(n), 2)} ({n})"

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


def _test_name(opened_by: str) -> str:
    """The batch test's short name: ``pooled`` (the units' shifts; with its span and reference
    when the description names them, ``pooled.describe_test``), ``peers`` (the units' learned
    levels against their model's other batches, ``peers.TEST``) or ``alarms`` (their count)."""
    if not opened_by:
        return "–"
    if opened_by.startswith("peer levels"):
        return "peers"
    if not opened_by.startswith("pooled"):
        return "alarms"
    span = re.search(r"(\d+)-h shifts", opened_by)
    reference = "fleet" if "all models" in opened_by else "model"
    return f"pooled {span.group(1)} h, {reference}" if span else "pooled"


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
    batch_of: dict[str, str] = field(default_factory=dict)  # device -> batch
    tickets: list[OpenedTicket] = field(default_factory=list)
    # the static rule's unit alarms (ts, device) per threshold
    static_alarms: dict[float, list[tuple[float, str]]] = field(default_factory=dict)
    clock_offset_s: float = 0.0  # the worker's clock less the fleet's event time (a replay's)


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
    sizes: dict[tuple[str, float], list] = {}
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
            ts = known_at(f, run.clock_offset_s)
            if any(_explains(t, f, ts, horizon_s) for t in faults):
                c["true"] += 1
            firsts.setdefault((f.device, f.fault), []).append(ts)
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
            size = sizes.setdefault((t.kind, t.magnitude), [0, 0, []])
            size[0] += eligible
            if hits:
                delay = min(hits) - t.onset_ts
                c["det"] += 1
                delays[t.expected_fault].append(delay)
                c["det_h"] += eligible and delay <= horizon_s
                size[1] += eligible and delay <= horizon_s
                size[2].append(delay)
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
    tuned = tuned_threshold(scenario, runs, judged_after_s, healthy_days)
    return Report(
        scenario.name,
        tuple(r.seed for r in runs),
        units,
        healthy_days,
        horizon_s,
        rows,
        sum(r.late_blocks for r in runs),
        _score_tickets(runs, names),
        tuple(d for r in runs for d in batch_delays(r, end, tuned)),
        score_static(scenario, runs, THRESHOLD_C, judged_after_s),
        tuple(
            SizeScore(kind, m, e, d, tuple(ds))
            for (kind, m), (e, d, ds) in sorted(sizes.items())
            if kind in COOLING_KINDS
        ),
        None if tuned is None else score_static(scenario, runs, tuned, judged_after_s),
    )


def _score_tickets(runs: Sequence[FleetRun], names: Sequence[str]) -> tuple[TicketScore, ...]:
    counts = {n: [0, 0, 0, 0] for n in names}
    for run in runs:
        faulty = {t.device for t in run.truth}
        onsets = {n: first_onsets(run, n) for n in names}
        for t in run.tickets:
            c = counts.setdefault(t.fault, [0, 0, 0, 0])
            if t.scope == "batch":
                c[2] += 1
                c[3] += t.opened_ts < onsets.get(t.fault, {}).get(t.batch, math.inf)
            else:
                c[0] += 1
                c[1] += t.device not in faulty
    return tuple(TicketScore(n, *c) for n, c in sorted(counts.items()))


def known_at(f: Finding, clock_offset_s: float = 0.0) -> float:
    """When a finding became known in event time: its ``ts``, or the worker's clock (less the
    run's ``clock_offset_s``) when it carries one: a ``clock_skew`` finding is stamped at the
    unit's last believed reading, before the wrong one that made it."""
    worker_ts = f.evidence.get("worker_ts")
    if not isinstance(worker_ts, float):
        return f.ts
    return max(f.ts, worker_ts - clock_offset_s)


def _explains(t: InjectedFault, f: Finding, ts: float, horizon_s: float) -> bool:
    """Whether ``f``, known at ``ts`` (:func:`known_at`), is a finding of fault ``t``."""
    if f.fault not in FAULT_KINDS[t.kind].expected_faults or ts < t.onset_ts:
        return False
    return t.repair_ts is None or ts <= t.repair_ts + horizon_s
