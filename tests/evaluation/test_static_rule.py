"""The static-rule baseline as small pure objects, and how eval scores it beside qloop's tickets
(synthetic runs: no fleet is simulated here)."""

from __future__ import annotations

import math

import pytest

from benchmarks.accuracy import add_batch_delay
from benchmarks.common import Result
from cloud.anomaly.pooled import TEST
from evaluation.calibrate import choose
from evaluation.scoring import BatchDelay, FleetRun, score
from evaluation.static_rule import THRESHOLD_C, BatchAlarm, DeltaTRule, batch_alarms
from evaluation.tickets import OpenedTicket
from simulators.fleet import InjectedFault
from simulators.scenario import parse_scenario
from tests.scenarios import batch, scenario

MIN = 60.0


def feed(rule: DeltaTRule, minutes: int, *, on: float = 1.0, delta: float = 5.0, t0: float = 0.0):
    ts = [t0 + k * MIN for k in range(minutes)]
    return rule.update(ts, [on] * minutes, [26.0] * minutes, [26.0 - delta] * minutes)


def test_an_hour_of_low_delta_t_with_the_compressor_on_raises_once() -> None:
    rule = DeltaTRule(threshold_c=8.0)
    assert feed(rule, 60) == []  # 59 minutes since the first reading
    assert feed(rule, 10, t0=60 * MIN) == [60 * MIN] and rule.alarmed
    assert feed(rule, 120, t0=70 * MIN) == []  # still the same alarm


@pytest.mark.parametrize(
    "breaking",
    [
        {"on": 0.0},  # the compressor rests
        {"delta": 8.0},  # at the threshold is not below it
        {"delta": math.nan},  # a missing value breaks the condition
    ],
)
def test_a_reading_that_breaks_the_condition_starts_the_hour_again(breaking) -> None:
    rule = DeltaTRule(threshold_c=8.0)
    feed(rule, 50)
    feed(rule, 1, t0=50 * MIN, **breaking)
    assert feed(rule, 50, t0=51 * MIN) == []
    assert feed(rule, 20, t0=101 * MIN) == [111 * MIN]


def test_none_values_and_gaps_start_it_again() -> None:
    rule = DeltaTRule(threshold_c=8.0, max_gap_s=900.0)
    assert rule.update([0.0, 60.0], [1.0, None], [26.0, 26.0], [20.0, 20.0]) == []
    feed(rule, 40, t0=120.0)
    assert feed(rule, 40, t0=120.0 + 40 * MIN + 1800.0) == []  # 30 min of silence in between


def test_the_alarm_clears_and_comes_back() -> None:
    rule = DeltaTRule(threshold_c=8.0)
    assert len(feed(rule, 61)) == 1
    feed(rule, 1, t0=61 * MIN, delta=12.0)
    assert not rule.alarmed
    assert feed(rule, 61, t0=62 * MIN) == [122 * MIN]


def test_batch_alarm_at_the_third_distinct_unit() -> None:
    b = BatchAlarm()
    assert [b.update(u, t) for u, t in (("a", 1.0), ("a", 2.0), ("b", 3.0))] == [None] * 3
    assert b.update("c", 4.0) == 4.0 and b.update("d", 5.0) is None and b.raised_ts == 4.0
    alarms = [(9.0, "z", "B2"), (4.0, "c", "B1"), (1.0, "a", "B1"), (3.0, "b", "B1")]
    assert batch_alarms(alarms) == {"B1": 4.0}


def test_the_threshold_is_the_highest_within_the_budget() -> None:
    rates = {6.0: (0.0, 0.0), 6.5: (0.5, 0.0), 7.0: (1.0, 0.0), 7.5: (2.4, 0.3)}
    assert choose(rates) == 7.0
    assert choose(rates, budget=0.1) == 6.0


SC = parse_scenario(scenario("syn", 1, "10d", batch("D", 6), batch("R", 4)))
DAY = 86400.0


def _leak(device: str, onset: float) -> InjectedFault:
    start = SC.start_ts
    return InjectedFault(device, "D", "KFR-35GW", "refrigerant_leak", "cooling_decline",
                         start + onset, None, 0.25)  # fmt: skip


def _drifting_run() -> FleetRun:
    """Batch D of six units, three leaking from days 2, 3 and 4; batch R of four healthy."""
    devices = [f"d{i}" for i in range(6)] + [f"r{i}" for i in range(4)]
    run = FleetRun(1, devices=devices)
    run.batch_of = {d: ("D" if d[0] == "d" else "R") for d in devices}
    run.truth = [_leak("d0", 2 * DAY), _leak("d1", 3 * DAY), _leak("d2", 4 * DAY)]
    return run


