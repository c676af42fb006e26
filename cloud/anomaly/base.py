"""What every detector consumes and produces.

A detector is a small object for one device: ``update(block)`` takes the next readings (in event
time, as numpy columns with NaN for "no value") and returns the findings they complete. It does
no I/O and never reads a clock: time comes from the readings. State must pickle, so a worker can
checkpoint it and another worker can resume it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class Block:
    """Consecutive readings of one device: ``ts`` and one float array per field (NaN = null).

    A block made from a message's (rows × fields) array keeps it as ``values``, with its
    ``fields``: ``ts`` and the columns are views of it, and a batch of such blocks is stacked
    with one call (``cloud.anomaly.batch``).
    """

    device: str
    ts: np.ndarray
    columns: Mapping[str, np.ndarray]
    values: np.ndarray | None = None
    fields: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.ts)

    def get(self, name: str) -> np.ndarray | None:
        return self.columns.get(name)

    def __getstate__(self) -> tuple:
        # a checkpoint's waiting blocks: the array alone when ``ts`` and the columns are its views
        if self.values is None:
            return self.device, self.ts, self.columns
        return self.device, self.values, self.fields

    def __setstate__(self, state: tuple) -> None:
        device, data, names = state
        if isinstance(names, tuple):  # (device, values, fields)
            b = Block.from_array(device, names, data)
            device, ts, columns, values, fields = b.device, b.ts, b.columns, b.values, b.fields
        else:  # (device, ts, columns), also a checkpoint written before ``values``
            ts, columns, values, fields = data, names, None, ()
        for name, x in zip(self.__slots__, (device, ts, columns, values, fields), strict=True):
            object.__setattr__(self, name, x)

    @classmethod
    def from_array(cls, device: str, fields: tuple[str, ...], values: np.ndarray) -> Block:
        """The block of a (rows × fields) float array, NaN for no value (kept, not copied)."""
        cols = dict(zip(fields, values.T, strict=True))  # column views, made in one C loop
        return cls(device, cols.pop("ts"), cols, values, fields)

    @classmethod
    def from_rows(
        cls, device: str, fields: tuple[str, ...] | list[str], rows: list[tuple] | tuple[tuple, ...]
    ) -> Block:
        arr = np.array(rows, dtype=float).reshape(len(rows), len(fields))  # None → nan
        return cls.from_array(device, tuple(fields), arr)


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's conclusion about one device.

    ``ts`` is the event time at which the evidence became sufficient, ``onset_ts`` the detector's
    estimate of when the fault began, ``score`` its confidence in 0..1, and ``evidence`` the
    numbers behind it (baseline, current level, magnitude...). ``active`` is False for a
    finding that says the fault indicator is back at the unit's baseline (used to verify fixes).
    """

    device: str
    fault: str
    ts: float
    onset_ts: float
    score: float
    evidence: Mapping[str, float] = field(default_factory=dict)
    active: bool = True


class Detector(Protocol):
    fault: str

    def update(self, block: Block) -> list[Finding]: ...
