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

**The step's size is read at like conditions** (:func:`_matched`). A step a few windows in
that came with the morning's warming is partly taken up by the outdoor temperature's
coefficient: within a window the rows follow the warming faster than the windows do, and the
fit is on rows. A 15 % loss then reads as 6-8 % in simulated units, and its ``t`` is small. So
the size is the mean residual of the windows after the split whose mean conditions lie within
those before it (the next night, when the step came in the morning), less the mean before it.
A wrong slope cancels out of that comparison. With fewer than two such windows, the fit's own
step is the size. The rows after the split are moved back by that size.

**So is its ``t``** (:func:`find_steps`, S16). The row fit's ``t`` shrinks with its size: a
loss at hours 6-12 or on the second evening, read through a wrong slope, stayed under 4
standard errors though its size at like conditions was past the minimum (``early``, seed
20000: 25 leaks of 60 missed, 11 of them so). The windows at like conditions are a second
reading: per split, the size at like conditions over its standard error (the same robust spread
about the split's fit, over the windows before it and the like windows after it); the split of
the largest.

**And against the windows after the split alone** (:func:`_after_fit`, S21; cooling only, the
detector's ``after_steps``). A loss in the first hours, two or three night windows before it and
the day's warming after it: the row fit gives the loss to the outdoor temperature's slope, and
no window after it is like the night before it. A fit of the windows after the split by
themselves, a day or more of the unit as it now is, fixes the slopes without the step, and its
prediction at the windows before reads the whole loss, where its conditions are not an
extrapolation of that fit. Of the readings that pass both gates the detector keeps the largest:
a reading through a wrong slope, or at a split a few windows off, reads a part of the step.

**The healthy units.** Their steps are heavy-tailed in ``t``, from weather and habits the
features do not capture. The practical minimum, not ``t``, keeps them out. The measure was every
healthy unit's learning period in 22 simulated fleets: 4,951 for cooling, 5,040 each for noise
and vibration.
- The largest cooling step in the direction of a loss was 2.3 % of the level at the 99.9th
  percentile.
- At ``t`` ≥ 3 (``step_t`` is 4) one unit past the 8 % minimum, at ``t`` 6.8, with the fit's
  size and with the matched one alike.
- No unit reached the noise (2 dB) or vibration (30 %) minimum.
- With the second reading (S16; the 26 built-in fleets, 48 runs of 1-3 seeds): of 5,845 healthy
  cooling and 5,881 healthy noise and vibration learning periods, no step kept that the row fit
  had not kept (the one above); 21 more of the leaks that began while their units learned.

**Measured and not kept** (BENCHMARKS.md, issue 15, S13): fitting the step on the windows'
means took weather and setpoint changes for steps (29 healthy units past the cooling minimum,
10 past the noise one).

**Where it stops.** A step in the first window (3 h; the first ``min_side`` windows for the row
fit and the like windows) cannot be told from a unit that was born so. Such a unit is found
against its model's other units instead, when it is far enough short of them
(``peers.py``, ``PeerLevels.lone``, S23: ``early``'s 15 % leaks found within 48 h 173 → 178 of
180 with it).

Pure: the baseline's sums in, a :class:`Step` out.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cloud.anomaly.baseline import LinearBaseline, robust_spread, within_range


class Step(NamedTuple):
    """A step in a unit's learning windows (:func:`find_step`)."""

    split: int  # the first window after it
    ts: float  # that window's start
    delta: float  # the step's size, in the monitored quantity's units (:func:`_matched`)
    t: float  # the step over its standard error, in the direction looked for
    level: float  # the monitored quantity's mean before it


def find_step(b: LinearBaseline, direction: int, min_side: int) -> Step | None:
    """The most likely step in ``b``'s learning windows, in ``direction``, by the row fit: per
    split with at least ``min_side`` windows on each side, the fit with a constant added from
    the split on (:func:`step_fits`), and its ``t``; returns the split of largest
    ``direction · t`` with ``direction · step > 0``, its size read at like conditions where it
    can be (:func:`_matched`), None if there is none (or too few windows, or ``b`` is fitted)."""
    steps = find_steps(b, direction, min_side)
    return steps[0] if steps else None


def find_steps(
    b: LinearBaseline, direction: int, min_side: int, *, after_margin: float | None = None
) -> list[Step]:
    """The step in ``b``'s learning windows as the row fit reads it (:func:`find_step`), then
    as the windows at like conditions read it: the split whose size at like conditions
    (:func:`_matched`) is the most standard errors large, with that ``t`` (the same spread
    about the split's fit, over the windows before it and the like windows after it). With
    ``after_margin``, a third reading, one per split from the second window on: against the
    windows after the split alone (:func:`_after_fit`). The caller keeps the largest that
    passes its gates; empty if no reading has a step in ``direction``."""
    windows = b.windows
    if windows is None or len(windows) < 2 * min_side:
        return []
    count = len(windows)
    splits = np.arange(min_side, count - min_side + 1)
    beta, delta = step_fits(b, splits)
    after = np.arange(count)[None, :] >= splits[:, None]
    raw = b.residuals(beta)  # splits × windows, against each split's fit without its step
    sigma = robust_spread(raw - delta[:, None] * after)  # about each step fit
    n = np.array([w[1] for w in windows], dtype=float)
    mx = np.array([w[2] for w in windows]) / n[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = direction * delta / (sigma * np.sqrt(1.0 / splits + 1.0 / (count - splits)))
    t = np.where((sigma > 0.0) & (direction * delta > 0.0), t, -np.inf)
    matched = [_matched(mx, raw[i], int(s)) for i, s in enumerate(splits.tolist())]
    tm = np.full(len(splits), -np.inf)
    for i, m in enumerate(matched):
        if m is not None and sigma[i] > 0.0 and direction * m[0] > 0.0:
            tm[i] = direction * m[0] / (sigma[i] * np.sqrt(1.0 / splits[i] + 1.0 / m[1]))
    out = []
    for best, read in ((int(np.argmax(t)), t), (int(np.argmax(tm)), tm)):
        if np.isfinite(read[best]):
            split = int(splits[best])
            size = delta[best] if matched[best] is None else matched[best][0]
            level = float(np.sum([w[3] for w in windows[:split]]) / n[:split].sum())
            out.append(Step(split, windows[split][0], float(size), float(read[best]), level))
    if after_margin is not None:
        out += _after_fit(windows, direction, 1, b.ridge, after_margin)
    return out


def _after_fit(
    windows: list[tuple[float, int, np.ndarray, float]],
    direction: int,
    min_side: int,
    ridge: float,
    margin: float,
) -> list[Step]:
    """The step at a split read against the windows after it alone: per split with
    ``min_side`` or more windows before it and more windows after it than features plus two,
    the least squares of the windows' means after it on their conditions (about their weighted
    means, a feature that does not vary there left out; the ridge relative to each feature's
    own spread, so it shrinks the slopes and never the level), and the step as the fit's
    prediction at the windows before it less what those read. Its ``t``: the step over the
    standard error of that prediction and of the windows' own mean, each window's mean one draw
    of the robust spread of the fit's residuals.

    Only where the fit is not extrapolated: every window before the split within the range of
    the windows after it, widened by ``margin`` of its width (a feature they hold: at its
    value), and the windows' mean conditions before it no further from the centre than the
    farthest window after it, in the fit's own metric (its leverage), widened by the same
    margin (``(1 + margin)²`` of it). The first is a check per feature; the second catches
    the hidden extrapolation of correlated features, each within its range but not together
    (Montgomery, Peck and Vining, *Introduction to Linear Regression Analysis*, on the
    regressor variable hull). An inverter unit's current and the outdoor temperature move
    together over a day; two healthy units' first night off that line read 13-22 % "losses" at
    a leverage 73 and 92 times the farthest window's. (S20's fit, whose ridge shrank the level
    too, read four healthy units' first windows as 9-15 % losses: ``healthy``, seed 3000.)

    One reading per split with a step in ``direction``; the caller keeps the largest that
    passes its gates: a split after the step counts some of the changed windows as before it,
    one ahead of it fits the slopes over some unchanged ones, and both read less of it (with
    the windows' means this exact, ``t`` is large at both and picks by noise). Gated first,
    then the largest (S22): the largest of all splits, then gated, lost a step whose largest
    reading was a noisy one, one window before a split ahead of it, under its ``t``.

    ``min_side`` may be 1 (the detector's call, S22): one window before the split is one draw
    of the spread, and the reading's ``t`` carries it. A loss in the unit's second window was
    learned in part before: the row fit and the windows at like conditions need two windows
    on each side.

    Why: with few windows before the step, or a step that came with the day's warming, the
    row fit cannot tell the step from the conditions' slopes (a night before an installation
    leak, the day's warming after it: the outdoor temperature's coefficient takes up the
    loss), and the windows after it rarely match those before closely enough for
    :func:`_matched`. The windows after it, a day or more of the unit as it now is, fix the
    slopes by themselves (BENCHMARKS.md, issue 15, S21)."""
    count = len(windows)
    n = np.array([w[1] for w in windows], dtype=float)
    mx = np.array([w[2] for w in windows]) / n[:, None]
    y = np.array([w[3] for w in windows]) / n
    widen = (1.0 + margin) ** 2
    out: list[Step] = []
    for split in range(min_side, count - min_side + 1):
        after = mx[split:]
        tiny = 1e-9 * (1.0 + np.abs(after).max(axis=0))
        keep = np.flatnonzero(np.ptp(after, axis=0) > tiny)
        lo, hi = after.min(axis=0), after.max(axis=0)
        if (
            count - split < len(keep) + 3
            or not within_range(mx[:split], lo, hi, margin, tiny).all()
        ):
            continue
        w = n[split:] / n[split:].sum()
        centre = w @ after[:, keep]
        a = after[:, keep] - centre
        lhs = (a * w[:, None]).T @ a
        inv = np.linalg.pinv(lhs + ridge * np.diag(np.diag(lhs)))
        wb = n[:split] / n[:split].sum()
        x0 = wb @ mx[:split, keep] - centre
        if len(keep) and x0 @ inv @ x0 > widen * np.max(np.einsum("ij,jk,ik->i", a, inv, a)):
            continue  # a hidden extrapolation
        ybar = float(w @ y[split:])
        beta = inv @ ((a * w[:, None]).T @ (y[split:] - ybar))
        sigma = float(robust_spread(y[split:] - ybar - a @ beta))
        delta = ybar + float(x0 @ beta) - float(wb @ y[:split])  # after less before, at x0
        if sigma <= 0.0 or direction * delta <= 0.0:
            continue
        c = w * (1.0 + a @ (inv @ x0))  # the prediction's weights on the windows after
        t = direction * delta / (sigma * np.sqrt(float(c @ c) + float(wb @ wb)))
        out.append(Step(split, windows[split][0], delta, float(t), float(wb @ y[:split])))
    return out


def _matched(
    mx: np.ndarray, res: np.ndarray, split: int, margin: float = 0.1
) -> tuple[float, int] | None:
    """The step's size read at like conditions: the mean residual (against the fit at the
    split, ``res``) of the windows after it whose mean conditions ``mx`` lie within those of
    the windows before it (padded by ``margin`` of their width), less the mean before it, and
    how many windows after it were alike; None with fewer than two such windows. A slope the
    fit got wrong cancels out of it."""
    before = mx[:split]
    like = within_range(mx[split:], before.min(axis=0), before.max(axis=0), margin)
    if like.sum() < 2:
        return None
    return float(res[split:][like].mean() - res[:split].mean()), int(like.sum())


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
