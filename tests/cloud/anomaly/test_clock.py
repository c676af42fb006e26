"""The clock check's two forms agree: the bounds-only one the worker uses on every block and
the reason that names what is wrong."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from cloud.anomaly.clock import ClockCheck
from contract.clock import EARLIEST_TS

NOW = 1.75e9
time_ = (
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(EARLIEST_TS - 10, NOW + 1e4)
)


@given(
    st.lists(time_, min_size=1, max_size=12),
    st.sampled_from([0.0, 600.0, math.inf]),
    st.sampled_from([EARLIEST_TS, -math.inf]),
    st.floats(NOW - 1e6, NOW + 1e6),
)
def test_believable_is_reason_none_from_the_bounds_numpy_takes(times, ahead_s, earliest, now):
    check = ClockCheck(ahead_s=ahead_s, earliest_ts=earliest)
    ts = np.array(times)
    lo, hi = float(np.minimum.reduce(ts)), float(np.maximum.reduce(ts))
    assert check.believable(lo, hi, now) == (check.reason(times, now) is None)


def test_believable_refuses_what_reason_names():
    check = ClockCheck(ahead_s=600)
    for times in ([math.nan, NOW], [NOW, math.inf], [-math.inf, NOW], [0.0, NOW], [NOW + 601]):
        ts = np.array(times)
        assert not check.believable(float(ts.min()), float(ts.max()), NOW)
        assert check.reason(times, NOW) is not None
    assert check.believable(NOW - 60, NOW + 600, NOW)
    trusting = ClockCheck(ahead_s=math.inf, earliest_ts=-math.inf)  # still not an infinite time
    assert not trusting.believable(NOW, math.inf, NOW) and trusting.reason([math.inf], NOW)
    assert not trusting.believable(-math.inf, NOW, NOW) and trusting.reason([-math.inf], NOW)
