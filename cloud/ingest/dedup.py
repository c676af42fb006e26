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

    __slots__ = ("floor", "ahead", "max_ahead", "first", "count", "lost_before", "newest_before")

    def __init__(self, max_ahead: int = 4096) -> None:
        self.first: int | None = None  # the first seq seen: this tracker's view starts there
        self.count = 0  # distinct seqs seen
        # what a journal held before this tracker began (:meth:`resume`): seqs lost, newest seq
        self.lost_before = 0
        self.newest_before = -1
        self.floor = -1
        # a set only while messages wait above a gap: an empty set per device costs 216 B
        self.ahead: set[int] | frozenset[int] = _NONE_AHEAD
        self.max_ahead = max_ahead

    def add(self, seq: int) -> bool:
        """Record ``seq``; True when it is new."""
        if seq <= self.floor or seq in self.ahead:
            return False
        self.count += 1
        if self.first is None or seq < self.first:
            self.first = seq
        if seq == self.floor + 1:
            self.floor = seq
            if self.ahead:  # else nothing to fold (a set is never left empty: see _fold)
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

    def resume(self, lost: int, newest: int) -> None:
        """Carry on from a journal (a restarted worker's): ``lost`` seqs it lacks between its
        first and its newest, ``newest`` (de-duplication is the journal's key for those).

        >>> t = SeqTracker()
        >>> t.resume(lost=2, newest=9)
        >>> t.missing
        2
        >>> t.add(12), t.missing  # 10 and 11 went while no worker ran
        (True, 4)
        """
        self.lost_before, self.newest_before = lost, newest

    @property
    def missing(self) -> int:
        """Seqs between the first and the newest seen that have not come (with those a journal
        lacked before, :meth:`resume`, and those lost between the two)."""
        if self.first is None:
            return self.lost_before
        newest = max(self.floor, max(self.ahead, default=self.floor))
        lost = self.lost_before + max(0, newest - self.first + 1 - self.count)
        if self.newest_before >= 0 and self.first > self.newest_before + 1:
            lost += self.first - self.newest_before - 1
        return lost

    def __getstate__(self) -> tuple[int, list[int], int, int | None, int, int, int]:
        return (
            self.floor,
            sorted(self.ahead),
            self.max_ahead,
            self.first,
            self.count,
            self.lost_before,
            self.newest_before,
        )

    def __setstate__(self, state: tuple) -> None:
        self.floor, ahead, self.max_ahead, self.first, self.count, *before = state
        self.lost_before, self.newest_before = before or (0, -1)  # one pickled before resume
        self.ahead = set(ahead) if ahead else _NONE_AHEAD
