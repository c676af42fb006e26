"""``python -m evaluation.suite``: scenarios run in processes, on offset seeds, and totalled."""

from __future__ import annotations

import json
import math

import pytest

from evaluation.batches import BatchDelay
from evaluation.scoring import Report, SizeScore, TicketScore
from evaluation.suite import main, scenarios, table, totals
from tests.scenarios import batch, fault, scenario

pytestmark = pytest.mark.slow  # simulated fleets through the whole ingest path

LEAK = scenario(
    "leaky",
    7,
    "4d",
    batch("B1", 4, fault("refrigerant_leak", 0.5, "40h", magnitude=0.15, ramp_s="1h")),
    description="4 units, 4 days: two lose 15 % of their capacity at 40 h",
)


def _report(name: str, found: int, eligible: int, false: int, days: float, *ratios) -> Report:
    """A scored report with only what :func:`totals` reads."""
    delays = tuple(BatchDelay(1, f"B{i}", 3, 0.0, q, s, 100.0) for i, (q, s) in enumerate(ratios))
    return Report(
        name,
        (1,),
        10,
        days,
        48 * 3600.0,
        (),
        tickets=(TicketScore("cooling_decline", 5, false, 1, 0),),
        batch_delays=delays,
        sizes=(
            SizeScore("refrigerant_leak", 0.15, eligible, found),
            SizeScore("refrigerant_leak", 0.25, 7, 0),  # another size: not counted
        ),
    )


def test_totals_add_up_every_scenario_and_name_a_fault_over_its_rate() -> None:
    t = totals(
        [
            _report("a", 9, 10, 0, 1000.0, (10.0, 40.0)),  # a ratio of 0.25
            _report("b", 10, 10, 2, 1000.0, (20.0, 40.0), (5.0, math.nan)),  # 0.5; bound 0.05
        ]
    )
    assert (t.found, t.eligible, t.healthy_device_days) == (19, 20, 2000.0)
    assert t.false_tickets == {"cooling_decline": 2} and t.per_1000("cooling_decline") == 1.0
    assert t.over == [("b", "cooling_decline", 2.0)]  # 2 in b's 1,000 healthy device-days
    assert t.ratios == [0.25, 0.5, 0.05]
    out = table(t)
    assert "| 19/20 (95.0%) |" in out and "2 of 3 (median ratio 0.25)" in out
    assert "`b` `cooling_decline` 2.00" in out


def test_the_suite_runs_offset_seeds_and_writes_each_report(tmp_path, capsys) -> None:
    path = tmp_path / "leaky.toml"
    path.write_text(LEAK)
    out = tmp_path / "out"
    assert main(["--first-seed-offset", "50", "--jobs", "1", "--out", str(out), str(path)]) == 0
    doc = json.loads((out / "leaky.json").read_text())
    assert doc["seeds"] == [57, 58, 59]  # the scenario's seed 7 + 50, three fleets
    eligible = sum(s["eligible"] for s in doc["sizes"] if s["magnitude"] == 0.15)
    found = sum(s["detected_in_horizon"] for s in doc["sizes"] if s["magnitude"] == 0.15)
    assert eligible == 6
    assert f"| {found}/{eligible} (" in capsys.readouterr().out


def test_the_default_scenarios_and_bad_arguments() -> None:
    names = scenarios()
    assert "inverter-healthy" in names and "smoke" not in names and "scale" not in names
    with pytest.raises(SystemExit):
        main(["--jobs", "0"])
