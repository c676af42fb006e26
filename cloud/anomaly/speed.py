"""Fixed or variable speed: which model of ΔT a unit's cooling detector keeps.

A fixed-speed compressor runs at one speed and holds its room by cycling: while it runs, its ΔT
follows the conditions (outdoor and return air, fan speed), and so does its current, which then
tells nothing more. An inverter (变频) compressor's speed follows the room: it runs for hours at
30-130 % of its rated speed, and its ΔT rises and falls with that speed, which no temperature
gives. Split units sold in China since GB 21455-2019 are nearly all inverter units. Judged on
the conditions alone, a healthy one reads as losing cooling whenever its compressor slows (a
mild evening, a user who raised the setpoint): on the simulated ``inverter-healthy`` fleet
(S17), 60 false ``cooling_decline`` findings per 1,000 healthy device-days, and 13 % of the
``inverter`` fleet's 15 % leaks found within 48 h.

The compressor's current carries its speed (power rises with it), so the cooling detector
(``cooling.py``) learns two models side by side and keeps one at the end of learning
(``BaselineShift.unused_features``, ``LinearBaseline.drop``):

- **fixed speed**: ΔT linear in the conditions, as before;
- **variable speed**: ΔT per ampere linear in the conditions, written as ΔT linear in the
  conditions times the current (``ΔT = I · (b₀ + b₁·outdoor + b₂·fan + b₃·return)``), so the
  monitored quantity, its level, the practical minimum and every window's residual stay in
  kelvin. Capacity per unit of power moves far less with the speed than ΔT does. A leak lowers
  it: the unit runs faster to hold its room, drawing more current for the same ΔT, and at its
  top speed its ΔT falls.

The choice (:func:`varies`): over the rows the unit learned, its current regressed on the
conditions, and the residual's spread relative to the mean current, from the normal equations'
sums alone (Σxxᵀ holds the current's Σx² and its cross sums with the conditions). Measured on
the simulated fleets' first 36 h (S17): fixed-speed units 0.4-1.5 % healthy, up to 3.9 % where a
leak began while they learned (their current fell with it: ``early``); inverter units 6-34 %
(median 14 %). The line is ``SPREAD`` (5 %). Measured and not kept: the same over the learning
windows' means (fixed-speed units up to 4.4 %, inverter units from 1.7 %). A unit without a
current reading (0: a firmware without the sensor) is a fixed-speed unit.

Between ``DOUBT`` (2.5 %) and ``SPREAD`` the unit itself cannot tell (S18): about one inverter
unit in a hundred read 4.6-4.8 % (its speed followed its load, and its load the weather, so the
conditions explained most of its current) and, kept as fixed-speed, read as losing cooling once
its user changed the setpoint; fixed-speed units whose leak began while they learned read up to
3.9 %. There the unit takes the model most of its fleet's units chose (``FeaturePrior.left_out``
of feature 0, which the variable-speed model leaves out). The fleet is the bank's product
group, not the model: in a fleet of mostly inverter units a fixed-speed unit in doubt (a leak
while it learned) takes the variable-speed model too; the fixed-speed units of the ``inverter``
fleets read 0.8-1.1 %, not in doubt. A fleet's units mostly finish learning in the same hour,
before any has told the fleet, so a unit in doubt waits for the fleet's word
(``CoolingDecline.waits``), at most ``shift.WAIT_S``; without one it keeps the ``SPREAD`` line.

**Measured** (S17, ``qloop eval``, 3 seeds each; ``inverter``: 2,295 healthy device-days,
``inverter-healthy``: 3,060):

- before (the conditions alone): 12/90 15 % leaks within 48 h; 62 and 60 false findings per
  1,000 healthy device-days (``inverter``, ``inverter-healthy``);
- the current as a fifth feature of ΔT: 59/90; 79 and 80;
- ΔT per ampere, its windows judged in kelvin: 81/90; 23 and 27;
- ΔT per ampere, judged in proportion (kept): **78/90; 5.2 and 7.8**.

The fifth feature: ΔT is not linear in the current, and a fan step or a setpoint change moved the
fit's other coefficients. Judged in kelvin, a window at the compressor's top speed expects a
large ΔT and its errors read large against the level. What was left: the return air's
coefficient takes up the speed (the inverter holds its room near the setpoint, so the return
air and the speed move together while the unit learns), and after a setpoint change that
coefficient misled. S18 judges a unit's rows at a setpoint beyond those it learned at as at the
nearest of them (``CoolingDecline.corrected``): 9 and 9 false findings on the same fleets, 76/90
leaks. The 20 fixed-speed units of those fleets, and every unit of the other 28 built-in
fleets, keep the fixed-speed model.
"""

from __future__ import annotations

import math

import numpy as np

SPREAD = 0.05  # the current's residual spread over its mean above which a unit varies its speed
# between this and ``SPREAD`` the unit's fleet decides (:func:`varies`)
DOUBT = 0.025


def spread(xtx: np.ndarray, j: int, ridge: float = 1e-6) -> np.ndarray:
    """From normal-equation sums ``xtx`` (``... × features × features``, feature 0 the
    constant): the spread of feature ``j`` (the current) beyond what the features before it
    explain, over its mean. One value per set of sums; NaN with no rows or no mean.

    >>> out = np.arange(20.0)
    >>> x = np.column_stack([np.ones(20), out, 3.0 + 0.05 * out])  # it follows the weather
    >>> float(spread(x.T @ x, 2)) < 0.001
    True
    >>> x[:, 2] *= np.tile([0.6, 1.0, 1.4, 0.8], 5)  # and something else: the speed
    >>> round(float(spread(x.T @ x, 2)), 2)
    0.31
    """
    xtx = np.asarray(xtx, dtype=float)
    n, total = xtx[..., 0, 0], xtx[..., 0, j]
    a = xtx[..., :j, :j] + ridge * np.eye(j)
    b = xtx[..., :j, j]
    with np.errstate(invalid="ignore", divide="ignore"):
        coef = np.linalg.solve(a, b[..., None])[..., 0]
        rss = np.maximum(xtx[..., j, j] - np.einsum("...i,...i->...", coef, b), 0.0)
        out = np.sqrt(rss / n) / (total / n)
        return np.where((n > 0.0) & (total > 0.0), out, np.nan)


def varies(xtx: np.ndarray, j: int, fleet: float = math.nan) -> np.ndarray:
    """Does feature ``j`` of each set of sums ``xtx`` vary beyond the features before it
    (:func:`spread`) by more than ``SPREAD``, or by more than ``DOUBT`` where most of the
    unit's fleet (``fleet``: the share of its units that chose the variable-speed model; NaN
    while it has too few) did? False with no rows or no mean.

    >>> x = np.column_stack([np.ones(4), np.arange(4.0), [3.0, 3.15, 2.85, 3.0]])
    >>> round(float(spread(x.T @ x, 2)), 3)
    0.034
    >>> bool(varies(x.T @ x, 2)), bool(varies(x.T @ x, 2, 0.2)), bool(varies(x.T @ x, 2, 0.9))
    (False, False, True)
    """
    s = spread(xtx, j)
    with np.errstate(invalid="ignore"):
        return (s > SPREAD) | ((s > DOUBT) & (fleet > 0.5))


def doubtful(xtx: np.ndarray, j: int) -> bool:
    """Is one set of sums' spread (:func:`spread`) where the fleet decides?"""
    s = float(spread(xtx, j))
    return DOUBT < s <= SPREAD
