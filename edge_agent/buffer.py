"""The outgoing buffer: a message stays here until the broker acknowledged it.

The buffer is transactional in the Telegraf sense: ``append`` stores a message (durably, for the
disk buffer) before it is published, ``pending`` hands out what has not been published yet, and
``ack`` removes a message only after its PUBACK. The buffer also keeps each device's last
``seq``, written in the same step as the message that used it, so numbering survives a restart.

Readings that are sampled but not yet in a closed telemetry block are *staged*
(:meth:`Buffer.stage_row`); appending the block that contains them clears them in the same step
(``clear_staged=True``). A restarted agent puts the staged rows back into its open block, so a
crash loses no reading that was sampled, not even one of the block that was still open.

:meth:`Buffer.transaction` groups several calls into one atomic, durable step (one SQLite
transaction on disk; nothing to do in memory): the agent records a sample's events, its block
and its staged row together.

Two priorities: safety events (1) leave before telemetry (0). Limits (messages, bytes, age) are
enforced on ``append``: messages older than ``max_age_s`` (by the ``now`` given to ``append``)
are dropped, then the oldest telemetry goes first until the buffer is within its size limits
(events only when no telemetry is left). Every dropped message and reading is counted in
:class:`BufferStats` (an upper bound of the loss: a message that was already published when it
was dropped may still arrive, since paho resends it after a reconnect). Sizes count
``len(topic) + len(payload)`` bytes, the same for both implementations (the SQLite file itself
is larger by its page and index overhead).

:class:`MemoryBuffer` is the reference implementation; :class:`edge_agent.disk_buffer.DiskBuffer`
does the same on SQLite. ``tests/edge_agent/test_edge_buffer.py`` runs one suite over both.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from contract.protocol import Value

PRIORITY_TELEMETRY = 0
PRIORITY_EVENT = 1
PRIORITIES = (PRIORITY_EVENT, PRIORITY_TELEMETRY)  # the order in which they leave


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    topic: str
    payload: bytes
    priority: int
    readings: int
    created: float = 0.0  # the ``now`` given to append

    @property
    def size(self) -> int:
        return entry_size(self.topic, self.payload)


Victim = tuple[int, int, int]
"""A message the limits may drop: (id, size, readings)."""


def evictions(
    count: int,
    size: int,
    max_messages: int | None,
    max_bytes: int | None,
    oldest_first: Callable[[int], Iterable[Victim]],
) -> list[Victim]:
    """The messages to drop so that ``count`` messages of ``size`` bytes fit the limits: the
    oldest telemetry first, events only when no telemetry is left. ``oldest_first(priority)``
    yields a priority's messages oldest first (lazily: it is read only as far as needed). The
    one eviction policy of both buffers."""
    out: list[Victim] = []
    for priority in (PRIORITY_TELEMETRY, PRIORITY_EVENT):
        for victim in oldest_first(priority):
            if (max_messages is None or count <= max_messages) and (
                max_bytes is None or size <= max_bytes
            ):
                return out
            out.append(victim)
            count -= 1
            size -= victim[1]
    return out


def entry_size(topic: str, payload: bytes) -> int:
    """What a message counts against ``max_bytes``."""
    return len(topic.encode()) + len(payload)


@dataclass(slots=True)
class BufferStats:
    stored: int = 0  # messages in the buffer
    stored_bytes: int = 0
    dropped_messages: int = 0  # since the buffer was created (persisted by the disk buffer)
    dropped_readings: int = 0


class Buffer(Protocol):
    def append(
        self,
        topic: str,
        payload: bytes,
        *,
        priority: int = PRIORITY_TELEMETRY,
        readings: int = 0,
        device: str | None = None,
        seq: int | None = None,
        now: float = 0.0,
        clear_staged: bool = False,
    ) -> int:
        """Store a message; returns its id (ids only grow, also across restarts)."""
        ...

    def pending(
        self, priority: int, after_id: int, limit: int, before_id: int | None = None
    ) -> list[Entry]:
        """Up to ``limit`` messages of ``priority`` with ``after_id < id < before_id``, oldest
        first."""
        ...

    def ack(self, ids: Iterable[int]) -> None:
        """Remove acknowledged messages (unknown or dropped ids are ignored), in one step."""
        ...

    def last_seq(self, device: str) -> int | None: ...

    def last_id(self) -> int:
        """The highest id handed out so far (0 for a new buffer)."""
        ...

    def stage_row(self, device: str, row: Sequence[Value]) -> None: ...

    def staged_rows(self, device: str) -> list[tuple[Value, ...]]: ...

    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    def stats(self) -> BufferStats: ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...


class _Queue:
    """One priority's messages in id order, with seeks by id (a sorted id list plus a dict)."""

    __slots__ = ("entries", "ids", "head")

    def __init__(self) -> None:
        self.entries: dict[int, Entry] = {}
        self.ids: list[int] = []  # sorted; may hold removed ids until compacted
        self.head = 0  # ids[:head] are all removed

    def add(self, entry: Entry) -> None:
        self.entries[entry.id] = entry
        self.ids.append(entry.id)

    def remove(self, entry_id: int) -> Entry | None:
        entry = self.entries.pop(entry_id, None)
        if entry is not None:
            ids, entries = self.ids, self.entries
            while self.head < len(ids) and ids[self.head] not in entries:
                self.head += 1
            if len(ids) - self.head > 2 * len(entries) + 1024 or self.head > 4096:
                self.ids = [i for i in ids[self.head :] if i in entries]
                self.head = 0
        return entry

    def oldest(self) -> Entry | None:
        return self.entries[self.ids[self.head]] if self.entries else None

    def in_order(self) -> Iterator[Entry]:
        """The entries oldest first, lazily (do not remove while iterating)."""
        ids, entries = self.ids, self.entries
        for k in range(self.head, len(ids)):
            entry = entries.get(ids[k])
            if entry is not None:
                yield entry

    def between(self, after_id: int, before_id: int | None, limit: int) -> list[Entry]:
        out: list[Entry] = []
        ids, entries = self.ids, self.entries
        for k in range(bisect.bisect_right(ids, after_id, lo=self.head), len(ids)):
            i = ids[k]
            if (before_id is not None and i >= before_id) or len(out) >= limit:
                break
            entry = entries.get(i)
            if entry is not None:
                out.append(entry)
        return out


