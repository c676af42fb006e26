"""``noise_rise`` and ``vibration_rise``: a mechanical signal rises against the unit's own
baseline at the same fan speed and compressor state.

Fan bearings wear and panels work loose gradually or in one step; both show as a sustained rise
of the level at like operating conditions. The baseline is quadratic in fan speed (so it serves
any number of fan steps) plus a compressor term.

Only a running unit's readings count: with its fan stopped (``fan_speed`` 0, a unit its user
switched off) the microphone hears the room and the accelerometer nothing, no operating noise or
vibration of the unit. Learned with the running rows they bent the fan-speed curve, and windows
that mixed the two states read as rises: on units run by their users' hours (``evenings``, seed
22000, S16) 8 false noise and 6 false vibration findings in 765 healthy device-days.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cloud.anomaly.base import Block
from cloud.anomaly.shift import BaselineShift, Carry, RowsMany

_EMPTY = np.array([], dtype=float)


class LevelRise(BaselineShift):
    """A sustained rise of ``field`` at like fan speed and compressor state."""

    direction = 1
    n_features = 4
    field = ""

    __slots__ = ()

    @property
    def needs(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.field, "fan_speed")

    def _rows(self, block: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y, fan, comp = block.get(self.field), block.get("fan_speed"), block.get("compressor_on")
        if y is None or fan is None:
            return _EMPTY, _EMPTY.reshape(0, 4), _EMPTY
        comp = np.zeros_like(y) if comp is None else np.where(np.isnan(comp), 0.0, comp)
        ok = np.isfinite(y) & (fan > 0)  # a stopped fan: the unit is off (NaN compares False)
        f = fan[ok]
        x = np.column_stack([np.ones(ok.sum()), f, f * f, comp[ok]])
        return block.ts[ok], x, y[ok]

    def _rows_many(
        self,
        ts: np.ndarray,
        cols: Mapping[str, np.ndarray],
        lengths: np.ndarray,
        carry: Carry,
        learning: np.ndarray,
    ) -> RowsMany:
        """:meth:`_rows` of many blocks at once, as (blocks × rows) arrays padded with NaN."""
        y, fan, comp = cols[self.field], cols["fan_speed"], cols.get("compressor_on")
        comp = np.zeros_like(y) if comp is None else np.where(np.isnan(comp), 0.0, comp)
        ok = np.isfinite(y) & (fan > 0)
        x = np.stack([np.ones_like(y), fan, fan * fan, comp], axis=-1)
        return ok, x, y, carry


class NoiseRise(LevelRise):
    """Noise at least ``min_rise_db`` (default 2 dB, a clearly audible change) above baseline."""

    fault = "noise_rise"
    field = "noise_db"

    __slots__ = ("min_rise_db",)
    _config = BaselineShift._config | {"min_rise_db"}

    def __init__(self, *, min_rise_db: float = 2.0, **kw: float) -> None:
        kw.setdefault("min_shift", min_rise_db)
        kw.setdefault("sigma_floor", 0.1)
        super().__init__(**kw)
        self.min_rise_db = min_rise_db


class VibrationRise(LevelRise):
    """Vibration at least ``min_rise`` (default 30 %) above baseline."""

    fault = "vibration_rise"
    field = "vibration_g"

    __slots__ = ("min_rise",)
    _config = BaselineShift._config | {"min_rise"}

    def __init__(self, *, min_rise: float = 0.3, **kw: float) -> None:
        kw.setdefault("min_shift_fraction", min_rise)
        kw.setdefault("sigma_floor_fraction", 0.02)
        super().__init__(**kw)
        self.min_rise = min_rise
