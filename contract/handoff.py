"""A bounded hand-off between threads that costs a tenth of :class:`queue.Queue` per item.

Received messages pass from a network thread to a consumer through a queue whose bound is the
backpressure: when the consumer falls behind, the network thread waits, stops reading its
socket, and the broker holds the rest. :class:`queue.Queue` gives that bound with a lock and
two conditions written in Python, about 2.5 µs per put and get; at the worker's rates that was
a few percent of its time in each process a message passes (``contract/mqtt_process.py``, the
cloud worker). :class:`Handoff` puts into a :class:`queue.SimpleQueue` (C) and waits for room
by polling its size (every ``wait_s``): a full queue is the rare case, and then a millisecond's
delay costs nothing, since the consumer is busy anyway.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """At most about ``limit`` items between producers and one consumer (see the module
    docstring); ``get``, ``get_nowait`` and ``qsize`` are :class:`queue.SimpleQueue`'s
    (``queue.Empty`` when nothing comes)."""

    def __init__(self, limit: int, wait_s: float = 0.001) -> None:
        if limit < 1:
            raise ValueError(f"a hand-off holds at least one item, not {limit}")
        self.limit = limit
        self.wait_s = wait_s
        self._q: queue.SimpleQueue[T] = queue.SimpleQueue()
        self.get = self._q.get
        self.get_nowait = self._q.get_nowait
        self.qsize = self._q.qsize

    def put(self, item: T, give_up: Callable[[], bool] | None = None) -> bool:
        """Put ``item``, first waiting while ``limit`` items wait; False (and not put) if
        ``give_up()`` turns true meanwhile."""
        while self._q.qsize() >= self.limit:
            if give_up is not None and give_up():
                return False
            time.sleep(self.wait_s)
        self._q.put(item)
        return True

    def offer(self, item: T) -> bool:
        """Put ``item`` unless the hand-off is full (False: dropped)."""
        if self._q.qsize() >= self.limit:
            return False
        self._q.put(item)
        return True
