"""Which detectors watch which device, fed in event-time order, with checkpointable state.

Each device gets fresh detector objects for its product class on first sight (or its checkpoint
back). Blocks are fed in event-time order; a block that starts before the last reading the
detectors have seen (a late replay) is stored by the worker but not fed, and counted as late:
the detectors' windows have moved on and feeding the past would corrupt their state.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from cloud.anomaly.base import Block, Detector, Finding
from cloud.anomaly.cooling import CoolingDecline
from cloud.anomaly.level import NoiseRise, VibrationRise
from cloud.anomaly.stuck import SensorStuck

DetectorFactory = Callable[[], Detector]

DEFAULT_DETECTORS: Mapping[str, Sequence[DetectorFactory]] = {
    "air_conditioner": (CoolingDecline, NoiseRise, VibrationRise, SensorStuck),
}


@dataclass(slots=True)
class _DeviceState:
    detectors: list[Detector]
    last_ts: float = float("-inf")
    dirty: bool = field(default=False)


class DetectorBank:
    def __init__(self, factories: Mapping[str, Sequence[DetectorFactory]] | None = None) -> None:
        self.factories = DEFAULT_DETECTORS if factories is None else factories
        self._devices: dict[str, _DeviceState] = {}
        self.late_blocks = 0

    def _state(self, device: str, product: str) -> _DeviceState:
        st = self._devices.get(device)
        if st is None:
            st = self._devices[device] = _DeviceState(
                [make() for make in self.factories.get(product, ())]
            )
        return st

    def update(self, product: str, block: Block) -> list[Finding]:
        if len(block) == 0:
            return []
        st = self._state(block.device, product)
        if block.ts[0] < st.last_ts:
            self.late_blocks += 1
            return []
        st.last_ts = float(block.ts[-1])
        st.dirty = True
        out: list[Finding] = []
        for d in st.detectors:
            out.extend(d.update(block))
        return out

    def snapshot(self, device: str) -> bytes | None:
        st = self._devices.get(device)
        return None if st is None else pickle.dumps(st, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, device: str, state: bytes) -> None:
        self._devices[device] = pickle.loads(state)  # noqa: S301 - our own checkpoint

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
