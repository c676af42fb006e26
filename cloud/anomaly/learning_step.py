"""A unit that changed while it learned: a step in its learning windows.

A baseline-shift detector (``shift.py``) learns a unit's normal from its first 36 h. A unit can
change in that time: an installation leak in its first hours, a fan that fails on day one.
Learned as its normal, the baseline sits between the two levels, the windows after learning show
only part of the change, below the practical minimum, and the fault is never found. So at the
end of learning the learning windows are searched for a step in the fault's direction
(:func:`find_step`): per split with at least ``min_side`` windows on each side, the least-squares
fit of the rows with a constant added from the split on (the normal equations' sums the baseline
keeps, plus the windows' Σx, Σy and counts: no row is kept), and its ``t``, the step over its
standard error from the windows' robust spread about that fit. The detector keeps a step of at
least ``step_t`` standard errors and at least its practical minimum shift
(``BaselineShift.learned_step``), and the baseline is then the unit before it
(``LinearBaseline.fit`` with the split and the step).

Healthy units' steps are heavy-tailed in ``t`` (weather and habits the features do not capture),
which is why the practical minimum decides as much as ``t``: over 4,951 healthy units' learning
periods in 22 simulated fleets, the largest step in the direction of a cooling loss was 2.3 % of
the level at the 99.9th percentile, and one reached the 8 % minimum, at ``t`` 6.8; none of
5,040 reached the noise (2 dB) or vibration (30 %) minimum (BENCHMARKS.md, issue 15, S13).

Where it stops. A step in the first ``min_side`` windows (6 h) cannot be told from a unit that
was born so. One a few windows in that came with the afternoon's warming is partly taken up by
the outdoor temperature's coefficient (within a window the rows follow the afternoon faster than
the windows do, and the fit is on rows), so it may stay below the minimum: in simulated units a
15 % loss then reads as 6-8 %. Fitting the step on the windows' means instead found those, but
took weather and setpoint changes for steps: 29 of the same healthy units past the cooling
minimum and 10 past the noise one, so the fit stays on rows.

Pure: the baseline's sums in, a :class:`Step` out.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cloud.anomaly.baseline import LinearBaseline


class Step(NamedTuple):
    """A step in a unit's learning windows (:func:`find_step`)."""

    split: int  # the first window after it
    ts: float  # that window's start
    delta: float  # the step's size, in the monitored quantity's units (:func:`_matched`)
    t: float  # the step over its standard error, in the direction looked for
    level: float  # the monitored quantity's mean before it


def find_step(b: LinearBaseline, direction: int, min_side: int) -> Step | None:
    """The most likely step in ``b``'s learning windows, in ``direction``: per split with at
    least ``min_side`` windows on each side, the fit with a constant added from the split on
    (:func:`step_fits`), and its ``t``; returns the split of largest ``direction · t`` with
    ``direction · step > 0``, None if there is none (or too few windows, or ``b`` is fitted)."""
    windows = b.windows
    if windows is None or len(windows) < 2 * min_side:
        return None
    count = len(windows)
    splits = np.arange(min_side, count - min_side + 1)
    beta, delta = step_fits(b, splits)
    n = np.array([w[1] for w in windows], dtype=float)
    sx = np.array([w[2] for w in windows])
    sy = np.array([w[3] for w in windows])
    after = np.arange(count)[None, :] >= splits[:, None]
    res = (sy[None, :] - beta @ sx.T) / n[None, :] - delta[:, None] * after
    centre = np.median(res, axis=1, keepdims=True)
    sigma = 1.4826 * np.median(np.abs(res - centre), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = direction * delta / (sigma * np.sqrt(1.0 / splits + 1.0 / (count - splits)))
    t = np.where((sigma > 0.0) & (direction * delta > 0.0), t, -np.inf)
    best = int(np.argmax(t))
    if not np.isfinite(t[best]):
        return None
    split = int(splits[best])
    level = float(sy[:split].sum() / n[:split].sum())
    size = _matched(sx / n[:, None], res[best] + delta[best] * after[best], split)
    size = float(delta[best]) if size is None else size
    return Step(split, windows[split][0], size, float(t[best]), level)


def _matched(mx: np.ndarray, res: np.ndarray, split: int, margin: float = 0.1) -> float | None:
    """The step's size read at like conditions: the mean residual (against the fit at the
    split, ``res``) of the windows after it whose mean conditions ``mx`` lie within those of
    the windows before it (padded by ``margin`` of their width), less the mean before it; None
    with fewer than two such windows. A slope the fit got wrong cancels out of it."""
    before = mx[:split]
    lo, hi = before.min(axis=0), before.max(axis=0)
    pad = margin * (hi - lo)
    like = np.all((mx[split:] >= lo - pad) & (mx[split:] <= hi + pad), axis=1)
    if like.sum() < 2:
        return None
    return float(res[split:][like].mean() - res[:split].mean())


def step_fits(b: LinearBaseline, splits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per split, least squares of ``y`` on ``b``'s features plus an indicator of the learning
    windows from the split on: ``beta`` (splits × features) and the step (splits). The
    indicator's sums come from the windows' Σx, Σy and counts (rows of windows too sparse to
    count stay in the features' sums, read as before the split: a few rows at most)."""
    assert b.windows is not None
    k = b.n_features
    # sums over the windows from each index on (the last row: none)
    tail = np.array([(n, sy, *sx) for _, n, sx, sy in b.windows], dtype=float)
    tail = np.concatenate((np.cumsum(tail[::-1], axis=0)[::-1], np.zeros((1, k + 2))))
    after = tail[splits]
    a = np.zeros((len(splits), k + 1, k + 1))
    a[:, :k, :k] = b.xtx + b.ridge * np.eye(k)
    a[:, :k, k] = a[:, k, :k] = after[:, 2:]
    a[:, k, k] = after[:, 0]
    rhs = np.concatenate((np.broadcast_to(b.xty, (len(splits), k)), after[:, 1:2]), axis=1)
    solved = np.linalg.solve(a, rhs[..., None])[..., 0]
    return solved[:, :k], solved[:, k]
