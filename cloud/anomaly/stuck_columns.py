"""``sensor_stuck``'s fleet-wide state as columns (see :mod:`cloud.anomaly.columns` for the idea).

:class:`StuckColumns` holds :class:`~cloud.anomaly.stuck.SensorStuck`'s per-field run state for
every device over the union of the devices' fields; a block in which some field's run may trip or
clear (the only blocks with findings), a field new to the device, or the end of learning goes
through the reference object instead — exported from the device's row, updated, written back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cloud.anomaly import stuck as sk
from cloud.anomaly.base import Finding
from cloud.anomaly.batch import Batch
from cloud.anomaly.stuck import SensorStuck


class StuckColumns:
    """The state of :class:`SensorStuck` for every device: one (state × field) slice a row, over
    the union of the fields the devices have (in the order first seen); each row knows which of
    them are its own (its ``_fields``, in its own order: a few distinct tuples, shared)."""

    def __init__(self, make: Callable[[], SensorStuck]) -> None:
        self.make = make
        self.proto = make()
        self._names: list[str] = []  # the fields of all rows
        self._index: dict[str, int] = {}
        self._tuples: list[tuple[str, ...]] = []  # distinct per-row field tuples
        self._tuple_id: dict[tuple[str, ...], int] = {}
        self._member = np.zeros((0, 0), dtype=bool)  # tuple id -> its fields among _names
        self._rows = 0
        self._st = np.empty((0, sk._STATE_ROWS, 0))
        self._meta = np.empty((0, 4))  # rows learned, learned, last ts, field tuple id
        self._scratch = make()
        self._intern(())

    def kind(self) -> type:
        return SensorStuck

    def _intern(self, fields: tuple[str, ...]) -> int:
        tid = self._tuple_id.get(fields)
        if tid is not None:
            return tid
        new = [n for n in fields if n not in self._index]
        for n in new:
            self._index[n] = len(self._names)
            self._names.append(n)
        if new:
            pad = np.full((*self._st.shape[:2], len(new)), np.nan)
            self._st = np.concatenate((self._st, pad), axis=2)
        member = np.zeros((len(self._tuples) + 1, len(self._names)), dtype=bool)
        member[:-1, : self._member.shape[1]] = self._member
        member[-1, [self._index[n] for n in fields]] = True
        self._member = member
        tid = self._tuple_id[fields] = len(self._tuples)
        self._tuples.append(fields)
        return tid

    def add(self) -> int:
        row = self._rows
        if row == len(self._st):
            extra = max(1024, row // 8)
            self._st = np.concatenate((self._st, np.full((extra, *self._st.shape[1:]), np.nan)))
            self._meta = np.concatenate((self._meta, np.zeros((extra, 4))))
        self._rows += 1
        self.load(row, self.proto)
        return row

    def load(self, row: int, det: SensorStuck) -> None:
        if type(det) is not SensorStuck:
            raise ValueError(f"a {type(det).__name__} where a SensorStuck was")
        tid = self._intern(tuple(det._fields))
        self._st[row] = np.nan
        self._st[row][:, [self._index[n] for n in det._fields]] = det._state
        self._meta[row] = (det._rows, det._learned, det._last_ts, tid)

    def save(self, row: int) -> tuple:
        """What a checkpoint keeps of ``row``: its fields, their state, its counters."""
        rows, learned, last_ts, tid = self._meta[row].tolist()
        fields = self._tuples[int(tid)]
        state = self._st[row][:, [self._index[n] for n in fields]]
        return fields, state, (rows, learned, last_ts)

    def restore(self, row: int, saved: tuple) -> None:
        fields, state, meta = saved
        if state.shape != (sk._STATE_ROWS, len(fields)) or len(meta) != 3:
            raise ValueError("a SensorStuck state of another shape")
        tid = self._intern(tuple(fields))
        self._st[row] = np.nan
        self._st[row][:, [self._index[n] for n in fields]] = state
        self._meta[row] = (*meta, tid)

    def export(self, row: int, into: SensorStuck | None = None) -> SensorStuck:
        det = self.make() if into is None else into
        rows, learned, last_ts, tid = self._meta[row].tolist()
        fields = self._tuples[int(tid)]
        det._rows, det._learned, det._last_ts, det._fields = (
            int(rows),
            bool(learned),
            last_ts,
            fields,
        )
        det._state = self._st[row][:, [self._index[n] for n in fields]]  # a copy
        return det

    def update_many(self, rows: Sequence[int], batch: Batch) -> list[list[Finding]]:
        """As :meth:`ShiftColumns.update_many`: fields whose run may trip or clear in the block,
        a field new to a device, the end of learning: the reference's, for that device."""
        out: list[list[Finding]] = [[] for _ in rows]
        row = np.asarray(rows, dtype=np.intp)
        ignore, seen = self.proto.ignore, {}
        names = np.empty(len(rows), dtype=np.intp)
        for i, b in enumerate(batch.blocks):
            key = tuple(b.columns)
            tid = seen.get(key)
            if tid is None:
                tid = seen[key] = self._intern(tuple(n for n in key if n not in ignore))
            names[i] = tid
        self._first_fields(row, names)
        meta = self._meta[row]
        learned, tid = meta[:, 1] != 0.0, meta[:, 3].astype(np.intp)
        member = self._member[tid]
        missing = (member & ~self._member[names]).any(axis=1)
        learning_ok = (names == tid) & (meta[:, 0] + batch.lengths < self.proto.learn_rows)
        usable = (batch.lengths > 0) & (names != 0) & np.where(learned, ~missing, learning_ok)
        fast = np.flatnonzero(usable)
        slow = set(np.flatnonzero(~usable).tolist())
        if len(fast):
            slow.update(self._fast(row[fast], fast, batch, member[fast], learned[fast]).tolist())
        for i in sorted(slow):
            det = self.export(int(row[i]), self._scratch)
            out[i] = det.update(batch.blocks[i])
            self.load(int(row[i]), det)
        return out

    def _first_fields(self, row: np.ndarray, names: np.ndarray) -> None:
        """A row without fields yet (a new device) takes its block's, as the reference's
        learning does: each a column of "nothing yet" (no repeat counted, no value, no run),
        so its first block is judged on the column path like the ones after it."""
        new = np.flatnonzero((self._meta[row, 3] == 0) & (names != 0))
        if not len(new):
            return
        r = row[new]
        st = self._st[r]
        st[:, sk._OTHERS] = np.where(self._member[names[new]], 0.0, st[:, sk._OTHERS])
        self._st[r] = st
        self._meta[r, 3] = names[new]

    def _fast(
        self,
        rows: np.ndarray,
        idx: np.ndarray,
        batch: Batch,
        member: np.ndarray,
        learned: np.ndarray,
    ) -> np.ndarray:
        """Judge the blocks ``idx`` whose fields all go on or jump in them (no finding); the
        others' positions are returned, their state untouched."""
        p = self.proto
        ts, n = batch.ts[idx], batch.lengths[idx]
        width = ts.shape[1]
        nan = np.full((len(idx), width), np.nan)
        cols = sk.quiet_off(batch.cols)  # a unit switched off: the reference's reading
        v = np.stack([cols[f][idx] if f in cols else nan for f in self._names], 1)
        st, meta = self._st[rows], self._meta[rows]
        at, pos = np.arange(len(idx)), np.arange(width)
        valid = (pos < n[:, None])[:, None, :]
        prev_ts = np.concatenate((meta[:, 2, None], ts[:, :-1]), axis=1)
        with np.errstate(invalid="ignore"):
            fresh = ~(ts - prev_ts <= p.max_gap_s)[:, None, :]
            prev = np.concatenate((st[:, sk._LAST, :, None], v[:, :, :-1]), axis=2)
            new = st.copy()
            # learning: count each field's repeats, follow its run
            same = (v == prev) & ~fresh & valid
            starts = np.where(same | ~valid, -np.inf, ts[:, None, :])
            starts[:, :, 0] = np.where(same[:, :, 0], st[:, sk._START], starts[:, :, 0])
            lrn = ~learned
            new[lrn, sk._OTHERS] += same[lrn].sum(axis=2)
            new[lrn, sk._START] = starts[lrn].max(axis=2)
            # judging (stuck.py's _judge, every device and field at once)
            change = ((v != prev) | fresh) & valid
            moved = change & np.isfinite(v) & member[:, :, None]
            others = (moved.sum(axis=1)[:, None, :] - moved) > 0
            last = np.where(change, pos, -1).max(axis=2)
            start, active = st[:, sk._START], st[:, sk._ACTIVE] != 0.0
            t_end = ts[at, n - 1][:, None]
            goes_on = (last < 0) & (active | (t_end - start < p.min_stuck_s))
            span = np.where(valid[:, 0], ts, -np.inf).max(axis=1)[:, None] - np.minimum(
                start, np.where(valid[:, 0], ts, np.inf).min(axis=1)[:, None]
            )
            jumps = (last >= 0) & ~active & (span < p.min_stuck_s)
            after = (others & (pos > last[:, :, None])).sum(axis=2)
            judged = learned[:, None] & member
            run_from = np.take_along_axis(ts, np.maximum(last, 0), axis=1)
            new[:, sk._OTHERS] = np.where(
                judged, np.where(goes_on, st[:, sk._OTHERS] + after, after), new[:, sk._OTHERS]
            )
            new[:, sk._ROWS] = np.where(
                judged,
                np.where(goes_on, st[:, sk._ROWS] + n[:, None], n[:, None] - 1 - last),
                new[:, sk._ROWS],
            )
            new[:, sk._START] = np.where(judged & jumps, run_from, new[:, sk._START])
        new[:, sk._LAST] = v[at, :, n - 1]
        slow = (judged & ~(goes_on | jumps)).any(axis=1)
        go = ~slow
        keep = member[go][:, None, :]
        self._st[rows[go]] = np.where(keep, new[go], st[go])
        meta[:, 0] += np.where(learned, 0, n)
        meta[:, 2] = ts[at, n - 1]
        self._meta[rows[go]] = meta[go]
        return idx[slow]
