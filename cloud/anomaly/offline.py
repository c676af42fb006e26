"""``device_offline``: no message from a device for longer than allowed.

What is "longer than allowed" depends on how the device sends: one that sends a block an hour
is not offline after ten minutes. The watch learns each device's typical gap between messages
(event time of their last readings, a slow moving average) and allows ``gap_factor`` times that,
but never less than ``min_silence_s``. A device that speaks again clears the finding.

Silence is judged on two clocks:

- **Event time**, the readings' own time. The fleet's present is a low quantile (``quantile``)
  of the devices' newest reading times, not the newest reading of all: one device whose clock
  runs years ahead cannot make the rest of the fleet look silent, and neither can a replay or
  a backfill in which some MQTT connections run hours of event time ahead of others (at tens of
  thousands of readings a second, one second of lag between connections is hours of data). A
  device is silent when the present has moved on by more than it is allowed since the device
  was last heard: since its newest reading, or since the present at which that message came in
  if it came in late — a device behind the others that keeps sending is behind, not silent
  (a connection that starts late, a publisher that stalls for a moment). The present is
  also capped at the worker's clock plus ``future_s``, so a fleet of clocks ahead cannot run it
  into the future. When the worker itself is cut off from the broker, nothing arrives, the
  present stands still, and the cloud's own outage is not blamed on the devices.
- **Arrival time**, the worker's clock, only while the stream is live: a current message (its
  newest reading within ``live_lag_s`` of its arrival) arrived within ``min_silence_s``. Then a
  device from which nothing has arrived for longer than allowed is silent too. This finds what
  the quantile cannot: many devices going silent at once (a region's power cut) hold the low
  quantile back.

A replay is judged in event time alone (its present is far behind the clock), so a replay of
last month's data is not a fleet of offline units; a unit that fell silent in that data is
still found, as long as fewer than ``quantile`` of the fleet fell silent with it.

- **Within the device's own stream**, on arrival: the fleet's present is the slowest
  connections' time, so in a replay whose connections run hours apart a unit on a fast one
  that was silent for two hours has spoken again long before the present reaches its silence.
  So a message is also read for silence in its own times: between its readings (rows are in
  time order, CONTRACTS.md §1; a unit switched off mid-block sends a block with a hole), and,
  when it is the device's next message by ``seq`` (nothing missing or reordered between),
  from the previous message's newest reading to its first. A silence longer than allowed
  there is an episode found late: an active finding for it and its clearing at once. A
  message out of order, or after a gap in ``seq``, says nothing of the silence before it.
  Only a message whose readings span more than allowed is searched inside, so a usual block
  costs one comparison. This reads the contract's periodic sampling (``sample_period_s`` in
  the birth) literally: a firmware that skipped readings while idle would read as silent.
  (``qloop eval replay``, three seeds: 4 of 12 two-hour outages found before this, 12 of 12
  with it, none falsely; BENCHMARKS.md, issue 15, S11.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from cloud.anomaly.base import Finding


@dataclass(slots=True)
class _Seen:
    last_ts: float
    arrived: float | None
    heard_at: float  # the fleet's present (as of the last check) when its latest message came
    gap: float | None = None
    offline_since: float | None = None
    only_born: bool = False  # known from its birth alone: no message with readings yet
    seq: int | None = None  # the highest of its messages' seqs, when the caller gave them


_last_ts = attrgetter("last_ts")


def _allowed(s: _Seen, floor: float, factor: float) -> float:
    """How long a device may be silent: ``factor`` times its usual gap, at least ``floor``
    (``max`` written out: :meth:`OfflineWatch.check` asks it for every device)."""
    gap = factor * (s.gap or 0.0)
    return gap if gap > floor else floor


class OfflineWatch:
    """Fleet-level watch over the devices one worker serves.

    A live stream (each message judged on arrival, the worker's clock at its event time):

    >>> w = OfflineWatch(min_silence_s=100, gap_factor=3)
    >>> for t in range(0, 500, 10):
    ...     _ = w.seen("a", float(t), arrived=t); _ = w.seen("b", float(t), arrived=t)
    >>> w.seen("a", 800.0, arrived=800.0)
    []
    >>> [(f.device, f.onset_ts) for f in w.check(now=800.0)]
    [('b', 490.0)]
    >>> [(f.device, f.active) for f in w.seen("b", 810.0, arrived=810.0)]
    [('b', False)]

    One device far ahead moves neither the present nor anyone's silence:

    >>> _ = w.seen("a", 1e12, arrived=820.0)
    >>> w.check(now=820.0), w.present(now=820.0)
    ([], 810.0)

    A replay, long after the fact, in event time alone: of 20 units one falls silent.

    >>> r = OfflineWatch(min_silence_s=100, gap_factor=3)
    >>> for t in range(0, 1000, 10):
    ...     for u in range(20):
    ...         if u != 7 or t < 500:
    ...             _ = r.seen(f"u{u}", float(t), arrived=1e9)
    >>> [(f.device, f.onset_ts) for f in r.check(now=1e9)]
    [('u7', 490.0)]
    """

    fault = "device_offline"

    def __init__(
        self,
        *,
        min_silence_s: float = 1800.0,
        gap_factor: float = 4.0,
        smoothing: float = 0.1,
        quantile: float = 0.1,
        future_s: float = 300.0,
        live_lag_s: float = 3600.0,
    ) -> None:
        self.min_silence_s = min_silence_s
        self.gap_factor = gap_factor
        self.smoothing = smoothing
        self.quantile = quantile
        self.future_s = future_s
        self.live_lag_s = live_lag_s
        self._devices: dict[str, _Seen] = {}
        self._live_arrival = -math.inf  # when the latest current message arrived
        self._present = -math.inf  # as of the last check

    def born(self, device: str, ts: float, arrived: float | None = None) -> None:
        """``device`` announced itself (its birth, stamped ``ts`` by its clock): it is part of
        the fleet from now on, so the present waits for it as for any other device — a
        connection whose devices have not sent their first block yet does not fall behind
        unseen — and it is silent if it never sends. A device already known is left as it is.
        """
        if device in self._devices or not math.isfinite(ts):
            return
        if arrived is not None:
            ts = min(ts, arrived + self.future_s)  # a clock ahead cannot hold the present up
        self._devices[device] = _Seen(ts, arrived, self._present, only_born=True)

    def seen(
        self,
        device: str,
        last_ts: float,
        span: float = 0.0,
        arrived: float | None = None,
        seq: int | None = None,
        times: np.ndarray | None = None,
    ) -> list[Finding]:
        """A message from ``device`` whose newest reading is at ``last_ts``, received at
        ``arrived`` on the worker's clock (None: judged in event time only); ``span`` is the
        time its readings cover (a block of an hour's readings means messages an hour apart,
        which is the first guess of the gap until real gaps are seen); ``seq``: the message's
        (None: the silence before it is not judged from the device's own stream); ``times``:
        its readings' times, in order (None: the silence inside it is not judged).

        >>> w = OfflineWatch(min_silence_s=100, gap_factor=3)
        >>> for t in range(10, 500, 10):
        ...     _ = w.seen("a", float(t), 10.0, arrived=1e9, seq=t // 10)
        >>> [(f.onset_ts, f.active) for f in w.seen("a", 900.0, 10.0, arrived=1e9, seq=50)]
        [(490.0, True), (490.0, False)]
        >>> w.seen("a", 1500.0, 10.0, arrived=1e9, seq=52)  # seq 51 missing: not judged
        []
        >>> hole = np.array([1510.0, 1520.0, 1800.0, 1810.0])  # off for 280 s inside a block
        >>> [(f.onset_ts, f.active) for f in w.seen("a", 1810.0, 300.0, 1e9, 53, hole)]
        [(1520.0, True), (1520.0, False)]
        """
        if not math.isfinite(last_ts):  # no usable event time: it cannot move the present
            return []
        live = arrived is not None and last_ts >= arrived - self.live_lag_s
        if live and arrived > self._live_arrival:  # max() written out: once per message
            self._live_arrival = arrived
        span = span if math.isfinite(span) else 0.0
        s = self._devices.get(device)
        if s is None:
            self._devices[device] = _Seen(
                last_ts, arrived, self._present, span if span > 0 else None, seq=seq
            )
            return []
        s.heard_at = self._present
        if arrived is not None:
            s.arrived = arrived
        out: list[Finding] = []
        following = seq is not None and s.seq is not None and seq == s.seq + 1
        if seq is not None and (s.seq is None or seq > s.seq):
            s.seq = seq
        if s.offline_since is None and not s.only_born:
            out += self._silence_within(device, s, last_ts - span if following else None, times)
        if s.only_born:  # its first readings: the gap's first guess is their span, as for a
            s.gap = span if span > 0 else None  # device first heard of now
        if s.offline_since is not None and (last_ts > s.last_ts or arrived is not None):
            # heard again; with nothing newer (a replayed or late block) it is not silent either
            silence = max(0.0, last_ts - s.last_ts)
            at = max(last_ts, s.last_ts)
            out.append(
                Finding(device, self.fault, at, s.last_ts, 0.0, {"silence_s": silence}, False)
            )
            s.offline_since = None
        elif last_ts > s.last_ts and not s.only_born and not out:  # an outage is no usual gap
            gap = last_ts - s.last_ts
            s.gap = gap if s.gap is None else s.gap + self.smoothing * (gap - s.gap)
        s.only_born = False
        if last_ts > s.last_ts:
            s.last_ts = last_ts
        return out

    def _silence_within(
        self, device: str, s: _Seen, first_ts: float | None, times: np.ndarray | None
    ) -> list[Finding]:
        """The longest silence in the device's own stream that a message shows: from ``s``'s
        newest reading to ``first_ts`` (the message's first, when it follows the last one), or
        between two of its readings ``times``. If longer than allowed it was found late, so it
        is given with its clearing; the usual gap is left as it was."""
        allowed = _allowed(s, self.min_silence_s, self.gap_factor)
        onset, silence = s.last_ts, -math.inf if first_ts is None else first_ts - s.last_ts
        if times is not None and len(times) > 1 and times[-1] - times[0] > allowed:
            steps = np.diff(times)
            k = int(np.argmax(steps))
            if steps[k] > silence:
                onset, silence = float(times[k]), float(steps[k])
        if not silence > allowed:
            return []
        evidence = {"silence_s": silence, "allowed_s": allowed, "found_on_arrival": 1.0}
        score = min(1.0, silence / (2 * allowed))
        return [
            Finding(device, self.fault, onset + allowed, onset, score, evidence),
            Finding(device, self.fault, onset + silence, onset, 0.0, {"silence_s": silence}, False),
        ]

    def allowed(self, device: str) -> float:
        return _allowed(self._devices[device], self.min_silence_s, self.gap_factor)

    def present(self, now: float | None = None) -> float:
        """The fleet's present in event time: the ``quantile`` of the devices' newest readings,
        at most ``now + future_s``."""
        if not self._devices:
            return -math.inf
        latest = np.fromiter(map(_last_ts, self._devices.values()), float, len(self._devices))
        p = float(np.quantile(latest, self.quantile, method="lower"))
        return p if now is None else min(p, now + self.future_s)

    def check(self, now: float | None = None) -> list[Finding]:
        """Findings for devices silent for longer than allowed, judged at ``now`` on the
        worker's clock (None: in event time only)."""
        present = self._present = self.present(now)
        live = now is not None and now - self._live_arrival <= self.min_silence_s
        floor, factor = self.min_silence_s, self.gap_factor
        out = []
        # every device, every call: the settings are read once, and max() is written out here
        # and in _allowed (``b if b > a else a`` is ``max(a, b)``)
        for device, s in self._devices.items():
            if s.offline_since is not None:
                continue
            allowed = _allowed(s, floor, factor)
            last, heard = s.last_ts, s.heard_at
            silence = present - (heard if heard > last else last)
            if live and s.arrived is not None and now is not None:
                since = now - s.arrived
                silence = since if since > silence else silence
            if silence > allowed:
                at = max(present, s.last_ts + allowed)
                s.offline_since = at
                out.append(
                    Finding(
                        device,
                        self.fault,
                        at,
                        s.last_ts,
                        min(1.0, silence / (2 * allowed)),
                        {"silence_s": silence, "allowed_s": allowed},
                    )
                )
        return out
