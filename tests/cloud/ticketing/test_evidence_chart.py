"""The evidence charts: the chart module's drawing, and the chart of a ticket over a real journal
filled with real telemetry payloads (``contract.protocol.encode``)."""

from __future__ import annotations

import math
import re

import pytest

from cloud.store.journal import Journal
from cloud.ticketing.web.chart import (
    Marker,
    Series,
    bucket_means,
    bucket_width,
    line_chart,
    nice_ticks,
)
from cloud.ticketing.web.evidence import SIGNALS, build_chart, chart_for_ticket, signal_for
from contract import protocol

DAY = 86_400.0
T0 = 1_700_000_000.0


# --- the chart module ---------------------------------------------------------------------------
def _path_points(svg: str) -> list[list[tuple[float, float]]]:
    """Each series' path as runs of (x, y), split at every move-to."""
    runs = []
    for d in re.findall(r'<path class="series[^"]*" d="([^"]+)"', svg):
        for run in re.findall(r"M[^M]+", d):
            runs.append([(float(a), float(b)) for a, b in re.findall(r"([\d.]+),([\d.]+)", run)])
    return runs


def test_bucket_means_average_finite_values_per_bucket() -> None:
    points = [(0.0, 1.0), (1800.0, 3.0), (3599.0, None), (3600.0, math.nan), (7300.0, 5.0)]
    assert bucket_means(points, 3600.0) == [(1800.0, 2.0), (9000.0, 5.0)]
    assert bucket_means([], 3600.0) == []
    with pytest.raises(ValueError, match="positive"):
        bucket_means(points, 0.0)


def test_bucket_width_keeps_charts_small() -> None:
    assert bucket_width(2 * DAY) == 3600.0
    for span in (DAY, 12 * DAY, 90 * DAY, 3 * 365 * DAY):
        assert span / bucket_width(span) <= 240


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    for lo, hi in [(11.3, 14.8), (-0.7, 0.2), (0.031, 0.052), (5.0, 5.0), (100.0, 4321.0)]:
        ticks = nice_ticks(lo, hi)
        assert ticks[0] <= min(lo, hi) and ticks[-1] >= max(lo, hi)
        steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
        assert len(steps) == 1 and 3 <= len(ticks) <= 11


def test_line_chart_draws_one_path_per_series_inside_the_plot() -> None:
    rising = Series("ac-1", [(T0 + h * 3600, 10.0 + h) for h in range(48)])
    flat = Series("ac-2", [(T0 + h * 3600, 12.0) for h in range(48)])
    svg = line_chart([rising, flat, Series("empty", [])], y_label="ΔT (K)", width=600, height=300)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    runs = _path_points(svg)
    assert len(runs) == 2  # the empty series is left out
    ys = [y for _, y in runs[0]]
    assert ys == sorted(ys, reverse=True)  # a rising value goes up the page
    assert all(0 < x < 600 and 0 < y < 300 for run in runs for x, y in run)
    assert ">ac-1<" in svg and ">ac-2<" in svg and "ΔT (K)" in svg


def test_line_chart_breaks_lines_at_gaps_and_draws_markers_in_range() -> None:
    pts = [(T0 + h * 3600, 1.0) for h in range(10)] + [(T0 + h * 3600, 2.0) for h in range(30, 40)]
    svg = line_chart(
        [Series("ac-1", pts)],
        y_label="x",
        gap_s=2.5 * 3600,
        markers=[Marker(T0 + 20 * 3600, "first detection"), Marker(T0 - DAY, "outside")],
    )
    assert len(_path_points(svg)) == 2
    assert svg.count('class="marker"') == 1 and "first detection" in svg and "outside" not in svg
    assert len(_path_points(line_chart([Series("ac-1", pts)], y_label="x"))) == 1  # no gap_s


def test_line_chart_escapes_labels_and_refuses_an_empty_chart() -> None:
    svg = line_chart([Series("<script>x</script>", [(T0, 1.0)])], y_label="a & b")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a &amp; b" in svg
    with pytest.raises(ValueError, match="nothing to plot"):
        line_chart([Series("ac-1", [])], y_label="x")


# --- the evidence chart over a real journal -----------------------------------------------------
FIELDS = ("ts", "return_c", "supply_c", "compressor_on", "noise_db")


