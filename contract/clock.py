"""Time, injected: logic takes a clock instead of reading the system's."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

# The earliest time a qloop record can truly carry: no unit was built, and no fix made, before
# 2000-01-01T00:00:00Z; an earlier stamp (0, a negative time) is a clock that was never set.
EARLIEST_TS = 946_684_800.0


class Clock(Protocol):
    def time(self) -> float:
        """Unix seconds (wall time)."""
        ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


def utcnow() -> datetime:
    """The wall clock as an aware UTC datetime (the default for services that take a clock)."""
    return datetime.now(UTC)
