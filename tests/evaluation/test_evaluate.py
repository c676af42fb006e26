"""The accuracy evaluation on a tiny fleet: it matches findings to the injected faults."""

from __future__ import annotations

import json
import math

import pytest

from evaluation.fleet import evaluate, run, run_fleet
from simulators.scenario import parse_scenario
from tests.scenarios import batch, fault, scenario

pytestmark = pytest.mark.slow  # simulated fleets through the whole ingest path

TINY = scenario(
    "tiny",
    4,
    "3d",
    batch(
        "B1",
        5,
        fault("loose_panel", 0.2, "2d", magnitude=6.0),
        fault("offline", 0.2, "1d", magnitude="8h"),
    ),
    description="5 units, 3 days: a loose panel and an outage",
)


@pytest.fixture(scope="module")
def report():
    return evaluate(parse_scenario(TINY), horizon_s=12 * 3600.0)


def test_findings_are_matched_to_the_injected_faults(report) -> None:
    noise, offline = report.row("noise_rise"), report.row("device_offline")
    assert (noise.injected, noise.detected, noise.detected_in_horizon) == (1, 1, 1)
    assert (offline.injected, offline.detected) == (1, 1)
    assert 0 < noise.median_delay_s <= 12 * 3600.0
    assert noise.precision == 1.0 and offline.precision == 1.0
    assert math.isnan(report.row("cooling_decline").recall)  # nothing injected
    assert report.healthy_device_days == pytest.approx(3 * 1.5)  # 3 healthy units after 36 h
    assert all(report.false_rate(r) == 0.0 for r in report.rows)


def test_the_fleet_goes_through_the_cloud_ingest() -> None:
    """Every reading the units take while online reaches the detectors as the edge's encoded
    messages, through the Ingestor: births first, blocks decoded and accepted once each, and
    every finding is one the Ingestor emitted."""
    scenario = parse_scenario(TINY)
    fleet_run = run_fleet(scenario)
    steps = [scenario.start_ts + i * scenario.sample_period_s for i in range(1, 3 * 1440 + 1)]
    online = dict.fromkeys(fleet_run.devices, len(steps))
    for t in fleet_run.truth:
        if t.kind == "offline":
            online[t.device] -= sum(t.onset_ts <= ts < t.repair_ts for ts in steps)
    assert sorted(online.values())[0] < len(steps)  # the outage cost its unit readings
    stats = fleet_run.ingest
    assert stats.births == len(fleet_run.devices)
    assert stats.readings == sum(online.values())
    assert stats.telemetry == sum(math.ceil(n / 60) for n in online.values())  # 60 rows a block
    assert stats.messages == 2 * stats.births + stats.telemetry + stats.events  # + status
    assert (stats.duplicates, stats.malformed, stats.held) == (0, 0, 0)
    assert stats.findings == len(fleet_run.findings) > 0


def test_table_and_json(report, tmp_path, capsys) -> None:
    table = report.table()
    assert "| `noise_rise` | 1 | 100.0 % (1/1)" in table
    doc = report.to_json()
    assert doc["rows"][0]["fault"] and "false_per_1000_healthy_device_days" in doc["rows"][0]
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    out = tmp_path / "report.json"
    assert run(str(path), horizon_h=12, json_path=out) == 0
    assert "noise_rise" in capsys.readouterr().out
    assert json.loads(out.read_text())["scenario"] == "tiny"


def test_fleets_other_than_the_scenarios_own(tmp_path, capsys) -> None:
    """``first_seed`` (``qloop eval --first-seed``): the fleets are seeds ``first_seed`` on, not
    the scenario's own, so a figure can be checked on fleets it was not developed on."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    own, other = tmp_path / "own.json", tmp_path / "other.json"
    assert run(str(path), seeds=2, json_path=own) == 0
    assert run(str(path), seeds=2, first_seed=90, json_path=other) == 0
    assert json.loads(own.read_text())["seeds"] == [4, 5]
    assert json.loads(other.read_text())["seeds"] == [90, 91]
    assert "seeds 90, 91" in capsys.readouterr().out


def test_bad_arguments_are_clear_errors(capsys) -> None:
    with pytest.raises(ValueError, match="seeds"):
        evaluate(parse_scenario(TINY), seeds=0)
    assert run("no-such-scenario") == 2
    assert "unknown scenario" in capsys.readouterr().err


def test_a_replay_over_lagging_connections_and_a_wrong_clock() -> None:
    """``[delivery]``: units over three connections, each 4 h of event time behind the one
    before, replayed after the fact; a unit stamps an hour ten years ahead, another is silent
    for 3 h. The wrong clock is its unit's ``clock_skew`` finding alone, the outage is found,
    and nobody else is called offline."""
    text = scenario(
        "lagged",
        11,
        "2d",
        batch(
            "B1",
            6,
            fault("clock_jump", 1 / 6, "20h", magnitude="3650d", ramp_s="1h"),
            fault("offline", 1 / 6, "26h", magnitude="3h"),
        ),
        batch("B2", 6),
        block_rows=10,
    )
    text += '[delivery]\nconnections = 3\nlag_s = "4h"\nreplay = true\n'
    report = evaluate(parse_scenario(text), horizon_s=12 * 3600.0)
    clock, offline = report.row("clock_skew"), report.row("device_offline")
    assert (clock.injected, clock.detected, clock.precision) == (1, 1, 1.0)
    assert (offline.injected, offline.detected, offline.precision) == (1, 1, 1.0)
    assert all(report.false_rate(r) == 0.0 for r in report.rows)
