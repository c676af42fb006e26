"""``sensor_stuck``: a sensor repeats one value while the unit's other signals move.

A live analog sensor with noise practically never returns the same value twice in a row for
long; a frozen one (failed ADC, cut wire read as a held register, firmware bug) does. Fields
that legitimately hold still (setpoints, on/off states, fan steps — and any field that repeated
itself most of the time while the detector was learning) are not judged. A run counts as stuck
when it lasts ``min_stuck_s`` and, during it, the unit's other judged signals changed in at least
``min_others_moving`` of the readings: the unit was working, only this sensor stood still.
The finding clears when the field moves again. A time gap of more than ``max_gap_s`` between
readings (an outage) ends every run: a value equal to the one before the gap is not a repeat.

**A unit switched off** (``fan_speed`` 0) drives none of its own signals: its current is the
control board's, its vibration nothing (a reading clipped at 0, held for hours), its noise the
room's. Those fields (``OFF_QUIET``) are read as missing in such rows, neither a repeat nor a
move, while the room's temperatures go on being judged. Units run by their users' hours gave 6
false findings on ``vibration_g`` at 0 in 1,819 healthy device-days before (S16).

A block is judged as one (fields × rows) array: blocks are short (60 rows), so a few numpy
operations over all fields cost less than many over each field. Only a field whose run may trip
or clear in the block goes through the row-by-row state machine. The per-field state is one
small array with a column per field (see ``_LAST`` ... ``_ACTIVE``), not a dict per quantity.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping

import numpy as np

from cloud.anomaly.base import Block, Finding
from cloud.anomaly.compact import Compact, shared

DISCRETE_FIELDS = frozenset({"setpoint_c", "compressor_on", "fan_speed"})
# what a unit drives itself, read as missing while it is switched off (``fan_speed`` 0)
OFF_QUIET = frozenset({"current_a", "vibration_g", "noise_db"})

# rows of SensorStuck._state (one column per field of SensorStuck._fields)
_LAST = 0  # the field's last value (NaN: none yet)
_START = 1  # start of its current run of repeats (NaN: none yet)
_OTHERS = 2  # rows of the current run in which other fields moved; while learning: repeats
_ROWS = 3  # rows of the current run
_ACTIVE = 4  # 1.0 while a finding stands on the field
_STATE_ROWS = 5


def quiet_off(cols: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    """``cols`` with the ``OFF_QUIET`` fields missing (NaN) in the rows where the unit is
    switched off (``fan_speed`` 0); ``cols`` itself when it has no such row. Elementwise: one
    block's columns, or a batch's (blocks × rows) ones (``stuck_columns.py``)."""
    fan = cols.get("fan_speed")
    if fan is None:
        return cols
    off = fan == 0
    if not off.any():
        return cols
    return {n: np.where(off, np.nan, c) if n in OFF_QUIET else c for n, c in cols.items()}


class SensorStuck(Compact):
    """Detect a frozen sensor.

    >>> import numpy as np
    >>> from cloud.anomaly.base import Block
    >>> d = SensorStuck(learn_rows=10, min_stuck_s=50)
    >>> ts = np.arange(200.0)
    >>> moving, frozen = np.sin(ts), np.where(ts < 140, np.cos(ts), 0.25)
    >>> d.update(Block("d", ts[:100], {"a": moving[:100], "b": frozen[:100]}))  # learning
    []
    >>> [(f.onset_ts, f.evidence["b"]) for f in
    ...  d.update(Block("d", ts[100:], {"a": moving[100:], "b": frozen[100:]}))]
    [(140.0, 0.25)]
    """

    fault = "sensor_stuck"

    __slots__ = (
        "min_stuck_s",
        "min_others_moving",
        "learn_rows",
        "max_repeat_share",
        "ignore",
        "max_gap_s",
        "_rows",
        "_learned",
        "_fields",
        "_state",
        "_last_ts",
    )
    _config = frozenset(__slots__[:6])  # the constructor arguments

    def __init__(
        self,
        *,
        min_stuck_s: float = 2 * 3600.0,
        min_others_moving: float = 0.5,
        learn_rows: int = 500,
        max_repeat_share: float = 0.5,
        ignore: frozenset[str] = DISCRETE_FIELDS,
        max_gap_s: float = 900.0,
    ) -> None:
        self.min_stuck_s = min_stuck_s
        self.min_others_moving = min_others_moving
        self.learn_rows = learn_rows
        self.max_repeat_share = max_repeat_share
        self.ignore = ignore
        self.max_gap_s = max_gap_s
        self._reset()

    def _reset(self) -> None:
        self._rows = 0  # rows seen while learning
        self._learned = False
        # while learning: every field seen; then the judged ones (fixed)
        self._fields: tuple[str, ...] = ()
        self._state = np.empty((_STATE_ROWS, 0))  # a column per field of _fields
        self._last_ts = -np.inf

    def __setstate__(self, state: object) -> None:
        super().__setstate__(state)
        # field names: one shared tuple of shared strings, not a copy per device
        self._fields = shared(tuple(sys.intern(n) for n in self._fields))

    def update(self, block: Block) -> list[Finding]:
        names = [n for n in block.columns if n not in self.ignore]
        if len(block) == 0 or not names:
            return []
        ts = block.ts
        # a reading after a gap (an outage) is not a repeat: equal values hours apart say
        # nothing about a frozen sensor, and the gap must not count as stuck time
        prev_ts = np.concatenate(([self._last_ts], ts[:-1]))
        fresh = ~(ts - prev_ts <= self.max_gap_s)
        self._last_ts = float(ts[-1])
        if not self._learned:
            self._learn(block, names, fresh)
            return []
        fields = self._fields
        cols = quiet_off(block.columns)
        present = [n for n in fields if n in cols]
        if not present:
            return []
        whole = len(present) == len(fields)
        sel = None if whole else [k for k, n in enumerate(fields) if n in cols]
        state = self._state if whole else self._state[:, sel]
        out = self._judge(block.device, present, ts, fresh, cols, state)
        if not whole:
            self._state[:, sel] = state
        return out

    def _learn(self, block: Block, names: list[str], fresh: np.ndarray) -> None:
        """Count each field's repeats and follow its runs; at the end, choose the judged fields."""
        fields = self._fields
        if tuple(names) != fields:
            new = [n for n in names if n not in fields]
            if new:  # a field not seen before: a column of "nothing yet"
                add = np.full((_STATE_ROWS, len(new)), math.nan)
                add[_OTHERS] = 0.0
                self._state = np.concatenate((self._state, add), axis=1)
                self._fields = fields = fields + tuple(sys.intern(n) for n in new)
            sel: list[int] | None = [fields.index(n) for n in names]
        else:
            sel = None
        state = self._state if sel is None else self._state[:, sel]
        cols = quiet_off(block.columns)
        v = np.array([cols[n] for n in names])
        same = (v == np.concatenate((state[_LAST, :, None], v[:, :-1]), axis=1)) & ~fresh
        state[_OTHERS] += same.sum(axis=1)
        # the run start: the latest reading that was not a repeat (or the one before the block)
        starts = np.where(same, -np.inf, block.ts)
        starts[:, 0] = np.where(same[:, 0], state[_START], starts[:, 0])
        state[_START] = starts.max(axis=1)
        state[_LAST] = v[:, -1]
        if sel is not None:
            self._state[:, sel] = state
        self._rows += len(block)
        if self._rows >= self.learn_rows:
            limit = self.max_repeat_share * self._rows
            judged = [k for k in (sel or range(len(names))) if self._state[_OTHERS, k] <= limit]
            self._state = self._state[:, judged]  # a copy: owns its data
            self._state[_OTHERS:] = 0.0
            self._fields = shared(tuple(fields[k] for k in judged))
            self._learned = True

    def _judge(
        self,
        device: str,
        names: list[str],
        ts: np.ndarray,
        fresh: np.ndarray,
        cols: Mapping[str, np.ndarray],
        state: np.ndarray,
    ) -> list[Finding]:
        """Judge the block's ``names`` (fields × rows at once); ``state`` holds their columns."""
        v = np.array([cols[n] for n in names])
        n = v.shape[1]
        change = (v != np.concatenate((state[_LAST, :, None], v[:, :-1]), axis=1)) | fresh
        moved = change & np.isfinite(v)
        others = (moved.sum(axis=0) - moved) > 0  # another judged field moved in that row
        rows = np.arange(n)
        last = np.where(change, rows, -1).max(axis=1)  # the last change (-1: none)
        start, active = state[_START], state[_ACTIVE] != 0.0
        # the common cases, vectorised: no change and the run cannot trip in this block (or
        # already has), or changes but every run in the block too short: jump to the last change
        goes_on = (last < 0) & (active | (ts[-1] - start < self.min_stuck_s))
        jumps = (last >= 0) & ~active
        # Every run in the block is a difference of two of the times {start, ts}, so none is
        # longer than their span (rounding is monotonic): when that is short, no run needs
        # measuring. (NaN times fail the test and are measured.)
        jumps_unsure = jumps & ~(ts.max() - np.minimum(start, ts.min()) < self.min_stuck_s)
        if jumps_unsure.any():
            jumps &= self._longest_run(ts, change, start) < self.min_stuck_s
        slow = np.flatnonzero(~(goes_on | jumps))
        old = state[:, slow].copy() if len(slow) else None  # for the row-by-row fields
        after = (others & (rows > last[:, None])).sum(axis=1)  # others moving since last change
        state[_OTHERS] = np.where(goes_on, state[_OTHERS] + after, after)
        state[_ROWS] = np.where(goes_on, state[_ROWS] + n, n - 1 - last)
        state[_START] = np.where(jumps, ts[last], start)
        state[_LAST] = v[:, -1]
        out: list[Finding] = []
        if old is None:
            return out
        t = ts.tolist()
        # the remaining fields (a run may trip or clear): row by row from their state before
        # the block (``old``)
        for j, k in enumerate(slow.tolist()):
            out.extend(
                self._rows_of(
                    device,
                    names[k],
                    t,
                    v[k].tolist(),
                    change[k].tolist(),
                    others[k].tolist(),
                    old[:, j],
                    state[:, k],
                )
            )
        return out

    @staticmethod
    def _longest_run(ts: np.ndarray, change: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Per field: the longest run in the block, from each change (or the run start) to
        the next change, and from the last one to the block's end."""
        last_change = np.maximum.accumulate(np.where(change, np.arange(len(ts)), -1), axis=1)
        run_from = np.where(last_change >= 0, ts[last_change], start[:, None])
        end_from = run_from[:, -1]
        run_from = np.concatenate((start[:, None], run_from[:, :-1]), axis=1)
        return np.maximum(np.where(change, ts - run_from, -np.inf).max(axis=1), ts[-1] - end_from)

    def _rows_of(
        self,
        device: str,
        name: str,
        ts: list[float],
        v: list[float],
        change: list[bool],
        others: list[bool],
        old: np.ndarray,
        new: np.ndarray,
    ) -> list[Finding]:
        """The per-row state machine of one field over one block: from ``old`` into ``new``."""
        out: list[Finding] = []
        run_start = float(old[_START])
        moving, rows = int(old[_OTHERS]), int(old[_ROWS])
        active = bool(old[_ACTIVE])
        for i in range(len(ts)):
            if change[i]:
                if active and math.isfinite(v[i]):
                    active = False
                    out.append(
                        Finding(device, self.fault, ts[i], run_start, 0.0, {name: v[i]}, False)
                    )
                run_start, moving, rows = ts[i], 0, 0
                continue
            rows += 1
            if others[i]:
                moving += 1
            if (
                not active
                and ts[i] - run_start >= self.min_stuck_s
                and moving >= self.min_others_moving * rows
            ):
                active = True
                stuck_s = ts[i] - run_start
                out.append(
                    Finding(
                        device,
                        self.fault,
                        ts[i],
                        run_start,
                        min(1.0, stuck_s / (2 * self.min_stuck_s)),
                        {name: v[i], "stuck_s": stuck_s, "others_moving": moving / rows},
                        True,
                    )
                )
        new[_START], new[_OTHERS], new[_ROWS] = run_start, moving, rows
        new[_ACTIVE] = float(active)
        return out