class MemoryBuffer:
    """A bounded in-memory buffer (nothing survives a crash; for tests and the simulator)."""

    def __init__(
        self,
        max_messages: int | None = 100_000,
        *,
        max_bytes: int | None = None,
        max_age_s: float | None = None,
    ) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._queues = {p: _Queue() for p in PRIORITIES}
        self._seqs: dict[str, int] = {}
        self._staged: dict[str, list[tuple[Value, ...]]] = {}
        self._next_id = 1
        self._count = 0
        self._bytes = 0
        self._stats = BufferStats()

    def append(
        self,
        topic: str,
        payload: bytes,
        *,
        priority: int = PRIORITY_TELEMETRY,
        readings: int = 0,
        device: str | None = None,
        seq: int | None = None,
        now: float = 0.0,
        clear_staged: bool = False,
    ) -> int:
        entry = Entry(self._next_id, topic, payload, priority, readings, now)
        self._next_id += 1
        self._queues[priority].add(entry)
        self._count += 1
        self._bytes += entry.size
        if device is not None:
            if seq is not None:
                self._seqs[device] = seq
            if clear_staged:
                self._staged.pop(device, None)
        self._enforce(now)
        return entry.id

    def _enforce(self, now: float) -> None:
        if self.max_age_s is not None:
            cutoff = now - self.max_age_s
            for q in self._queues.values():
                while (e := q.oldest()) is not None and e.created < cutoff:
                    self._drop(q, e)
        victims = evictions(
            self._count, self._bytes, self.max_messages, self.max_bytes, self._oldest_first
        )
        for entry_id, _, _ in victims:
            for q in self._queues.values():
                entry = q.entries.get(entry_id)
                if entry is not None:
                    self._drop(q, entry)
                    break

    def _oldest_first(self, priority: int) -> Iterator[Victim]:
        for entry in self._queues[priority].in_order():
            yield entry.id, entry.size, entry.readings

    def _drop(self, q: _Queue, victim: Entry) -> None:
        q.remove(victim.id)
        self._count -= 1
        self._bytes -= victim.size
        self._stats.dropped_messages += 1
        self._stats.dropped_readings += victim.readings

    def pending(
        self, priority: int, after_id: int, limit: int, before_id: int | None = None
    ) -> list[Entry]:
        return self._queues[priority].between(after_id, before_id, limit)

    def ack(self, ids: Iterable[int]) -> None:
        for i in ids:
            for q in self._queues.values():
                entry = q.remove(i)
                if entry is not None:
                    self._count -= 1
                    self._bytes -= entry.size
                    break

    def last_seq(self, device: str) -> int | None:
        return self._seqs.get(device)

    def last_id(self) -> int:
        return self._next_id - 1

    def stage_row(self, device: str, row: Sequence[Value]) -> None:
        self._staged.setdefault(device, []).append(tuple(row))

    def staged_rows(self, device: str) -> list[tuple[Value, ...]]:
        return list(self._staged.get(device, ()))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        yield

    def stats(self) -> BufferStats:
        s = self._stats
        return BufferStats(self._count, self._bytes, s.dropped_messages, s.dropped_readings)

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        pass
