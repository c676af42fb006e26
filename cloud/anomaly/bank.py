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

Memory. The bank holds every tracked device's state, so memory per device is what limits a
worker's fleet; the detectors keep their state in ``__slots__`` with configuration shared across
devices (:mod:`cloud.anomaly.compact`). A checkpoint written in another state format is refused
by :meth:`DetectorBank.restore` with a ``ValueError`` naming the device, rather than restored
half-right.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from cloud.anomaly.base import Block, Detector, Finding
from cloud.anomaly.cooling import CoolingDecline
from cloud.anomaly.level import NoiseRise, VibrationRise
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
    detectors: list[Detector]
    last_ts: float = float("-inf")
    dirty: bool = field(default=False)
    next_seq: int | None = None  # the seq that comes next in order; None = not known yet
    pending: dict[int, Block | None] = field(default_factory=dict)  # None: an event's seq
    stuck: tuple[str, ...] = ()  # fields a sensor_stuck finding currently stands on


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
        self._devices: dict[str, _DeviceState] = {}
        self.late_blocks = 0  # came too late to be fed: stored, not judged
        self.reordered_blocks = 0  # came out of order and were put back in order

    def _make(self, product: str) -> list[Detector]:
        dets: list[Detector] = [make() for make in self.factories.get(product, ())]
        if self.generic:
            dets.append(UnivariateAnomaly(exclude=self.covered.get(product, frozenset())))
        return dets

    def _state(self, device: str, product: str) -> _DeviceState:
        st = self._devices.get(device)
        if st is None:
            st = self._devices[device] = _DeviceState(self._make(product))
        return st

    def update(self, product: str, block: Block, seq: int | None = None) -> list[Finding]:
        """Feed a telemetry block (message ``seq``, if known); the findings it completes."""
        st = self._state(block.device, product)
        if seq is None:
            return self._feed(st, block)
        return self._arrive(st, seq, block)

    def skip(self, device: str, product: str, seq: int) -> list[Finding]:
        """Message ``seq`` of ``device`` carried no readings (an event): it fills its gap."""
        return self._arrive(self._state(device, product), seq, None)

    def _arrive(self, st: _DeviceState, seq: int, block: Block | None) -> list[Finding]:
        if st.next_seq is None:
            st.next_seq = seq
        if seq < st.next_seq:  # its gap was given up: feed it if it is still in order
            return self._feed(st, block)
        st.pending[seq] = block
        st.dirty = True
        out = self._drain(st, seq)
        waiting = [b for b in st.pending.values() if b is not None and len(b)]
        if not waiting:
            return out
        span = max(b.ts[-1] for b in waiting) - min(b.ts[0] for b in waiting)
        if len(waiting) > self.reorder_messages or span > self.reorder_s:
            st.next_seq = min(st.pending)  # the gap will not fill in time: go on without it
            out.extend(self._drain(st, seq))
        return out

    def _drain(self, st: _DeviceState, arrived: int) -> list[Finding]:
        """Feed the waiting blocks that are next in order."""
        out: list[Finding] = []
        while st.next_seq is not None and st.next_seq in st.pending:
            block = st.pending.pop(st.next_seq)
            if block is not None and st.next_seq != arrived:
                self.reordered_blocks += 1
            out.extend(self._feed(st, block))
            st.next_seq += 1
        return out

    def _feed(self, st: _DeviceState, block: Block | None) -> list[Finding]:
        if block is None or len(block) == 0:
            return []
        if block.ts[0] < st.last_ts:
            self.late_blocks += 1
            return []
        st.last_ts = float(block.ts[-1])
        st.dirty = True
        # A stuck sensor's values are not measurements: the other detectors see them as missing
        # (a frozen supply-air sensor would otherwise look like a change of ΔT).
        judged = _without(block, st.stuck) if st.stuck else block
        out: list[Finding] = []
        for d in st.detectors:
            out.extend(d.update(block if d.fault == SensorStuck.fault else judged))
        for f in out:
            if f.fault == SensorStuck.fault:
                fields = {k for k in f.evidence if k in block.columns}
                st.stuck = tuple(
                    sorted(set(st.stuck) | fields if f.active else set(st.stuck) - fields)
                )
        return out

    def detectors(self, device: str) -> list[Detector]:
        """The device's detector objects (empty if the device was never seen)."""
        st = self._devices.get(device)
        return [] if st is None else list(st.detectors)

    def last_ts(self, device: str) -> float:
        """Event time of the newest reading fed to the device's detectors (-inf: none yet)."""
        st = self._devices.get(device)
        return float("-inf") if st is None else st.last_ts

    def snapshot(self, device: str) -> bytes | None:
        st = self._devices.get(device)
        return None if st is None else pickle.dumps(st, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, device: str, state: bytes) -> None:
        try:
            st = pickle.loads(state)  # noqa: S301 - our own checkpoint
        except ValueError as e:  # a detector refused its state (a checkpoint of another format)
            raise ValueError(f"checkpoint of device {device!r}: {e}") from e
        if not isinstance(st, _DeviceState):
            raise ValueError(f"checkpoint of device {device!r} is a {type(st).__name__}")
        # Messages after the checkpoint were acknowledged before a crash and will not come
        # again, so do not wait for them: go on from what was waiting, or from what comes next.
        st.next_seq = min(st.pending) if st.pending else None
        self._devices[device] = st

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
