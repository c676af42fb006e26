"""The device registry: what each device said about itself in its latest birth."""

from __future__ import annotations

from dataclasses import dataclass

from contract.protocol import Birth

UNKNOWN = "unknown"


@dataclass(slots=True)
class DeviceInfo:
    device: str
    product: str = UNKNOWN
    model: str = UNKNOWN
    batch: str = UNKNOWN
    serial: str = UNKNOWN
    firmware: str = UNKNOWN
    sample_period_s: float = 10.0
    online: bool = False
    born: bool = False  # a birth was seen (model/batch are known)
    first_ts: float | None = None  # event time of the first reading
    last_ts: float | None = None  # event time of the latest reading
    birth_ts: float | None = None  # the device's clock in its latest birth


class Registry:
    def __init__(self) -> None:
        self._devices: dict[str, DeviceInfo] = {}

    def get(self, device: str) -> DeviceInfo:
        info = self._devices.get(device)
        if info is None:
            info = self._devices[device] = DeviceInfo(device)
        return info

    def known(self, device: str) -> bool:
        info = self._devices.get(device)
        return info is not None and info.born

    def born(self, device: str) -> DeviceInfo | None:
        """The device's info if its birth was seen (:meth:`known`), else None."""
        info = self._devices.get(device)
        return info if info is not None and info.born else None

    def apply_birth(self, b: Birth) -> DeviceInfo:
        info = self.get(b.device)
        info.product, info.model, info.batch = b.product, b.model, b.batch
        info.serial, info.firmware, info.sample_period_s = b.serial, b.firmware, b.sample_period_s
        info.born = True
        info.birth_ts = b.ts
        return info

    def saw(self, device: str, first_ts: float, last_ts: float) -> None:
        info = self.get(device)
        if info.first_ts is None or first_ts < info.first_ts:
            info.first_ts = first_ts
        if info.last_ts is None or last_ts > info.last_ts:
            info.last_ts = last_ts

    def __iter__(self):  # noqa: ANN204
        return iter(self._devices.values())

    def __len__(self) -> int:
        return len(self._devices)
