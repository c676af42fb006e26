"""``device_offline``: no message from a device for longer than allowed.

Silence is measured in event time against the worker's watermark (the newest reading it has
seen from any device), not against the wall clock: a replay of last month's data is not a fleet
of offline units, and when the worker itself is cut off from the broker the watermark stops too,
so the cloud's own outage is not blamed on the devices.

What is "longer than allowed" depends on how the device sends: one that sends a block an hour
is not offline after ten minutes. The watch learns each device's typical gap between messages
(event time of their last readings, a slow moving average) and allows ``gap_factor`` times that,
but never less than ``min_silence_s``. A device that speaks again clears the finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cloud.anomaly.base import Finding


@dataclass(slots=True)
class _Seen:
    last_ts: float
    gap: float | None = None
    offline_since: float | None = None


class OfflineWatch:
    """Fleet-level watch over the devices one worker serves.

    >>> w = OfflineWatch(min_silence_s=100, gap_factor=3)
    >>> for t in range(0, 500, 10):
    ...     _ = w.seen("a", float(t)); _ = w.seen("b", float(t))
    >>> w.seen("a", 800.0)
    []
    >>> [(f.device, f.onset_ts) for f in w.check()]
    [('b', 490.0)]
    >>> [(f.device, f.active) for f in w.seen("b", 810.0)]
    [('b', False)]
    """

    fault = "device_offline"

    def __init__(
        self, *, min_silence_s: float = 1800.0, gap_factor: float = 4.0, smoothing: float = 0.1
    ) -> None:
        self.min_silence_s = min_silence_s
        self.gap_factor = gap_factor
        self.smoothing = smoothing
        self._devices: dict[str, _Seen] = {}
        self.watermark = float("-inf")

    def seen(self, device: str, last_ts: float, span: float = 0.0) -> list[Finding]:
        """A message from ``device`` whose newest reading is at ``last_ts``; ``span`` is the time
        its readings cover (a block of an hour's readings means messages an hour apart, which
        is the first guess of the gap until real gaps are seen)."""
        if not math.isfinite(last_ts):  # no usable event time: it cannot move the watermark
            return []
        span = span if math.isfinite(span) else 0.0
        self.watermark = max(self.watermark, last_ts)
        s = self._devices.get(device)
        if s is None:
            self._devices[device] = _Seen(last_ts, span if span > 0 else None)
            return []
        out: list[Finding] = []
        if last_ts > s.last_ts:
            gap = last_ts - s.last_ts
            if s.offline_since is not None:
                out.append(
                    Finding(device, self.fault, last_ts, s.last_ts, 0.0, {"silence_s": gap}, False)
                )
                s.offline_since = None
            else:
                s.gap = gap if s.gap is None else s.gap + self.smoothing * (gap - s.gap)
            s.last_ts = last_ts
        return out

    def allowed(self, device: str) -> float:
        s = self._devices[device]
        return max(self.min_silence_s, self.gap_factor * (s.gap or 0.0))

    def check(self) -> list[Finding]:
        """Findings for devices silent for longer than allowed at the current watermark."""
        out = []
        for device, s in self._devices.items():
            silence = self.watermark - s.last_ts
            if s.offline_since is None and silence > self.allowed(device):
                s.offline_since = self.watermark
                out.append(
                    Finding(
                        device,
                        self.fault,
                        self.watermark,
                        s.last_ts,
                        min(1.0, silence / (2 * self.allowed(device))),
                        {"silence_s": silence, "allowed_s": self.allowed(device)},
                    )
                )
        return out
