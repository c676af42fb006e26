"""Safety events from the edge as findings, at most one per device and kind per ``hold_s``.

The edge raises an event each time one of its safety rules trips (``overcurrent``: compressor
current over its limit; ``overheat``). A unit with a failing compressor trips the rule again and
again — in the simulated ``week`` fleet about 50 times a day — and each event is kept (journal
and InfluxDB). As findings, one per ``hold_s`` of event time says the same to the ticketing: the
first event of a device and kind becomes a finding at once (a safety fault waits for nothing);
events within ``hold_s`` after it are counted, and the first event after that becomes the next
finding, carrying how many events it stands for and the worst value among them.

An event beyond its model's rated envelope (``envelope.py``: an overcurrent trip while the
outdoor air is hotter than the model is rated for, or the room's air hotter than the maximum
operating test's indoor side) makes no finding and is not counted into one;
:attr:`EventFindings.beyond` counts those by kind. The outdoor and return air temperatures an
event carries go into its finding's evidence (``outdoor_c``, ``return_c``).

State is a few numbers per (device, kind) and is not checkpointed: after a worker restart the
next event of a device is reported at once, which errs on the side of telling.

>>> ev = EventFindings(hold_s=3600)
>>> [ev.update("ac-1", "overcurrent", t, 11.0, 10.0) is not None for t in (0, 60, 3700)]
[True, False, True]
>>> f = ev.update("ac-1", "overcurrent", 7400, 12.0, 10.0)
>>> f.evidence["events"], f.evidence["max_value"], f.onset_ts
(1.0, 12.0, 7400.0)
>>> ev.update("ac-1", "overcurrent", 9000, 11.0, 10.0, "KFR-35GW", {"ambient_c": 46.0}) is None
True
>>> ev.beyond
{'overcurrent': 1}
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from cloud.anomaly.base import Finding
from cloud.anomaly.envelope import Envelope

_NONE: Mapping[str, object] = {}


class EventFindings:
    def __init__(self, hold_s: float = 3600.0, envelope: Envelope | None = None) -> None:
        self.hold_s = hold_s
        self.envelope = Envelope() if envelope is None else envelope
        self._reset()

    def _reset(self) -> None:
        # (device, kind) -> [last finding's ts, events since it, first such event's ts, worst value]
        self._held: dict[tuple[str, str], list[float]] = {}
        self.beyond: dict[str, int] = {}  # events beyond their model's envelope, by kind

    def update(
        self,
        device: str,
        kind: str,
        ts: float,
        value: float | None,
        limit: float | None,
        model: str | None = None,
        context: Mapping[str, object] = _NONE,
    ) -> Finding | None:
        """One event (``context``: its optional payload keys); the finding it makes, or None
        while it is held in a finding's window or lies beyond its model's envelope."""
        if self.envelope.beyond(kind, model, context) is not None:
            self.beyond[kind] = self.beyond.get(kind, 0) + 1
            return None
        ts, v = float(ts), math.nan if value is None else float(value)
        state = self._held.get((device, kind))
        if state is not None and ts < state[0] + self.hold_s:
            state[1] += 1
            state[2] = min(state[2], ts)
            state[3] = _worst(state[3], v)
            return None
        events, onset, worst = 1.0, ts, v
        if state is not None and state[1]:  # the held events go into this finding
            events, onset, worst = state[1] + 1, min(state[2], ts), _worst(state[3], v)
        self._held[(device, kind)] = [ts, 0.0, math.inf, math.nan]
        evidence = {
            "value": v,
            "limit": math.nan if limit is None else float(limit),
            "events": events,
            "max_value": worst,
        }
        for key, temperature in (("outdoor_c", self.envelope.outdoor(context)),
                                 ("return_c", self.envelope.indoor(context))):  # fmt: skip
            if temperature is not None:
                evidence[key] = temperature
        return Finding(device, kind, ts, onset, 1.0, evidence)


def _worst(a: float, b: float) -> float:
    """The larger, ignoring a missing (NaN) value."""
    if math.isnan(a):
        return b
    return a if math.isnan(b) else max(a, b)
