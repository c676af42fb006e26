"""``sensor_stuck``: a sensor repeats one value while the unit's other signals move.

A live analog sensor with noise practically never returns the same value twice in a row for
long; a frozen one (failed ADC, cut wire read as a held register, firmware bug) does. Fields
that legitimately hold still (setpoints, on/off states, fan steps — and any field that repeated
itself most of the time while the detector was learning) are not judged. A run counts as stuck
when it lasts ``min_stuck_s`` and, during it, the unit's other judged signals changed in at least
``min_others_moving`` of the readings: the unit was working, only this sensor stood still.
The finding clears when the field moves again. A time gap of more than ``max_gap_s`` between
readings (an outage) ends every run: a value equal to the one before the gap is not a repeat.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from cloud.anomaly.base import Block, Finding
from cloud.anomaly.compact import Compact, shared

DISCRETE_FIELDS = frozenset({"setpoint_c", "compressor_on", "fan_speed"})


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
        "_repeats",
        "_judged",
        "_last",
        "_run_start",
        "_moving",
        "_active",
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
        self._rows = 0
        self._repeats: dict[str, int] = {}
        self._judged: tuple[str, ...] | None = None  # fixed after learning
        self._last: dict[str, float] = {}
        self._run_start: dict[str, float] = {}
        self._moving: dict[str, list[int]] = {}  # [others moved, rows] during the current run
        self._active: dict[str, None] = {}  # fields found stuck (a dict: smaller than a set)
        self._last_ts = -np.inf

    def __setstate__(self, state: object) -> None:
        super().__setstate__(state)
        # field names: one shared string each, not a copy per device
        for d in (self._repeats, self._last, self._run_start, self._moving, self._active):
            items = list(d.items())
            d.clear()
            d.update((sys.intern(k), v) for k, v in items)
        if self._judged is not None:
            self._judged = shared(tuple(sys.intern(n) for n in self._judged))

    def update(self, block: Block) -> list[Finding]:
        names = [n for n in block.columns if n not in self.ignore]
        if len(block) == 0 or not names:
            return []
        cols = {n: block.columns[n] for n in names}
        # a reading after a gap (an outage) is not a repeat: equal values hours apart say
        # nothing about a frozen sensor, and the gap must not count as stuck time
        prev_ts = np.concatenate(([self._last_ts], block.ts[:-1]))
        fresh = ~(block.ts - prev_ts <= self.max_gap_s)
        self._last_ts = float(block.ts[-1])
        same = {n: self._same_as_previous(n, v) & ~fresh for n, v in cols.items()}
        if self._judged is None:
            for n in names:
                self._repeats[n] = self._repeats.get(n, 0) + int(same[n].sum())
            self._rows += len(block)
            if self._rows >= self.learn_rows:
                self._judged = tuple(
                    n for n in names if self._repeats[n] <= self.max_repeat_share * self._rows
                )
                self._repeats.clear()  # only learning counts repeats
            for n, v in cols.items():
                self._carry(n, block.ts, v, same[n])
            return []
        out: list[Finding] = []
        judged = [n for n in self._judged if n in cols]
        changed = np.array([~same[n] & np.isfinite(cols[n]) for n in judged])
        for k, n in enumerate(judged):
            others = np.delete(changed, k, axis=0).any(axis=0) if len(judged) > 1 else None
            out.extend(self._judge(block.device, n, block.ts, cols[n], same[n], others))
        for n in names:
            if n not in judged:
                self._carry(n, block.ts, cols[n], same[n])
        return out

    def _same_as_previous(self, name: str, v: np.ndarray) -> np.ndarray:
        prev = np.concatenate(([self._last.get(name, math.nan)], v[:-1]))
        return v == prev  # NaN never equals: a missing value is not a stuck one

    def _carry(self, name: str, ts: np.ndarray, v: np.ndarray, same: np.ndarray) -> None:
        starts = np.where(same, -np.inf, ts)
        if same[0] and name in self._run_start:
            starts[0] = self._run_start[name]
        self._run_start[name] = float(np.maximum.accumulate(starts)[-1])
        self._last[name] = float(v[-1])

    def _judge(
        self,
        device: str,
        name: str,
        ts: np.ndarray,
        v: np.ndarray,
        same: np.ndarray,
        others: np.ndarray | None,
    ) -> list[Finding]:
        out: list[Finding] = []
        mov = self._moving.setdefault(name, [0, 0])
        run_start = self._run_start.get(name, float(ts[0]))
        changes = np.flatnonzero(~same)
        if len(changes) == 0 and (name in self._active or ts[-1] - run_start < self.min_stuck_s):
            # the common case, vectorised: the run goes on and cannot trip in this block
            mov[1] += len(ts)
            mov[0] += 0 if others is None else int(others.sum())
            self._last[name] = float(v[-1])
            return out
        runs = np.diff(np.concatenate(([run_start], ts[changes], [ts[-1]])))
        if name not in self._active and len(changes) and runs.max() < self.min_stuck_s:
            # runs inside this block are all too short: jump to the last change
            i = int(changes[-1])
            mov[1] = len(ts) - i - 1
            mov[0] = 0 if others is None else int(others[i + 1 :].sum())
            self._run_start[name] = float(ts[i])
            self._last[name] = float(v[-1])
            return out
        for i in range(len(ts)):  # short blocks; the per-row state machine is the clear way
            if not same[i]:
                if name in self._active and math.isfinite(v[i]):
                    del self._active[name]
                    out.append(
                        Finding(
                            device,
                            self.fault,
                            float(ts[i]),
                            run_start,
                            0.0,
                            {name: float(v[i])},
                            False,
                        )
                    )
                run_start, mov[0], mov[1] = float(ts[i]), 0, 0
                continue
            mov[1] += 1
            if others is not None and others[i]:
                mov[0] += 1
            if (
                name not in self._active
                and ts[i] - run_start >= self.min_stuck_s
                and mov[0] >= self.min_others_moving * mov[1]
            ):
                self._active[name] = None
                stuck_s = float(ts[i] - run_start)
                out.append(
                    Finding(
                        device,
                        self.fault,
                        float(ts[i]),
                        run_start,
                        min(1.0, stuck_s / (2 * self.min_stuck_s)),
                        {name: float(v[i]), "stuck_s": stuck_s, "others_moving": mov[0] / mov[1]},
                        True,
                    )
                )
        self._run_start[name] = run_start
        self._last[name] = float(v[-1])
        return out