def test_batch_delays_and_false_alarms_are_scored_side_by_side() -> None:
    t0 = SC.start_ts
    run = _drifting_run()
    run.tickets = [
        OpenedTicket("device", "KFR-35GW", "D", "d0", "cooling_decline", t0 + 2.5 * DAY),
        OpenedTicket("batch", "KFR-35GW", "D", None, "cooling_decline", t0 + 4 * DAY, TEST),
        OpenedTicket("device", "KFR-35GW", "R", "r0", "device_offline", t0 + 5 * DAY),
    ]
    run.static_alarms = {
        THRESHOLD_C: [
            (t0 + 1.0 * DAY, "r1"),  # in the learning period: not counted as false
            (t0 + 3.0 * DAY, "d0"),
            (t0 + 5.0 * DAY, "d1"),
            (t0 + 7.0 * DAY, "d2"),  # the third unit: the batch alarm
            (t0 + 8.0 * DAY, "r2"),
        ]
    }
    report = score(SC, [run])
    (size,) = report.sizes  # the leaks by size: no finding in this synthetic run
    assert (size.kind, size.magnitude, size.eligible, size.detected_in_horizon) == (
        "refrigerant_leak", 0.25, 3, 0
    )  # fmt: skip
    (delay,) = report.batch_delays
    assert (delay.batch, delay.affected) == ("D", 3)
    assert delay.qloop_s == 2 * DAY and delay.static_s == 5 * DAY
    assert report.delays() == (2 * DAY, 5 * DAY, pytest.approx(0.4))
    assert report.static.false_unit_alarms == 1 and report.static.false_batch_alarms == 0
    offline = next(t for t in report.tickets if t.fault == "device_offline")
    assert (offline.device_tickets, offline.false_device_tickets) == (1, 1)
    cooling = next(t for t in report.tickets if t.fault == "cooling_decline")
    assert (cooling.batch_tickets, cooling.false_batch_tickets) == (1, 0)
    table = report.table()
    # opened by the pooled test, on its 24-h span against the model's other batches
    assert "| D (1) | 3 | 48.0 | pooled 24 h, model | 120.0 | 0.40 |" in table
    assert "≤ 0.33 in 0 of 1 drifting batches" in table
    assert report.to_json()["static"]["threshold_c"] == THRESHOLD_C
    res = Result("accuracy")
    add_batch_delay(res, report)
    (figure,) = res.figures
    assert (figure.value, figure.baseline, figure.met) == (48.0, 120.0, False)


def test_no_static_batch_alarm_bounds_the_ratio() -> None:
    t0 = SC.start_ts
    run = FleetRun(1, devices=["d0", "d1", "d2"])
    run.batch_of = dict.fromkeys(run.devices, "D")
    run.truth = [_leak(d, 2 * DAY) for d in run.devices]
    run.tickets = [OpenedTicket("batch", "KFR-35GW", "D", None, "cooling_decline", t0 + 3 * DAY)]
    report = score(SC, [run])
    assert report.ratio_bound() == pytest.approx(1 / 8)  # one day of eight watched
    assert "| D (1) | 3 | 24.0 | – | > 192 | < 0.12 |" in report.table()  # no test named
    res = Result("accuracy")
    add_batch_delay(res, report)
    assert res.figures[0].baseline == 192.0 and res.figures[0].met


def test_a_batch_alarm_before_the_first_onset_is_false_and_no_delay() -> None:
    t0 = SC.start_ts
    run = FleetRun(1, devices=["d0", "d1", "d2"])
    run.batch_of = dict.fromkeys(run.devices, "D")
    run.truth = [_leak(d, 6 * DAY) for d in run.devices]
    run.static_alarms = {THRESHOLD_C: [(t0 + k * DAY, d) for k, d in enumerate(run.devices, 2)]}
    report = score(SC, [run])
    assert report.static.false_batch_alarms == 1
    assert math.isnan(report.batch_delays[0].static_s) and math.isnan(report.delays()[2])


def test_the_ratio_of_one_batch() -> None:
    nan = math.nan
    assert BatchDelay(1, "D", 3, 0.0, 10.0, 40.0, 100.0).ratio() == (0.25, False)
    assert BatchDelay(1, "D", 3, 0.0, 10.0, nan, 100.0).ratio() == (0.1, True)  # a bound
    assert BatchDelay(1, "D", 3, 0.0, nan, 40.0, 100.0).ratio() == (math.inf, False)
    assert math.isnan(BatchDelay(1, "D", 3, 0.0, nan, nan, 100.0).ratio()[0])


def test_the_rule_tuned_on_the_fleet_is_scored_beside_the_fixed_one() -> None:
    t0 = SC.start_ts
    run = _drifting_run()
    run.tickets = [
        OpenedTicket("batch", "KFR-35GW", "D", None, "cooling_decline", t0 + 4 * DAY, TEST)
    ]
    leaks = [(t0 + k * DAY, d) for k, d in ((2.5, "d0"), (3.5, "d1"), (4.5, "d2"))]
    run.static_alarms = {
        THRESHOLD_C: [],  # the fixed rule never alarms
        7.0: leaks,  # 0 false alarms: the tuned threshold
        7.5: [*leaks, (t0 + 2 * DAY, "r0")],  # one false alarm in 4 x 8.5 healthy days: over
    }
    report = score(SC, [run])
    assert report.tuned is not None and report.tuned.threshold_c == 7.0
    (delay,) = report.batch_delays
    assert math.isnan(delay.static_s) and delay.tuned_s == 2.5 * DAY
    assert delay.ratio(tuned=True) == (pytest.approx(0.8), False)
    assert delay.ratio() == (pytest.approx(2 / 8), True)  # a bound against the fixed rule
    table = report.table()
    assert "Static rule tuned on this fleet (ΔT < 7 °C" in table
    assert "| D (1) | 48.0 | 60.0 | 0.80 |" in table
    assert "qloop / tuned static rule ≤ 0.33 in 0 of 1" in table
    assert report.to_json()["tuned"]["threshold_c"] == 7.0
    res = Result("accuracy")  # the benchmark reports both rules
    add_batch_delay(res, report)
    fixed, tuned = res.figures
    assert (fixed.value, fixed.baseline, fixed.met) == (48.0, 192.0, True)  # a bound
    assert (tuned.value, tuned.baseline, tuned.met) == (48.0, 60.0, False)
    assert "tuned" in tuned.name and "tuned" not in fixed.name


def test_no_threshold_within_the_budget_tunes_nothing() -> None:
    t0 = SC.start_ts
    run = FleetRun(1, devices=["d0", "r0"])
    run.batch_of = {"d0": "D", "r0": "R"}
    run.static_alarms = {THRESHOLD_C: [(t0 + 2 * DAY, "r0")]}
    report = score(SC, [run])
    assert report.tuned is None
