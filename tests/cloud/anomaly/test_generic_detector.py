"""Contract tests for the generic streaming anomaly detector and the NAB CSV scorer."""

from __future__ import annotations

import io
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.anomaly.base import Block
from cloud.anomaly.generic import DEFAULT_THRESHOLD, StreamingAnomalyDetector
from cloud.anomaly.nab import parse_timestamp, score_csv
from cloud.anomaly.univariate import UnivariateAnomaly

WARM = 400  # values fed before the "after warm-up" assertions


def _feed(det: StreamingAnomalyDetector, values: list[float], start: int = 0) -> list[float]:
    return [det.score_one(float(start + i) * 300.0, v) for i, v in enumerate(values)]


def _periodic(n: int, period: int = 48) -> list[float]:
    return [50.0 + 30.0 * math.sin(2.0 * math.pi * i / period) for i in range(n)]


def test_silent_on_flat_signal() -> None:
    scores = _feed(StreamingAnomalyDetector(), [42.0] * 1500)
    assert max(scores) < DEFAULT_THRESHOLD


def test_silent_on_smooth_periodic_signal_after_warmup() -> None:
    scores = _feed(StreamingAnomalyDetector(), _periodic(2000))
    assert max(scores[WARM:]) < DEFAULT_THRESHOLD


def test_fires_on_spike_once() -> None:
    det = StreamingAnomalyDetector()
    _feed(det, _periodic(1000))
    values = _periodic(1100)[1000:]
    values[10] = 500.0
    scores = _feed(det, values, start=1000)
    assert scores[10] >= DEFAULT_THRESHOLD
    assert max(scores[:10]) < DEFAULT_THRESHOLD


def test_fires_on_step_then_suppresses_repeats() -> None:
    det = StreamingAnomalyDetector(rest=200)
    _feed(det, [10.0 + 0.1 * (i % 5) for i in range(800)])
    scores = _feed(det, [30.0 + 0.1 * (i % 5) for i in range(150)], start=800)
    alarms = [i for i, s in enumerate(scores) if s >= DEFAULT_THRESHOLD]
    assert alarms and alarms[0] < 10
    assert len(alarms) == 1  # one alarm at onset, the rest period holds the others down


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None, "x"])
def test_never_raises_on_gaps_and_does_not_learn_them(bad: object) -> None:
    det = StreamingAnomalyDetector()
    _feed(det, _periodic(300))
    before = pickle.dumps(det)
    assert det.score_one(1.0, bad) == 0.0  # type: ignore[arg-type]
    assert pickle.dumps(det) == before


def test_gaps_inside_a_stream() -> None:
    det = StreamingAnomalyDetector()
    values = [v if i % 17 else math.nan for i, v in enumerate(_periodic(1500))]
    scores = _feed(det, values)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert max(scores[WARM:]) < DEFAULT_THRESHOLD


def test_pickle_round_trip_continues_identically() -> None:
    det = StreamingAnomalyDetector()
    _feed(det, _periodic(700))
    clone = pickle.loads(pickle.dumps(det))
    tail = _periodic(900)[700:]
    tail[50] = 300.0
    assert _feed(det, tail, start=700) == _feed(clone, tail, start=700)


# The settings evaluation/nab_cv.py chose by cross-validation (BENCHMARKS.md, issue 15).
CROSS_VALIDATED = dict(
    window=2000,
    warmup=150,
    short=3,
    n_bins=8,
    context=6,
    average=10,
    threshold=0.5,
    rest=200,
    outlier=6.0,
)


def test_defaults_are_the_cross_validated_choice() -> None:
    det = StreamingAnomalyDetector()
    defaults = {name: getattr(det, name) for name in CROSS_VALIDATED}
    assert defaults == CROSS_VALIDATED, "a new default needs a new run of evaluation/nab_cv.py"
    assert CROSS_VALIDATED["threshold"] == DEFAULT_THRESHOLD


def test_constructor_stores_configuration() -> None:
    det = StreamingAnomalyDetector(window=500, rest=50)
    assert (det.window, det.rest, det.threshold) == (500, 50, DEFAULT_THRESHOLD)
    with pytest.raises(ValueError):
        StreamingAnomalyDetector(window=3)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(min_value=-1e6, max_value=1e6),
            st.sampled_from([0.0, 1.0, 1e300, -1e300, 5e-324]),
        ),
        max_size=300,
    )
)
def test_scores_stay_in_unit_interval(values: list[float]) -> None:
    det = StreamingAnomalyDetector(window=50, warmup=20, rest=10)
    for i, v in enumerate(values):
        s = det.score_one(float(i), v)
        assert 0.0 <= s <= 1.0


def test_score_csv_round_trip() -> None:
    rows = [f"2014-04-01 00:{i // 60:02d}:{i % 60:02d},{v}" for i, v in enumerate(range(120))]
    text = "timestamp,value\n" + "\n".join(rows) + "\n"
    out = io.StringIO()
    assert score_csv(io.StringIO(text), out) == 120
    lines = out.getvalue().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score"
    assert len(lines) == 121
    for src, line in zip(rows, lines[1:], strict=True):
        stamp, value, score = line.split(",")
        assert f"{stamp},{value}" == src
        assert 0.0 <= float(score) <= 1.0


def test_score_csv_unix_seconds_no_header_and_gaps() -> None:
    out = io.StringIO()
    n = score_csv(io.StringIO("1396310400,1.0\n1396310700,\n\n1396311000,nan\n"), out)
    assert n == 3
    assert out.getvalue().splitlines()[2] == "1396310700,,0.000000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "timestamp,value\n2014-04-01 00:00:00,1\nnot a time,2\n",
            "line 3: unrecognised timestamp",
        ),
        ("timestamp,value\n2014-04-01 00:00:00,1,3\n", "line 2: expected 2 columns"),
        ("2014-04-01 00:00:00\n", "line 1: expected 2 columns"),
    ],
)
def test_score_csv_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        score_csv(io.StringIO(text), io.StringIO())


def test_parse_timestamp_forms() -> None:
    assert parse_timestamp("2014-04-01 00:00:00") == 1396310400.0
    assert parse_timestamp("2014-04-01 00:00:00.000000") == 1396310400.0
    assert parse_timestamp("1396310400") == 1396310400.0


def test_the_bank_runs_the_cross_validated_detector() -> None:
    """The per-field detectors the detector bank builds are the generic detector at its defaults
    (the cross-validated choice), not settings of their own."""
    uni = UnivariateAnomaly()
    ts = np.arange(0.0, 3 * 600.0, 60.0)
    uni.update(Block("d", ts, {"humidity_pct": np.full(len(ts), 50.0)}))
    (det,) = uni._detectors.values()
    reference = StreamingAnomalyDetector()
    config = ("window", "warmup", "short", "n_bins", "context", "average", "threshold", "rest")
    assert {c: getattr(det, c) for c in config} == {c: getattr(reference, c) for c in config}
    assert (det.window, det.warmup) == (CROSS_VALIDATED["window"], CROSS_VALIDATED["warmup"])


def test_a_value_near_the_float_limit_scores_without_overflow() -> None:
    """Its position on the novelty grid is infinite: compared, never floored (hypothesis found
    an ``OverflowError`` there in S19)."""
    det = StreamingAnomalyDetector(window=50, warmup=20, rest=10)
    for i in range(40):
        det.score_one(float(i), 1e-3 * (i % 7))
    for v in (1.7e308, -1.7e308, 3e-3):
        assert 0.0 <= det.score_one(40.0, v) <= 1.0
