"""Judging rows outside a unit's learned range in a feature whose effect has a known sign.

A baseline-shift detector (``shift.py``) trusts its linear baseline only where it was learned.
Some features leave that range for reasons that must not hide a fault. For cooling decline it is
return-air temperature (``CoolingDecline.extrapolated``):

- **above** the range, the fault itself drives a unit there: one that lost capacity cannot hold
  its room, so its return air warms past anything it learned, exactly when the loss shows (a
  15 % leak in a held-out fleet went 39 h unjudged, BENCHMARKS.md, issue 15, S10);
- **below** it, users do: a setpoint lower than any the unit learned at (a 15 % leak went 96 h
  unjudged while its user kept 18 °C, S11).

Such rows are moved to the range's nearer end and their monitored quantity corrected by a slope
times the distance (:func:`into_range`), so they are judged against the baseline extrapolated
along that slope. The feature's effect must have a known sign: a coil's sensible ΔT rises with
the air it takes in. The slope is then chosen to err *away* from the fault
(:func:`range_slopes`): a wrong slope makes a healthy unit read against the fault, never towards
it, unless both slopes it could take err the same way.

- Above, the **smaller** of the unit's own slope and its fleet's (the fleet's median relative
  effect times the unit's level, ``prior.py``), never negative; without a fleet value, 0 (the
  baseline at the top). A unit that learned over a narrow range may have overestimated its
  slope, and an overestimate there reads as a drop.
- Below, the **larger** of the two, and only with a fleet value and a positive slope; otherwise
  the rows are not judged. There the prediction falls with the feature, so an underestimate
  reads as a drop, and a lone unit has nothing to check its own slope against.

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
    beta: np.ndarray, level: np.ndarray | float, fleet: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The slopes below and above the range, per unit and feature: ``beta`` the units' own
    coefficients (units × features, or features), ``level`` their mean levels, ``fleet`` the
    fleet's median relative effect per feature (NaN: none yet). Below: NaN where the rows are
    not to be judged.

    >>> below, above = range_slopes(np.array([[0.5], [0.1], [-0.2]]), np.array([10.0] * 3),
    ...                             np.array([0.03]))
    >>> below[:, 0].tolist(), above[:, 0].tolist()
    ([0.5, 0.3, 0.3], [0.3, 0.1, 0.0])
    """
    level = np.asarray(level, dtype=float)[..., None] if np.ndim(level) else level
    with np.errstate(invalid="ignore"):
        theirs = fleet * level
        above = np.minimum(beta, theirs)
        above = np.where(above > 0.0, above, 0.0)  # NaN (no fleet value, no level) is 0
        below = np.maximum(beta, theirs)  # NaN where the fleet has none
        below = np.where(below > 0.0, below, np.nan)
    return below, above
