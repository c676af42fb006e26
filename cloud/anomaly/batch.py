"""A batch: one block per device stacked into (blocks × rows) arrays, what the fleet-wide
detector columns (:mod:`cloud.anomaly.columns`) judge at once.

Blocks of unequal length are padded with NaN after their end; a column a block lacks is NaN
in its row (``has`` says which blocks had it). Blocks made from a message's (rows × fields)
array (``Block.values``, what the worker's decode gives) of the same fields and length — the
usual round of a fleet of one product — are stacked with one call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cloud.anomaly.base import Block


@dataclass(frozen=True, slots=True)
class Batch:
    """One block per device as (blocks × rows) arrays, each row padded with NaN after its block.

    ``cols`` has every column any block has (NaN where a block lacks it); ``has`` says which
    blocks had it.
    """

    blocks: Sequence[Block]
    ts: np.ndarray
    lengths: np.ndarray
    cols: Mapping[str, np.ndarray]
    has: Mapping[str, np.ndarray]

    @classmethod
    def of(cls, blocks: Sequence[Block]) -> Batch:
        whole = cls._of_arrays(blocks)
        if whole is not None:
            return whole
        lengths = np.fromiter((len(b) for b in blocks), dtype=np.intp, count=len(blocks))
        width = int(lengths.max()) if len(blocks) else 0
        names = list(dict.fromkeys(n for b in blocks for n in b.columns))
        even = bool(len(blocks)) and bool((lengths == width).all())
        has = {n: np.fromiter((n in b.columns for b in blocks), bool, len(blocks)) for n in names}

        def stack(arrays: list[np.ndarray | None]) -> np.ndarray:
            if even and all(a is not None for a in arrays):
                return np.array(arrays, dtype=float)
            out = np.full((len(arrays), width), np.nan)
            for i, a in enumerate(arrays):
                if a is not None:
                    out[i, : len(a)] = a
            return out

        ts = stack([b.ts for b in blocks])
        cols = {n: stack([b.columns.get(n) for b in blocks]) for n in names}
        return cls(blocks, ts, lengths, cols, has)

    @classmethod
    def _of_arrays(cls, blocks: Sequence[Block]) -> Batch | None:
        """The common case in one stacking call: every block made from a (rows × fields) array
        (``Block.values``) of the same fields and length. The (fields × blocks × rows) copy
        makes each column one C-ordered (blocks × rows) array, as the general path does."""
        if not blocks:
            return None
        first = blocks[0]
        fields, n = first.fields, len(first)
        if first.values is None or not all(
            b.values is not None and len(b) == n and b.fields == fields for b in blocks
        ):
            return None
        planes = np.empty((len(fields), len(blocks), n))
        np.stack([b.values for b in blocks], out=planes.transpose(1, 2, 0))  # one copy
        every = np.ones(len(blocks), dtype=bool)
        cols = {name: planes[i] for i, name in enumerate(fields) if name != "ts"}
        return cls(
            blocks,
            planes[fields.index("ts")],
            np.full(len(blocks), n, dtype=np.intp),
            cols,
            dict.fromkeys(cols, every),
        )
