"""Which (device, seq) messages were already seen: the cloud's definition of "the same message".

Per device: every seq up to ``floor`` was seen, plus a small set above it (messages that arrived
ahead of a gap). The set folds into the floor as gaps fill. A gap that never fills (the edge
dropped messages when its buffer overflowed) is given up once ``max_ahead`` messages are waiting
above it, so memory stays bounded; the durable store's (device, seq) key still catches a late
copy after that.
"""

from __future__ import annotations

_NONE_AHEAD: frozenset[int] = frozenset()


class SeqTracker:
    __slots__ = ("floor", "ahead", "max_ahead")

    def __init__(self, max_ahead: int = 4096) -> None:
        self.floor = -1
        # a set only while messages wait above a gap: an empty set per device costs 216 B
        self.ahead: set[int] | frozenset[int] = _NONE_AHEAD
        self.max_ahead = max_ahead

    def add(self, seq: int) -> bool:
        """Record ``seq``; True when it is new."""
        if seq <= self.floor or seq in self.ahead:
            return False
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

    def __getstate__(self) -> tuple[int, list[int], int]:
        return self.floor, sorted(self.ahead), self.max_ahead

    def __setstate__(self, state: tuple[int, list[int], int]) -> None:
        self.floor, ahead, self.max_ahead = state
        self.ahead = set(ahead) if ahead else _NONE_AHEAD