def _add_block(journal: Journal, device: str, seq: int, rows: list[tuple]) -> None:
    msg = protocol.Telemetry(device, seq, FIELDS, tuple(rows))
    journal.add_message(
        device, seq, "telemetry", rows[0][0], rows[-1][0], rows[-1][0], protocol.encode(msg)
    )


def test_signal_for_each_fault() -> None:
    assert signal_for("cooling_decline", []).minus == "supply_c"
    assert signal_for("noise_rise", []).field == "noise_db"
    assert signal_for("vibration_rise", []).field == "vibration_g"
    stuck = [{"device": "d", "evidence": {"supply_c": 12.0, "stuck_s": 7200.0}}]
    assert signal_for("sensor_stuck", stuck).field == "supply_c"  # the first evidence field
    assert signal_for("new_fault", [{"device": "d", "evidence": {}}]) is None
    assert set(SIGNALS) >= {"cooling_decline", "noise_rise", "vibration_rise"}


def test_delta_t_is_return_minus_supply_while_the_compressor_runs(tmp_path) -> None:
    journal = Journal(tmp_path / "journal.db")
    # runs of 20 min on, 20 min off; ΔT 3 K in a run's first 5 min (start-up), 8 K after
    rows = []
    for i in range(120):
        on, minute = (i // 20) % 2 == 0, i % 20
        supply = 24.0 if not on else (22.0 if minute < 5 else 17.0)
        rows.append((T0 + 60 * i, 25.0, supply, int(on), 40.0))
    _add_block(journal, "ac-1", 1, rows[:60])
    _add_block(journal, "ac-1", 2, rows[60:])
    journal.commit()
    points = SIGNALS["cooling_decline"].read(journal, "ac-1", T0, T0 + DAY)
    # compressor-off rows and each run's first 5 minutes are left out, as the detector does
    assert len(points) == 3 * 15 and {v for _, v in points} == {8.0}
    journal.close()


def test_build_chart_reads_the_window_around_the_onset(tmp_path) -> None:
    journal = Journal(tmp_path / "journal.db")
    for seq, h in enumerate(range(0, 10 * 24)):  # ten days of hourly blocks, ΔT 8 K then 6 K
        dt = 8.0 if h < 5 * 24 else 6.0
        rows = [(T0 + h * 3600 + 600 * i, 25.0, 25.0 - dt, 1, 40.0) for i in range(6)]
        _add_block(journal, "ac-1", seq, rows)
    journal.commit()
    onset = T0 + 5 * DAY
    devices = [
        {
            "device": "ac-1",
            "first_ts": onset + 3600,
            "onset_ts": onset,
            "last_ts": onset + 3600,
            "evidence": {},
        }
    ]
    chart = build_chart("cooling_decline", devices, journal, detected_ts=onset + 3600)
    assert chart.svg is not None and "hourly means" in chart.note
    runs = _path_points(chart.svg)
    assert len(runs) == 1 and 90 <= len(runs[0]) <= 100  # 2 days before to 2 days after, hourly
    ys = [y for _, y in runs[0]]
    assert max(ys[:40]) < min(ys[-40:])  # ΔT fell: the line steps down the page
    assert 'class="marker"' in chart.svg
    nothing = build_chart("noise_rise", [{**devices[0], "device": "ac-9"}], journal)
    assert nothing.svg is None and "no noise_db" in nothing.note
    journal.close()


def test_chart_for_ticket_says_why_there_is_no_chart(tmp_path) -> None:
    ticket = {"fault": "noise_rise", "evidence": {"devices": []}}
    assert "no store is configured" in chart_for_ticket(ticket, None).note
    missing = tmp_path / "nope.db"
    assert "does not exist" in chart_for_ticket(ticket, str(missing)).note
    assert not missing.exists()  # looking did not create it


@pytest.mark.parametrize(
    "values",
    [
        [5.0, 5.0, 5.0],  # flat
        [-1e-320, 1e-320],  # flatter than a float can divide up
        [1e308, -1e308, 3.0],  # beyond anything a sensor reports: left out, the rest drawn
        [math.nan, 2.0],
    ],
)
def test_any_signal_gives_a_chart_not_an_error(values) -> None:
    points = [(T0 + 60.0 * i, v) for i, v in enumerate(values)]
    svg = line_chart([Series("a", points)], y_label="x", markers=[Marker(T0, "m")])
    assert svg.startswith("<svg") and "nan" not in svg.lower().replace("nanosecond", "")
