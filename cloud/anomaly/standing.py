"""What a batch test run in rounds of event time remembers between rounds: when the last round
was, and the batches standing out with the units each has named.

Both batch tests over the units' statistics (the pooled shift test, ``pooled.py``; the peer
level test, ``peers.py``) run a round every ``every_s`` of event time, say a batch when it
starts to stand out, and say it again only when it names a unit it had not named (stronger
evidence), not every round it stands out as before; a batch that has not stood out for
``forget_s`` is forgotten, and says all again if it comes back.

Pure: time is the event time the caller passes.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping


class Standing:
    """Rounds of a batch test and its batches standing out.

    >>> s = Standing(every_s=3600.0, forget_s=86_400.0)
    >>> s.due(0.0), s.begin(0.0), s.due(1800.0), s.begin(-5.0)
    (True, True, False, False)
    >>> s.stands("B1", {"a", "b"}, 0.0), s.stands("B1", {"a"}, 3600.0)
    (True, False)
    >>> s.stands("B1", {"c"}, 7200.0), s.stands("B1", {"a", "c"}, 7200.0)
    (True, False)
    >>> s.quiet("B1", 7200.0 + 86_400.0), "B1" in s
    (None, True)
    >>> s.quiet("B1", 7201.0 + 86_400.0), "B1" in s
    (None, False)
    """

    def __init__(self, every_s: float, forget_s: float) -> None:
        self.every_s = every_s
        self.forget_s = forget_s
        self.last_ts: float | None = None
        # per batch (the test's key) standing out: the units named so far, when it last stood out
        self._named: dict[Hashable, tuple[frozenset[str], float]] = {}

    def due(self, ts: float) -> bool:
        """Whether a round is due at event time ``ts``."""
        return self.last_ts is None or ts >= self.last_ts + self.every_s

    def begin(self, ts: float) -> bool:
        """A round at ``ts``: False (no round) if ``ts`` is before the last round's."""
        if self.last_ts is not None and ts < self.last_ts:
            return False
        self.last_ts = ts
        return True

    def stands(self, key: Hashable, units: Iterable[str], ts: float) -> bool:
        """``key`` stands out at ``ts`` naming ``units``: whether any of them is new (so there
        is something to say)."""
        named, _ = self._named.get(key, (frozenset(), -math.inf))
        units = frozenset(units)
        self._named[key] = (named | units, ts)
        return not units <= named

    def quiet(self, key: Hashable, ts: float) -> None:
        """``key`` does not stand out at ``ts``: forgotten after ``forget_s`` of that."""
        _, last = self._named.get(key, (frozenset(), -math.inf))
        if ts - last > self.forget_s:
            self._named.pop(key, None)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._named

    def keys(self) -> set[Hashable]:
        return set(self._named)

    def state(self) -> dict[str, object]:
        """As plain data for a checkpoint: ``last_ts`` and ``standing``."""
        return {
            "last_ts": self.last_ts,
            "standing": {k: (sorted(units), ts) for k, (units, ts) in self._named.items()},
        }

    def restore(self, state: Mapping[str, object]) -> None:
        """Take back what :meth:`state` gave (with any other keys beside them).

        >>> a, b = Standing(1.0, 2.0), Standing(1.0, 2.0)
        >>> _ = a.begin(5.0), a.stands(("f", "M", "B"), {"d1"}, 5.0)
        >>> b.restore(a.state())
        >>> b.state() == a.state()
        True
        """
        standing = state["standing"]
        assert isinstance(standing, Mapping)
        last = state["last_ts"]
        self.last_ts = None if last is None else float(last)  # type: ignore[arg-type]
        self._named = {
            tuple(k) if isinstance(k, list | tuple) else k: (frozenset(units), float(ts))
            for k, (units, ts) in standing.items()
        }
