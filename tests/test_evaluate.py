"""The accuracy evaluation on a tiny fleet: it matches findings to the injected faults."""

from __future__ import annotations

import json
import math

import pytest

from evaluation.fleet import evaluate, main
from simulators.scenario import parse_scenario

TINY = """
name = "tiny"
description = "5 units, 3 days: a loose panel and an outage"
seed = 4
start_ts = 2024-07-01T00:00:00+08:00
duration_s = "3d"
sample_period_s = 60
[[batches]]
batch = "B1"
model = "KFR-35GW"
units = 5
[[batches.faults]]
kind = "loose_panel"
share = 0.2
onset_after_s = "2d"
magnitude = 6.0
[[batches.faults]]
kind = "offline"
share = 0.2
onset_after_s = "1d"
magnitude = "8h"
"""


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


def test_table_and_json(report, tmp_path, capsys) -> None:
    table = report.table()
    assert "| `noise_rise` | 1 | 100.0 % (1/1)" in table
    doc = report.to_json()
    assert doc["rows"][0]["fault"] and "false_per_1000_healthy_device_days" in doc["rows"][0]
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    out = tmp_path / "report.json"
    assert main([str(path), "--horizon", "12", "--json", str(out)]) == 0
    assert "noise_rise" in capsys.readouterr().out
    assert json.loads(out.read_text())["scenario"] == "tiny"


def test_bad_arguments_are_clear_errors(capsys) -> None:
    with pytest.raises(ValueError, match="seeds"):
        evaluate(parse_scenario(TINY), seeds=0)
    assert main(["no-such-scenario"]) == 2
    assert "unknown scenario" in capsys.readouterr().err
