"""``clock_skew``: a unit whose readings are stamped at times that cannot be true.

Event time is the readings' own ``ts`` (CONTRACTS.md §1), so a unit with a wrong clock would
otherwise be believed: a block stamped ten years ahead would be its "newest reading", its
last-seen time in the ticket database and its time in the field for the batch statistics. A
message is not judged as if true when any of its times is not finite, lies before
``earliest_ts`` (2000-01-01: no unit was built before it, and 0 or a negative time is a clock
that was never set), or lies more than ``ahead_s`` past the worker's clock (the only clock the
cloud can trust; ``ahead_s`` leaves room for ordinary drift). The caller keeps such a message as
a dead letter with :meth:`ClockCheck.reason` and lets it move nothing.

The unit's clock problem is itself a finding for the firmware team: the first refused message
of an episode gives an active ``clock_skew`` finding, the next accepted one clears it. A
finding is stamped with the unit's last event time that was believed (the caller's ``at``), so
that it moves no last-seen time either; the worker's clock goes into its evidence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from cloud.anomaly.base import Finding
from contract.clock import EARLIEST_TS


class ClockCheck:
    """Judges the times of each message against the worker's clock.

    >>> c = ClockCheck(ahead_s=600)
    >>> c.reason([1.7e9], now=1.7e9) is None
    True
    >>> c.reason([1.7e9, 2.0e9], now=1.7e9)
    'clock skew: a reading is stamped 3472 days ahead of the worker clock (tolerance 600 s)'
    >>> [(f.device, f.fault, f.ts, f.active) for f in c.refused("ac-1", [2.0e9], 1.7e9, at=5.0)]
    [('ac-1', 'clock_skew', 5.0, True)]
    >>> c.refused("ac-1", [2.0e9], now=1.7e9 + 10, at=5.0)  # one finding per episode
    []
    >>> [(f.fault, f.active, f.evidence["refused"]) for f in c.accepted("ac-1", at=6.0)]
    [('clock_skew', False, 2)]
    """

    fault = "clock_skew"

    def __init__(self, *, ahead_s: float = 600.0, earliest_ts: float = EARLIEST_TS) -> None:
        self.ahead_s = ahead_s
        self.earliest_ts = earliest_ts
        self._skewed: dict[str, int] = {}  # device -> messages refused in its current episode

    def reason(self, times: Iterable[float], now: float) -> str | None:
        """Why these times cannot be true at ``now``, or None when they can."""
        times = times if isinstance(times, list | tuple) else list(times)
        if not all(map(math.isfinite, times)):  # C-level passes over the times, no Python loop
            bad = next(ts for ts in times if not math.isfinite(ts))
            return f"clock skew: a reading is stamped {bad} (not a time)"
        latest, earliest = max(times, default=-math.inf), min(times, default=math.inf)
        if earliest < self.earliest_ts:
            return f"clock skew: a reading is stamped {earliest:.0f}, before 2000 (clock not set)"
        if latest > now + self.ahead_s:
            ahead = latest - now
            size = f"{ahead / 86400:.0f} days" if ahead >= 86400 else f"{ahead:.0f} s"
            return (
                f"clock skew: a reading is stamped {size} ahead of the worker clock"
                f" (tolerance {self.ahead_s:.0f} s)"
            )
        return None

    def believable(self, earliest: float, latest: float, now: float) -> bool:
        """Whether times whose minimum is ``earliest`` and maximum ``latest`` can be true at
        ``now``: the same answer as ``reason(times, now) is None``, from the two bounds alone,
        when they are taken as numpy takes them (NaN if any time is NaN, so that every
        comparison below is False; -inf or inf if any time is one). Bounds given as NaN for
        times that may well be true make this say False, and the caller asks :meth:`reason`.

        >>> c = ClockCheck(ahead_s=600)
        >>> c.believable(1.7e9, 1.7e9 + 60, now=1.7e9), c.believable(1.7e9, 2.0e9, now=1.7e9)
        (True, False)
        >>> c.believable(math.nan, math.nan, now=1.7e9), c.believable(1.7e9, math.inf, 1.7e9)
        (False, False)
        """
        ok = self.earliest_ts <= earliest and latest <= now + self.ahead_s
        return ok and -math.inf < earliest and latest < math.inf  # whatever the two settings

    def refused(self, device: str, times: Iterable[float], now: float, at: float) -> list[Finding]:
        """A message of ``device`` was refused for its times at ``now`` on the worker's clock:
        the episode's finding, once, stamped at ``at``."""
        count = self._skewed.get(device, 0) + 1
        self._skewed[device] = count
        if count > 1:
            return []
        finite = [t for t in times if math.isfinite(t)]
        worst = max(finite, key=lambda t: abs(t - now)) if finite else math.nan
        evidence = {"skew_s": worst - now, "worker_ts": now}
        return [Finding(device, self.fault, at, at, 1.0, evidence)]

    def accepted(self, device: str, at: float) -> list[Finding]:
        """A message of ``device`` whose newest reading is at ``at`` was accepted: it clears an
        open episode (the finding counts the messages refused in it)."""
        refused = self._skewed.pop(device, 0)
        if not refused:
            return []
        return [Finding(device, self.fault, at, at, 0.0, {"refused": refused}, False)]
