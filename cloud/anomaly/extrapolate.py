"""Judging rows outside a unit's learned range in a feature whose effect has a known sign.

A baseline-shift detector (``shift.py``) trusts its linear baseline only where it was learned.
Some features leave that range for reasons that must not hide a fault. For cooling decline it is
return-air temperature (``CoolingDecline.extrapolated``):

- **above** the range, the fault itself drives a unit there: one that lost capacity cannot hold
  its room, so its return air warms past anything it learned, exactly when the loss shows (a
  15 % leak in a held-out fleet went 39 h unjudged, BENCHMARKS.md, issue 15, S10);
- **below** it, users do: a setpoint lower than any the unit learned at (a 15 % leak went 96 h
  unjudged while its user kept 18 °C, S11).

Fan speed too: a unit that learned at two speeds and then runs at a third (cooler evenings, a
user's choice) would be unjudged at it (a 15 % leak in a held-out hot fleet went 61 h unfound
that way, S11).

Such rows are moved to the range's nearer end and their monitored quantity corrected by a slope
times the distance (:func:`into_range`), so they are judged against the baseline extrapolated
along that slope. The feature's effect must have a known sign: a coil's sensible ΔT rises with
the air it takes in, and falls as more air is blown through it. The slope is then chosen to err
*away* from the fault (:func:`range_slopes`): a wrong slope makes a healthy unit read against
the fault, never towards it, unless both slopes it could take err the same way.

- Where the prediction rises away from the range (above it for return air, below it for fan
  speed), the **gentler** of the unit's own slope and its fleet's (the fleet's median relative
  effect times the unit's level, ``prior.py``), never of the wrong sign; without a fleet value,
  0 (the baseline at the range's end). A unit that learned over a narrow range may have
  overestimated its slope, and an overestimate there reads as a drop.
- Where it falls (below the range for return air, above it for fan speed), the **steeper** of
  the two, and only with a fleet value; otherwise the rows are not judged. An underestimate
  there reads as a drop, and a lone unit has nothing to check its own slope against.

Pure functions on arrays: the column path (``columns.py``) and the reference object share them.
"""

from __future__ import annotations

import numpy as np


def into_range(
    x: np.ndarray,
    y: np.ndarray,
    cols: list[int],
    bottom: np.ndarray,
    top: np.ndarray,
    below: np.ndarray,
    above: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows outside ``[bottom, top]`` in the features ``cols`` (any leading shape × features),
    moved to the nearer end, their ``y`` less ``above`` times the excess over the top and plus
    ``below`` times the deficit under the bottom: judged against the baseline's value at that
    end extrapolated with that slope. A NaN slope gives the rows it applies to a NaN ``y`` (not
    judged); ``x`` and ``y`` are not changed.

    >>> xb, yb = into_range(np.array([[1.0, 2.0], [1.0, 5.0], [1.0, 0.0]]),
    ...                     np.array([3.0, 4.0, 1.0]), [1], np.array([1.0]), np.array([3.0]),
    ...                     np.array([0.8]), np.array([0.5]))
    >>> xb.tolist(), yb.tolist()
    ([[1.0, 2.0], [1.0, 3.0], [1.0, 1.0]], [3.0, 3.0, 1.8])
    """
    v = x[..., cols]
    excess, deficit = np.maximum(v - top, 0.0), np.maximum(bottom - v, 0.0)
    with np.errstate(invalid="ignore"):
        shift = np.where(excess > 0.0, excess * above, 0.0)
        shift -= np.where(deficit > 0.0, deficit * below, 0.0)
    xb = x.copy()
    xb[..., cols] = np.clip(v, bottom, top)  # exactly an end: within the range
    return xb, y - shift.sum(axis=-1)


def range_slopes(
    beta: np.ndarray, level: np.ndarray | float, fleet: np.ndarray, signs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The signed slopes below and above the range, per unit and feature: ``beta`` the units'
    own coefficients (units × features, or features), ``level`` their mean levels, ``fleet`` the
    fleet's median relative effect per feature (NaN: none yet), ``signs`` the known sign of each
    feature's effect on the monitored quantity. NaN where the rows are not to be judged.

    On the side where the prediction rises away from the range (above for a rising feature,
    below for a falling one) the gentler of the two slopes, 0 without a fleet value; on the
    side where it falls, the steeper, and only with a fleet value.

    >>> below, above = range_slopes(np.array([[0.5], [0.1], [-0.2]]), np.array([10.0] * 3),
    ...                             np.array([0.03]), np.array([1.0]))
    >>> below[:, 0].tolist(), above[:, 0].tolist()
    ([0.5, 0.3, 0.3], [0.3, 0.1, 0.0])
    >>> below, above = range_slopes(np.array([[-0.5], [-0.1]]), np.array([10.0] * 2),
    ...                             np.array([-0.03]), np.array([-1.0]))  # a falling feature
    >>> below[:, 0].tolist(), above[:, 0].tolist()
    ([-0.3, -0.1], [-0.5, -0.3])
    """
    level = np.asarray(level, dtype=float)[..., None] if np.ndim(level) else level
    with np.errstate(invalid="ignore"):
        own, theirs = beta * signs, fleet * level * signs  # each effect in its known direction
        gentle = np.minimum(own, theirs)
        gentle = np.where(gentle > 0.0, gentle, 0.0)  # NaN (no fleet value, no level) is 0
        steep = np.maximum(own, theirs)  # NaN where the fleet has none
        steep = np.where(steep > 0.0, steep, np.nan)
        rising = signs > 0.0
        return np.where(rising, steep, -gentle), np.where(rising, gentle, -steep)
