"""Which detectors watch which device, fed in event-time order, with checkpointable state.

Each device gets fresh detector objects for its product class on first sight (or its checkpoint
back): the product's domain detectors, plus (``generic=True``, the default) a
:class:`~cloud.anomaly.univariate.UnivariateAnomaly` for the numeric fields that the product's
``covered`` fields do not include — every field of a product class with no domain detectors, but
for an air conditioner only fields outside its contract (a new firmware's extra sensor).

Order. Detectors need event-time order; messages may come late and out of order (store and
forward: after an outage the edge sends live blocks before its backlog). The bank puts them back
in order by ``seq`` (one counter per device over telemetry and events): a block after a gap in
the seqs waits in a small per-device reorder buffer until the gap fills — events fill their seq
through :meth:`DetectorBank.skip` — and the waiting blocks are then fed in order. A gap that does
not fill (a message the edge dropped, or one that was dead-lettered) is given up once
``reorder_messages`` blocks or ``reorder_s`` of event time are waiting. A block that still starts
before the last reading the detectors have seen (it came after its gap was given up) is stored by
the worker but not fed, and counted in ``late_blocks``: the detectors' windows have moved on and
feeding the past would corrupt their state.

Batches. :meth:`DetectorBank.feed` and :meth:`DetectorBank.fill` put blocks in order without
judging them; :meth:`DetectorBank.flush` judges everything fed since, each detector kind once per
round over the devices' blocks (round k: every device's k-th block), so a device's blocks are
judged in order and a micro-batch of many devices costs a few numpy calls per detector instead of
a dozen per block. :meth:`DetectorBank.update` and :meth:`DetectorBank.skip` are feed-and-flush
for one message.

Memory. The bank holds every tracked device's state, so memory per device is what limits a
worker's fleet. Each product class's detectors keep their state as columns
(:mod:`cloud.anomaly.columns`): arrays with one row per device, a dense index from device to row,
for the baseline-shift detectors and ``sensor_stuck``; one small ``__slots__`` object per
device for the generic detector (:mod:`cloud.anomaly.compact`). A checkpoint is the device's
row of each detector kind's columns, a few small arrays (:data:`ROWS_FORMAT`), so a device's
state still moves alone when its partition moves; a checkpoint of the per-device detector objects
written before the columns restores too. One written in another format, or holding other
detectors than the product's, is refused by :meth:`DetectorBank.restore` with a ``ValueError``
naming the device, rather than restored half-right (the worker then relearns that device).
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from cloud.anomaly.base import Block, Detector, Finding
from cloud.anomaly.columns import Batch, ShiftColumns, columns_for
from cloud.anomaly.cooling import CoolingDecline
from cloud.anomaly.level import NoiseRise, VibrationRise
from cloud.anomaly.peers import Learned
from cloud.anomaly.shift import BaselineShift
from cloud.anomaly.stuck import SensorStuck
from cloud.anomaly.univariate import UnivariateAnomaly
from contract.protocol import AIR_CONDITIONER_FIELDS

DetectorFactory = Callable[[], Detector]

DEFAULT_DETECTORS: Mapping[str, Sequence[DetectorFactory]] = {
    "air_conditioner": (CoolingDecline, NoiseRise, VibrationRise, SensorStuck),
}

# Fields the product's domain detectors (and the edge's safety rules) already judge; the generic
# detector stays off them (it would only add false findings and memory).
COVERED_FIELDS: Mapping[str, frozenset[str]] = {
    # the air_conditioner fields of CONTRACTS.md §1
    "air_conditioner": frozenset(AIR_CONDITIONER_FIELDS[1:]),
}


@dataclass(slots=True)
class _DeviceState:
    """A device's checkpoint before the columns: its detectors as the reference objects, and its
    order state (still restored)."""

    detectors: list[Detector]
    last_ts: float = float("-inf")
    dirty: bool = field(default=False)
    next_seq: int | None = None  # the seq that comes next in order; None = not known yet
    pending: dict[int, Block | None] = field(default_factory=dict)  # None: an event's seq
    stuck: tuple[str, ...] = ()  # fields a sensor_stuck finding currently stands on


ROWS_FORMAT = "qloop-detector-rows-1"


@dataclass(slots=True)
class _DeviceRows:
    """A device's checkpoint: its row of each detector kind's columns (``save``/``restore`` of
    :mod:`cloud.anomaly.columns`: a few arrays each), and its order state."""

    format: str
    kinds: tuple[str, ...]  # the detector classes' names, in the product's order
    rows: tuple
    last_ts: float
    next_seq: int | None
    pending: dict[int, Block | None]
    stuck: tuple[str, ...]


@dataclass(slots=True)
class _Device:
    """A tracked device: its row in its group's columns, and the order it is fed in."""

    device: str
    group: _Group
    row: int
    last_ts: float = float("-inf")  # newest reading fed (judged, or queued to be)
    judged_ts: float = float("-inf")  # newest reading the detectors have judged
    dirty: bool = False
    next_seq: int | None = None  # the seq that comes next in order; None = not known yet
    # blocks waiting for a gap to fill (None: an event's seq); None while nothing waits
    pending: dict[int, Block | None] | None = None
    stuck: tuple[str, ...] = ()  # fields a sensor_stuck finding currently stands on


