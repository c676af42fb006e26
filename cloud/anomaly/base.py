"""What every detector consumes and produces.

A detector is a small object for one device: ``update(block)`` takes the next readings (in event
time, as numpy columns with NaN for "no value") and returns the findings they complete. It does
no I/O and never reads a clock: time comes from the readings. State must pickle, so a worker can
checkpoint it and another worker can resume it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class _Views(Mapping[str, np.ndarray]):
    """The columns of a (rows × fields) array by name, each a view made when asked for: a
    block from a message is mostly stacked whole (``batch.py``) and its columns are seldom read
    one by one, so making every view up front cost more than the reads."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: np.ndarray, index: dict[str, int]) -> None:
        self._values, self._index = values, index

    def __getitem__(self, name: str) -> np.ndarray:
        return self._values[:, self._index[name]]

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


_INDEX: dict[tuple[str, ...], tuple[dict[str, int], int]] = {}  # fields -> (columns, ts)


def _index(fields: tuple[str, ...]) -> tuple[dict[str, int], int]:
    """Where each column but ``ts`` is in a row of ``fields``, and where ``ts`` is."""
    found = _INDEX.get(fields)
    if found is None:
        if len(set(fields)) != len(fields) or "ts" not in fields:
            raise ValueError(f"fields must name ts once and no column twice: {fields!r}")
        if len(_INDEX) >= 1024:  # bounded whatever devices send
            _INDEX.clear()
        columns = {n: i for i, n in enumerate(fields) if n != "ts"}
        found = _INDEX[fields] = (columns, fields.index("ts"))
    return found


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
        """The block of a (rows × fields) float array, NaN for no value (kept, not copied):
        ``ts`` a view of it, the columns views made when read."""
        if values.ndim != 2 or values.shape[1] != len(fields):
            raise ValueError(f"a {values.shape} array for {len(fields)} fields")
        columns, ts = _index(fields)
        return cls(device, values[:, ts], _Views(values, columns), values, fields)

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
