"""Which (device, seq) messages were already seen: the cloud's definition of "the same message".

Per device: every seq up to ``floor`` was seen, plus a small set above it (messages that arrived
ahead of a gap). The set folds into the floor as gaps fill. A gap that never fills (the edge
dropped messages when its buffer overflowed) is given up once ``max_ahead`` messages are waiting
above it, so memory stays bounded; the durable store's (device, seq) key still catches a late
copy after that.

:attr:`SeqTracker.missing` is how many seqs between the first and the newest one seen never
came: the messages lost on the way (dropped by a full edge buffer or by a broker's queue
limit), which an operator can check instead of assume.
"""

from __future__ import annotations

_NONE_AHEAD: frozenset[int] = frozenset()


class SeqTracker:
    """The seqs one device's messages have had.

    >>> t = SeqTracker()
    >>> [t.add(s) for s in (5, 6, 9, 6, 8)]
    [True, True, True, False, True]
    >>> t.missing  # 7 has not come (yet)
    1
    """

    __slots__ = ("floor", "ahead", "max_ahead", "first", "count")

    def __init__(self, max_ahead: int = 4096) -> None:
        self.first: int | None = None  # the first seq seen: this tracker's view starts there
        self.count = 0  # distinct seqs seen
        self.floor = -1
        # a set only while messages wait above a gap: an empty set per device costs 216 B
        self.ahead: set[int] | frozenset[int] = _NONE_AHEAD
        self.max_ahead = max_ahead

    def add(self, seq: int) -> bool:
        """Record ``seq``; True when it is new."""
        if seq <= self.floor or seq in self.ahead:
            return False
        self.count += 1
        self.first = seq if self.first is None else min(self.first, seq)
        if seq == self.floor + 1:
            self.floor = seq
            self._fold()
        else:
            if not isinstance(self.ahead, set):
                self.ahead = set()
            self.ahead.add(seq)
            if len(self.ahead) > self.max_ahead:
                lowest = min(self.ahead)
                self.ahead.discard(lowest)
                self.floor = lowest
                self._fold()
        return True

    def _fold(self) -> None:
        """Move the floor up over the waiting seqs that now follow it."""
        while self.floor + 1 in self.ahead:
            self.floor += 1
            self.ahead.discard(self.floor)  # type: ignore[union-attr] - non-empty: a set
        if not self.ahead:
            self.ahead = _NONE_AHEAD

    @property
    def missing(self) -> int:
        """Seqs between the first and the newest seen that have not come."""
        if self.first is None:
            return 0
        newest = max(self.floor, max(self.ahead, default=self.floor))
        return max(0, newest - self.first + 1 - self.count)

    def __getstate__(self) -> tuple[int, list[int], int, int | None, int]:
        return self.floor, sorted(self.ahead), self.max_ahead, self.first, self.count

    def __setstate__(self, state: tuple[int, list[int], int, int | None, int]) -> None:
        self.floor, ahead, self.max_ahead, self.first, self.count = state
        self.ahead = set(ahead) if ahead else _NONE_AHEAD