class _Group:
    """The detector columns of one product class (one row per device of it)."""

    def __init__(self, makers: Sequence[DetectorFactory]) -> None:
        self.columns = [columns_for(make) for make in makers]
        self.kinds = tuple(c.kind() for c in self.columns)
        self.rows = 0
        self.devices: list[str] = []  # row -> device

    def add(self, device: str) -> int:
        rows = [c.add() for c in self.columns]
        assert all(r == self.rows for r in rows)
        self.rows += 1
        self.devices.append(device)
        return self.rows - 1


def _names(group: _Group) -> tuple[str, ...]:
    """The group's detector kinds by name, as a checkpoint records them."""
    return tuple(k.__name__ for k in group.kinds)


def _without(block: Block, fields: tuple[str, ...]) -> Block:
    """``block`` with ``fields`` set to NaN (no value)."""
    return Block(
        block.device,
        block.ts,
        {k: np.full(len(v), np.nan) if k in fields else v for k, v in block.columns.items()},
    )


class DetectorBank:
    def __init__(
        self,
        factories: Mapping[str, Sequence[DetectorFactory]] | None = None,
        *,
        generic: bool = True,
        covered: Mapping[str, frozenset[str]] | None = None,
        reorder_messages: int = 16,
        reorder_s: float = 2 * 3600.0,
    ) -> None:
        self.factories = DEFAULT_DETECTORS if factories is None else factories
        self.generic = generic
        self.covered = COVERED_FIELDS if covered is None else covered
        self.reorder_messages = reorder_messages
        self.reorder_s = reorder_s
        self._devices: dict[str, _Device] = {}
        self._groups: dict[str, _Group] = {}
        self._queue: list[tuple[_Device, Block]] = []  # fed in order, not judged yet
        self.late_blocks = 0  # came too late to be fed: stored, not judged
        self.reordered_blocks = 0  # came out of order and were put back in order

    def _group(self, product: str) -> _Group:
        key = product if product in self.factories or product in self.covered else ""
        group = self._groups.get(key)
        if group is None:
            makers = list(self.factories.get(key, ()))
            if self.generic:
                exclude = self.covered.get(key, frozenset())
                makers.append(functools.partial(UnivariateAnomaly, exclude=exclude))
            group = self._groups[key] = _Group(makers)
        return group

    def makers(self, product: str) -> list[DetectorFactory]:
        """The detector kinds a unit of ``product`` gets, as factories of the reference
        objects (for comparing the bank with them)."""
        return [c.make for c in self._group(product).columns]

    def _state(self, device: str, product: str) -> _Device:
        st = self._devices.get(device)
        if st is None:
            group = self._group(product)
            st = self._devices[device] = _Device(device, group, group.add(device))
        return st

    def update(self, product: str, block: Block, seq: int | None = None) -> list[Finding]:
        """Feed a telemetry block (message ``seq``, if known); the findings it completes."""
        self.feed(product, block, seq)
        return self.flush()

    def skip(self, device: str, product: str, seq: int) -> list[Finding]:
        """Message ``seq`` of ``device`` carried no readings (an event): it fills its gap."""
        self.fill(device, product, seq)
        return self.flush()

    def feed(self, product: str, block: Block, seq: int | None = None) -> None:
        """As :meth:`update`, but the detectors judge the block at the next :meth:`flush`."""
        st = self._state(block.device, product)
        if seq is None:
            self._feed(st, block)
        else:
            self._arrive(st, seq, block)

    def fill(self, device: str, product: str, seq: int) -> None:
        """As :meth:`skip`, judged at the next :meth:`flush`."""
        self._arrive(self._state(device, product), seq, None)

    def _arrive(self, st: _Device, seq: int, block: Block | None) -> None:
        if st.next_seq is None:
            st.next_seq = seq
        if seq < st.next_seq:  # its gap was given up: feed it if it is still in order
            self._feed(st, block)
            return
        st.dirty = True
        if seq == st.next_seq and not st.pending:  # in order, nothing waiting: the usual case
            self._feed(st, block)
            st.next_seq += 1
            return
        pending = st.pending = st.pending or {}
        pending[seq] = block
        self._drain(st, pending, seq)
        waiting = [b for b in pending.values() if b is not None and len(b)]
        if waiting:
            span = max(b.ts[-1] for b in waiting) - min(b.ts[0] for b in waiting)
            if len(waiting) > self.reorder_messages or span > self.reorder_s:
                st.next_seq = min(pending)  # the gap will not fill in time: go on without it
                self._drain(st, pending, seq)
        st.pending = pending or None

    def _drain(self, st: _Device, pending: dict[int, Block | None], arrived: int) -> None:
        """Feed the waiting blocks that are next in order."""
        while st.next_seq is not None and st.next_seq in pending:
            block = pending.pop(st.next_seq)
            if block is not None and st.next_seq != arrived:
                self.reordered_blocks += 1
            self._feed(st, block)
            st.next_seq += 1

    def _feed(self, st: _Device, block: Block | None) -> None:
        if block is None or len(block) == 0:
            return
        if block.ts[0] < st.last_ts:
            self.late_blocks += 1
            return
        st.last_ts = float(block.ts[-1])
        st.dirty = True
        self._queue.append((st, block))

    def flush(self) -> list[Finding]:
        """Judge every block fed since the last flush: each detector kind once per round over
        the devices' blocks (a device's blocks in the order they were fed, one per round);
        returns the findings, a device's in the order its blocks came."""
        queue, self._queue = self._queue, []
        rounds: list[list[tuple[_Device, Block]]] = []
        depth: dict[str, int] = {}
        for st, block in queue:
            k = depth.get(st.device, 0)
            depth[st.device] = k + 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append((st, block))
        out: list[Finding] = []
        for items in rounds:
            by_group: dict[int, list[tuple[_Device, Block]]] = {}
            for item in items:
                by_group.setdefault(id(item[0].group), []).append(item)
            for group_items in by_group.values():
                out.extend(self._judge(group_items))
        return out

    def _judge(self, items: list[tuple[_Device, Block]]) -> list[Finding]:
        group = items[0][0].group
        rows = [st.row for st, _ in items]
        # A stuck sensor's values are not measurements: the other detectors see them as missing
        # (a frozen supply-air sensor would otherwise look like a change of ΔT).
        raw = Batch.of([b for _, b in items])
        judged = raw
        if any(st.stuck for st, _ in items):
            judged = Batch.of([_without(b, st.stuck) if st.stuck else b for st, b in items])
        found: list[list[Finding]] = [[] for _ in items]
        for kind, columns in zip(group.kinds, group.columns, strict=True):
            batch = raw if kind.fault == SensorStuck.fault else judged
            for mine, more in zip(found, columns.update_many(rows, batch), strict=True):
                mine.extend(more)
        out: list[Finding] = []
        for (st, block), fs in zip(items, found, strict=True):
            st.judged_ts = float(block.ts[-1])
            for f in fs:
                if f.fault == SensorStuck.fault:
                    fields = {k for k in f.evidence if k in block.columns}
                    st.stuck = tuple(
                        sorted(set(st.stuck) | fields if f.active else set(st.stuck) - fields)
                    )
            out.extend(fs)
        return out

    def detectors(self, device: str) -> list[Detector]:
        """The device's detectors as the reference objects (empty if the device was never seen;
        a copy of its state: updating them changes nothing here)."""
        st = self._devices.get(device)
        return [] if st is None else [c.export(st.row) for c in st.group.columns]

    def last_ts(self, device: str) -> float:
        """Event time of the newest reading the device's detectors have judged (-inf: none
        yet); blocks fed but not flushed yet do not count."""
        st = self._devices.get(device)
        return float("-inf") if st is None else st.judged_ts

    def snapshot(self, device: str) -> bytes | None:
        """The device's checkpoint: its row of each detector kind's columns, as arrays (judge
        what was fed first: :meth:`flush`)."""
        st = self._devices.get(device)
        if st is None:
            return None
        saved = _DeviceRows(
            ROWS_FORMAT,
            _names(st.group),
            tuple(c.save(st.row) for c in st.group.columns),
            st.last_ts,
            st.next_seq,
            st.pending or {},
            st.stuck,
        )
        return pickle.dumps(saved, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, device: str, state: bytes) -> None:
        """Resume ``device`` from its checkpoint: rows of columns (:meth:`snapshot`), or the
        per-device detector objects of the format before them. A checkpoint written before a
        detector was added to the device's product restores the detectors it holds, and the
        added one starts learning (an upgrade does not make every unit relearn). Anything else
        — a detector the product no longer has, another format — is a ``ValueError`` naming the
        device (the caller relearns it)."""
        try:
            st = pickle.loads(state)  # noqa: S301 - our own checkpoint
        except ValueError as e:  # a detector refused its state (a checkpoint of another format)
            raise ValueError(f"checkpoint of device {device!r}: {e}") from e
        if isinstance(st, _DeviceRows):
            if st.format != ROWS_FORMAT:
                raise ValueError(
                    f"checkpoint of device {device!r} is in format {st.format!r}, not"
                    f" {ROWS_FORMAT!r} (written by an older or newer qloop?): cannot restore it"
                )
            names, saved, load = st.kinds, st.rows, "restore"
        elif isinstance(st, _DeviceState):
            names = tuple(type(d).__name__ for d in st.detectors)
            saved, load = st.detectors, "load"
        else:
            raise ValueError(f"checkpoint of device {device!r} is a {type(st).__name__}")
        found = self._restoring(names)
        if found is None:
            raise ValueError(
                f"checkpoint of device {device!r} holds other detectors ({', '.join(names)})"
            )
        group, targets = found
        old = self._devices.get(device)
        row = old.row if old is not None and old.group is group else group.add(device)
        try:
            for columns, one in zip(targets, saved, strict=True):
                getattr(columns, load)(row, one)
        except (ValueError, AttributeError, TypeError) as e:
            raise ValueError(f"checkpoint of device {device!r}: {e}") from e
        for columns in group.columns:
            if isinstance(columns, ShiftColumns):
                columns.rejoin_prior(row, device)
        # Messages after the checkpoint were acknowledged before a crash and will not come
        # again, so do not wait for them: go on from what was waiting, or from what comes next.
        next_seq = min(st.pending) if st.pending else None
        self._devices[device] = _Device(
            device,
            group,
            row,
            st.last_ts,
            st.last_ts,
            True,
            next_seq,
            st.pending or None,
            st.stuck,
        )

    def _restoring(self, names: tuple[str, ...]) -> tuple[_Group, list] | None:
        """The group a checkpoint of detectors ``names`` restores into, and the column each saved
        detector goes to: the group with the same detectors, in order; else one that has gained
        detectors since, each saved one to its column by name (names unique on both sides)."""
        groups = [self._group(p) for p in [*self.factories, ""]]
        for g in groups:
            if _names(g) == names:
                return g, list(g.columns)
        for g in groups:
            by_name = dict(zip(_names(g), g.columns, strict=True))
            unique = len(by_name) == len(g.columns) and len(set(names)) == len(names)
            if unique and by_name.keys() >= set(names):
                return g, [by_name[n] for n in names]
        return None

    def shifts(self, span: int = 8) -> dict[str, tuple[list[str], np.ndarray]]:
        """Per baseline-shift fault, the devices past learning and how far each one's last
        ``span`` judged windows sit from its own baseline, in the fault's direction and in units
        of its learned window spread (``ShiftColumns.recent_shift``): the input of the pooled
        batch test (``pooled.py``). Read-only."""
        out: dict[str, tuple[list[str], np.ndarray]] = {}
        for group, kind, columns in self._shift_columns():
            rows, z = columns.recent_shift(span)
            names, keep = self._current(group, rows)
            devices, values = out.get(kind.fault, ([], np.empty(0)))
            out[kind.fault] = (devices + names, np.concatenate((values, z[keep])))
        return out

    def learned(self, provisional_windows: int | None = None) -> dict[str, Learned]:
        """Per baseline-shift fault whose detector takes part in the peer level test
        (``BaselineShift.peer_levels``), the devices past learning with their baselines, and
        with ``provisional_windows`` those still learning with that many learning windows, at a
        provisional fit (``ShiftColumns.learned``): the input of that test (``peers.py``).
        Read-only."""
        parts: dict[str, list[tuple[list[str], tuple[np.ndarray, ...]]]] = {}
        protos: dict[str, BaselineShift] = {}
        for group, kind, columns in self._shift_columns():
            if not kind.peer_levels:
                continue
            rows, *arrays = columns.learned(provisional_windows)
            names, keep = self._current(group, rows)
            parts.setdefault(kind.fault, []).append((names, tuple(a[keep] for a in arrays)))
            protos.setdefault(kind.fault, columns.proto)
        out = {}
        for fault, pieces in parts.items():
            p = protos[fault]
            arrays = [x for _, x in pieces]
            beta, mean, varied, learning = (np.concatenate(a) for a in zip(*arrays, strict=True))
            devices = [d for names, _ in pieces for d in names]
            out[fault] = Learned(devices, beta, mean, varied, p.direction, p.min_shift,
                                 p.min_shift_fraction, learning)  # fmt: skip
        return out

    def finish_learning(self, device: str, fault: str) -> bool:
        """End the device's learning of ``fault`` now (``ShiftColumns.finish_learning``: the
        peer level test named it short of its peers while it learned); False if the device,
        the fault's detector or enough learning windows are not there, or it has learned. The
        device is checkpointed with it."""
        return self._change_row(device, fault, lambda c, row: c.finish_learning(row, device))

    def move_baseline(self, device: str, fault: str, delta: float) -> bool:
        """Move the device's learned baseline of ``fault`` by ``delta`` (the peer level test's
        verdict, ``ShiftColumns.move_baseline``); False if the device, the fault's detector or
        a fitted baseline is not there. The device is checkpointed with the move."""
        return self._change_row(device, fault, lambda c, row: c.move_baseline(row, delta))

    def _change_row(
        self, device: str, fault: str, change: Callable[[ShiftColumns, int], bool]
    ) -> bool:
        """``change`` the device's row of ``fault``'s baseline-shift columns; whether it did
        (then the device is checkpointed with it)."""
        st = self._devices.get(device)
        if st is None:
            return False
        for kind, columns in zip(st.group.kinds, st.group.columns, strict=True):
            if isinstance(columns, ShiftColumns) and kind.fault == fault:
                changed = change(columns, st.row)
                st.dirty |= changed
                return changed
        return False

    def _shift_columns(self) -> Iterator[tuple[_Group, type, ShiftColumns]]:
        for group in self._groups.values():
            for kind, columns in zip(group.kinds, group.columns, strict=True):
                if isinstance(columns, ShiftColumns):
                    yield group, kind, columns

    def _current(self, group: _Group, rows: np.ndarray) -> tuple[list[str], list[int]]:
        """The devices of ``rows`` and the positions of those whose latest row it is (a device
        restored into another row leaves its old row behind, which is skipped)."""
        names, keep = [], []
        for i, r in enumerate(rows.tolist()):
            d = group.devices[r]
            st = self._devices.get(d)
            if st is not None and st.group is group and st.row == r:
                names.append(d)
                keep.append(i)
        return names, keep

    def dirty(self) -> list[str]:
        """Devices whose state changed since the last call (to checkpoint them)."""
        out = [d for d, st in self._devices.items() if st.dirty]
        for d in out:
            self._devices[d].dirty = False
        return out

    def __contains__(self, device: str) -> bool:
        return device in self._devices

    def __len__(self) -> int:
        return len(self._devices)
