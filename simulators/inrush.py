"""A fixed-speed compressor's start as its current meter reports it (pure numpy, one element per
unit).

A rotary compressor started direct on line draws its locked-rotor current, ``INRUSH_LRA_RATIO``
times its rated running current, and is back at the running current within a fraction of a
second (``INRUSH_TAU_S``). The meter reports the RMS over its last ``METER_WINDOW_S``, so a reading
taken within about a second of a start shows a short spike and later readings show the running
current: at 1 Hz one reading per start, at minutes between readings almost none.
:func:`simulators.aircon.observe` applies :func:`metered_current` to the units whose starts are
modelled (``UnitParams.inrush_a``).
"""

from __future__ import annotations

import numpy as np

# Compressor start (fixed-speed rotary, direct on line): locked-rotor current 4-6 x the rated
# running current, back to running current within ~0.1-0.2 s; the current sensor's RMS window.
INRUSH_LRA_RATIO = (4.0, 6.0)
INRUSH_TAU_S = (0.1, 0.2)
METER_WINDOW_S = 1.0


def draw(rng: np.random.Generator, running_a: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's start: the peak current above running (A) and its decay time (s)."""
    return (rng.uniform(*INRUSH_LRA_RATIO, n) - 1.0) * running_a, rng.uniform(*INRUSH_TAU_S, n)


def metered_current(
    on: np.ndarray,
    age_s: np.ndarray,
    running_a: np.ndarray,
    before_a: np.ndarray,
    excess_a: np.ndarray,
    tau_s: np.ndarray,
) -> np.ndarray:
    """The meter's RMS current over its last ``METER_WINDOW_S`` for units whose compressor
    started within it (``on`` and ``age_s`` since the start; elsewhere ``running_a``):
    ``before_a`` (fan and board) until the start, then the running current plus the locked-rotor
    excess ``x·exp(−s/τ)``, in closed form."""
    w = METER_WINDOW_S
    hit = on & (age_s > 0.0) & (age_s < w + 10.0 * tau_s)
    if not hit.any():
        return running_a
    a, s0 = age_s[hit], np.maximum(age_s[hit] - w, 0.0)
    i, xh, th = running_a[hit], excess_a[hit], tau_s[hit]
    square = (
        (w - (a - s0)) * before_a[hit] ** 2
        + i * i * (a - s0)
        + 2.0 * i * xh * th * (np.exp(-s0 / th) - np.exp(-a / th))
        + 0.5 * xh * xh * th * (np.exp(-2.0 * s0 / th) - np.exp(-2.0 * a / th))
    )
    out = running_a.copy()
    out[hit] = np.sqrt(square / w)
    return out
