"""Contract tests for the published NAB baselines kept beside the generic detector.

The same promises as every detector in ``cloud/anomaly`` (STYLE.md): silent on a flat and on a
periodic healthy stream, fires on a step, never raises on NaN and does not learn it, a pickle
round trip continues identically, constructor arguments stored under their names.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.anomaly.knn_cad import KnnCad
from cloud.anomaly.nab import StreamScorer
from cloud.anomaly.relative_entropy import RelativeEntropy
from cloud.anomaly.windowed_gaussian import WindowedGaussian

DETECTORS: dict[str, Callable[[], StreamScorer]] = {
    "knn_cad": KnnCad,
    "relative_entropy": RelativeEntropy,
    "windowed_gaussian": WindowedGaussian,
}
SMALL: dict[str, Callable[[], StreamScorer]] = {  # short windows: hypothesis's short streams
    "knn_cad": lambda: KnnCad(dim=3, k=2, train=20),
    "relative_entropy": lambda: RelativeEntropy(window=10, warmup=5),
    "windowed_gaussian": lambda: WindowedGaussian(window=20, warmup=5),
}
WARM = 400  # values fed before the "after warm-up" assertions


@pytest.fixture(params=sorted(DETECTORS))
def make(request: pytest.FixtureRequest) -> Callable[[], StreamScorer]:
    return DETECTORS[request.param]


def _feed(det: StreamScorer, values: list[float], start: int = 0) -> list[float]:
    return [det.score_one(float(start + i) * 300.0, v) for i, v in enumerate(values)]


def _periodic(n: int, period: int = 48) -> list[float]:
    return [50.0 + 30.0 * math.sin(2.0 * math.pi * i / period) for i in range(n)]


def test_silent_on_flat_signal(make: Callable[[], StreamScorer]) -> None:
    det = make()
    assert max(_feed(det, [42.0] * 1500)) < det.threshold


def test_silent_on_periodic_signal_after_warmup(make: Callable[[], StreamScorer]) -> None:
    det = make()
    assert max(_feed(det, _periodic(2000))[WARM:]) < det.threshold


def test_fires_on_step(make: Callable[[], StreamScorer]) -> None:
    det = make()
    _feed(det, [10.0 + 0.1 * (i % 5) for i in range(800)])
    scores = _feed(det, [30.0 + 0.1 * (i % 5) for i in range(100)], start=800)
    alarms = [i for i, s in enumerate(scores) if s >= det.threshold]
    assert alarms and alarms[0] < 60


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None, "x"])
def test_never_raises_on_gaps_and_does_not_learn_them(
    make: Callable[[], StreamScorer], bad: object
) -> None:
    det = make()
    _feed(det, _periodic(300))
    before = pickle.dumps(det)
    assert det.score_one(1.0, bad) == 0.0  # type: ignore[arg-type]
    assert pickle.dumps(det) == before


def test_pickle_round_trip_continues_identically(make: Callable[[], StreamScorer]) -> None:
    det = make()
    _feed(det, _periodic(700))
    clone = pickle.loads(pickle.dumps(det))
    tail = _periodic(900)[700:]
    tail[50:] = [v + 40.0 for v in tail[50:]]
    assert _feed(det, tail, start=700) == _feed(clone, tail, start=700)


def test_constructor_stores_configuration() -> None:
    assert (WindowedGaussian(window=500).window, WindowedGaussian().threshold) == (500, 0.999)
    assert (RelativeEntropy(window=30).window, RelativeEntropy().n_bins) == (30, 5)
    assert (KnnCad(k=5).k, KnnCad().dim, KnnCad().threshold) == (5, 19, 0.9965)
    with pytest.raises(ValueError):
        KnnCad(k=30, train=20)
    with pytest.raises(ValueError):
        WindowedGaussian(window=1)
    with pytest.raises(ValueError):
        RelativeEntropy(alpha=1.5)


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(sorted(DETECTORS)),
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from([0.0, 1.0, 1e300, -1e300, 5e-324]),
        ),
        max_size=300,
    ),
)
def test_scores_stay_in_unit_interval(name: str, values: list[float]) -> None:
    det = SMALL[name]()
    for i, v in enumerate(values):
        assert 0.0 <= det.score_one(float(i), v) <= 1.0
