"""One suite over every buffer implementation (memory and disk), as Telegraf does.

Both must behave the same: ordering, priorities, the cursor of ``pending``, ``ack``, the drop
policy and its counts, ``last_seq``, staged rows and transactions. The disk buffer must also
keep all of it across close and reopen.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.buffer import PRIORITY_EVENT, PRIORITY_TELEMETRY, MemoryBuffer, entry_size
from edge_agent.disk_buffer import DiskBuffer

Make = Callable[..., object]


@pytest.fixture(params=["memory", "disk"])
def make(request, tmp_path) -> Make:
    """``make(**limits)`` builds a fresh buffer of the parametrised kind."""
    count = iter(range(1_000_000))
    opened = []

    def build(max_messages=None, max_bytes=None, max_age_s=None):
        if request.param == "memory":
            buf = MemoryBuffer(max_messages, max_bytes=max_bytes, max_age_s=max_age_s)
        else:
            buf = DiskBuffer(
                tmp_path / f"buf{next(count)}.db",
                max_messages=max_messages,
                max_bytes=max_bytes,
                max_age_s=max_age_s,
            )
        opened.append(buf)
        return buf

    build.kind = request.param
    yield build
    for b in opened:
        b.close()


def ids(entries):
    return [e.id for e in entries]


def test_appends_come_back_in_order_with_their_fields(make):
    buf = make()
    a = buf.append("t/a", b"A", readings=3, device="d", seq=0, now=5.0)
    b = buf.append("t/b", b"BB", readings=4, device="d", seq=1, now=6.0)
    assert a < b and len(buf) == 2 and buf.last_id() == b
    (ea, eb) = buf.pending(PRIORITY_TELEMETRY, 0, 10)
    assert (ea.id, ea.topic, ea.payload, ea.priority, ea.readings, ea.created) == (
        a,
        "t/a",
        b"A",
        PRIORITY_TELEMETRY,
        3,
        5.0,
    )
    assert (eb.topic, eb.payload, eb.readings) == ("t/b", b"BB", 4)
    assert buf.stats().stored == 2 and buf.stats().stored_bytes == entry_size(
        "t/a", b"A"
    ) + entry_size("t/b", b"BB")


def test_priorities_are_separate_queues(make):
    buf = make()
    t1 = buf.append("t", b"1")
    e1 = buf.append("e", b"x", priority=PRIORITY_EVENT)
    t2 = buf.append("t", b"2")
    assert ids(buf.pending(PRIORITY_TELEMETRY, 0, 10)) == [t1, t2]
    assert ids(buf.pending(PRIORITY_EVENT, 0, 10)) == [e1]


def test_pending_cursor_limit_and_upper_bound(make):
    buf = make()
    xs = [buf.append("t", bytes([i])) for i in range(10)]
    assert ids(buf.pending(PRIORITY_TELEMETRY, 0, 3)) == xs[:3]
    assert ids(buf.pending(PRIORITY_TELEMETRY, xs[2], 3)) == xs[3:6]
    assert ids(buf.pending(PRIORITY_TELEMETRY, xs[2], 100, before_id=xs[5])) == xs[3:5]
    assert buf.pending(PRIORITY_TELEMETRY, xs[-1], 10) == []
    assert buf.pending(PRIORITY_TELEMETRY, 0, 0) == []
    buf.ack(xs[3:5])  # holes are skipped, the cursor still works
    assert ids(buf.pending(PRIORITY_TELEMETRY, xs[2], 3)) == [xs[2 + 3], xs[6], xs[7]]


def test_ack_removes_only_the_given_ids_and_ignores_unknown(make):
    buf = make()
    xs = [buf.append("t", b"p", readings=1) for _ in range(5)]
    buf.ack([xs[1], xs[3], 999_999])
    buf.ack([])
    buf.ack([xs[1]])  # twice: no effect
    assert ids(buf.pending(PRIORITY_TELEMETRY, 0, 10)) == [xs[0], xs[2], xs[4]]
    assert len(buf) == 3 and buf.stats().stored_bytes == 3 * entry_size("t", b"p")
    assert buf.stats().dropped_messages == 0, "an ack is not a drop"


def test_ids_grow_after_the_newest_is_acked(make):
    buf = make()
    a = buf.append("t", b"a")
    buf.ack([a])
    b = buf.append("t", b"b")
    assert b > a and buf.last_id() == b


def test_count_cap_drops_oldest_telemetry_first_and_counts_readings(make):
    buf = make(max_messages=3)
    a = buf.append("t", b"a", readings=10)
    e = buf.append("e", b"e", priority=PRIORITY_EVENT)
    b = buf.append("t", b"b", readings=20)
    c = buf.append("t", b"c", readings=30)  # over the cap: a goes, the older event stays
    assert ids(buf.pending(PRIORITY_TELEMETRY, 0, 10)) == [b, c]
    assert ids(buf.pending(PRIORITY_EVENT, 0, 10)) == [e]
    s = buf.stats()
    assert (s.stored, s.dropped_messages, s.dropped_readings) == (3, 1, 10)
    assert a not in ids(buf.pending(PRIORITY_TELEMETRY, 0, 10))


def test_events_go_only_when_no_telemetry_is_left(make):
    buf = make(max_messages=2)
    e1 = buf.append("e", b"1", priority=PRIORITY_EVENT)
    e2 = buf.append("e", b"2", priority=PRIORITY_EVENT)
    t = buf.append("t", b"t", readings=5)  # the telemetry itself is the oldest telemetry
    assert ids(buf.pending(PRIORITY_EVENT, 0, 10)) == [e1, e2] and t
    assert buf.stats().dropped_readings == 5
    e3 = buf.append("e", b"3", priority=PRIORITY_EVENT)
    assert ids(buf.pending(PRIORITY_EVENT, 0, 10)) == [e2, e3]
    assert buf.stats().dropped_messages == 2


def test_byte_cap(make):
    size = entry_size("t", b"x" * 100)
    buf = make(max_bytes=3 * size)
    xs = [buf.append("t", b"x" * 100, readings=7) for _ in range(5)]
    assert ids(buf.pending(PRIORITY_TELEMETRY, 0, 10)) == xs[2:]
    s = buf.stats()
    assert s.stored_bytes == 3 * size and s.dropped_readings == 14 and s.dropped_messages == 2


def test_age_cap_uses_the_now_given_to_append(make):
    buf = make(max_age_s=100.0)
    a = buf.append("t", b"a", readings=1, now=0.0)
    e = buf.append("e", b"e", priority=PRIORITY_EVENT, now=10.0)
    b = buf.append("t", b"b", readings=2, now=50.0)
    c = buf.append("t", b"c", readings=3, now=105.0)  # a is now 105 s old
    assert ids(buf.pending(PRIORITY_TELEMETRY, 0, 10)) == [b, c]
    assert ids(buf.pending(PRIORITY_EVENT, 0, 10)) == [e]
    buf.append("t", b"d", readings=4, now=111.0)  # the event too has expired
    assert buf.pending(PRIORITY_EVENT, 0, 10) == []
    assert buf.stats().dropped_readings == 1 and buf.stats().dropped_messages == 2
    assert a not in ids(buf.pending(PRIORITY_TELEMETRY, 0, 10))


def test_last_seq_per_device(make):
    buf = make()
    assert buf.last_seq("d1") is None
    buf.append("t", b"", device="d1", seq=4)
    buf.append("t", b"", device="d2", seq=9)
    buf.append("e", b"", priority=PRIORITY_EVENT, device="d1", seq=5)
    assert (buf.last_seq("d1"), buf.last_seq("d2")) == (5, 9)


def test_last_seq_survives_the_drop_of_its_message(make):
    buf = make(max_messages=1)
    buf.append("t", b"a", device="d", seq=1)
    buf.append("t", b"b", device="d", seq=2)
    buf.append("t", b"c", device="d", seq=3)
    assert buf.last_seq("d") == 3 and len(buf) == 1


def test_staged_rows_are_cleared_by_the_block_that_holds_them(make):
    buf = make()
    buf.stage_row("d", (1.0, 2.5, None))
    buf.stage_row("d", (2.0, 3.5, 1.0))
    buf.stage_row("other", (1.0, 0.0, 0.0))
    assert buf.staged_rows("d") == [(1.0, 2.5, None), (2.0, 3.5, 1.0)]
    buf.append("e", b"", priority=PRIORITY_EVENT, device="d", seq=0)  # not a block: kept
    assert len(buf.staged_rows("d")) == 2
    buf.append("t", b"", device="d", seq=1, clear_staged=True)
    assert buf.staged_rows("d") == [] and buf.staged_rows("other") == [(1.0, 0.0, 0.0)]


def test_transaction_groups_calls(make):
    buf = make()
    with buf.transaction():
        a = buf.append("t", b"a", device="d", seq=0)
        with buf.transaction():  # nested joins the outer one
            buf.stage_row("d", (1.0,))
        b = buf.append("e", b"e", priority=PRIORITY_EVENT, device="d", seq=1)
    assert len(buf) == 2 and (a, b) == (1, 2) and buf.last_seq("d") == 1


# --- disk only ------------------------------------------------------------------------------


def test_disk_rolls_back_a_failed_transaction(tmp_path):
    buf = DiskBuffer(tmp_path / "b.db")
    buf.append("t", b"keep", device="d", seq=0)
    with pytest.raises(RuntimeError), buf.transaction():
        buf.append("t", b"gone", device="d", seq=1)
        buf.stage_row("d", (1.0,))
        raise RuntimeError("crash inside")
    assert len(buf) == 1 and buf.last_seq("d") == 0 and buf.staged_rows("d") == []
    assert [e.payload for e in buf.pending(PRIORITY_TELEMETRY, 0, 10)] == [b"keep"]
    buf.close()


def test_disk_contents_counts_and_seq_survive_reopen(tmp_path):
    path = tmp_path / "b.db"
    buf = DiskBuffer(path, max_messages=3)
    xs = [
        buf.append("t", bytes([i]), readings=10, device="d", seq=i, now=float(i)) for i in range(5)
    ]
    e = buf.append("e", b"e", priority=PRIORITY_EVENT, device="d", seq=5)
    buf.ack([xs[3]])
    buf.stage_row("d", (9.0, 1.5))
    before = buf.stats()
    buf.close()

    again = DiskBuffer(path, max_messages=3)
    assert again.last_seq("d") == 5 and again.last_id() == e
    assert ids(again.pending(PRIORITY_TELEMETRY, 0, 10)) == [xs[4]]
    assert ids(again.pending(PRIORITY_EVENT, 0, 10)) == [e]
    assert again.stats() == before and before.dropped_readings == 30
    assert again.staged_rows("d") == [(9.0, 1.5)]
    assert again.append("t", b"new") > e, "ids keep growing across restarts"
    again.close()


def test_disk_is_in_wal_mode_and_survives_an_unclosed_connection(tmp_path):
    path = tmp_path / "b.db"
    buf = DiskBuffer(path)
    buf.append("t", b"x", device="d", seq=7)
    # no close(): like a killed process, the WAL holds the commit
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other = DiskBuffer(path)
    assert other.last_seq("d") == 7 and len(other) == 1
    other.close()
    buf.close()


# --- a model test: the disk buffer behaves like the memory buffer ------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"),
            st.sampled_from([PRIORITY_TELEMETRY, PRIORITY_EVENT]),
            st.integers(0, 60),
            st.integers(0, 200),
            st.floats(0, 50),
        ),
        st.tuples(st.just("ack"), st.lists(st.integers(0, 40), max_size=6)),
        st.tuples(
            st.just("pending"),
            st.sampled_from([PRIORITY_TELEMETRY, PRIORITY_EVENT]),
            st.integers(0, 40),
            st.integers(1, 8),
        ),
    ),
    max_size=40,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=_ops,
    max_messages=st.one_of(st.none(), st.integers(1, 8)),
    max_bytes=st.one_of(st.none(), st.integers(50, 600)),
    max_age_s=st.one_of(st.none(), st.floats(5, 100)),
)
def test_disk_buffer_matches_the_memory_model(
    tmp_path_factory, ops, max_messages, max_bytes, max_age_s
):
    model = MemoryBuffer(max_messages, max_bytes=max_bytes, max_age_s=max_age_s)
    disk = DiskBuffer(
        tmp_path_factory.mktemp("model") / "b.db",
        max_messages=max_messages,
        max_bytes=max_bytes,
        max_age_s=max_age_s,
    )
    now = 0.0
    try:
        for op in ops:
            if op[0] == "append":
                _, prio, readings, size, dt = op
                now += dt
                args = ("t", b"x" * size)
                kw = dict(priority=prio, readings=readings, device="d", seq=int(now), now=now)
                assert model.append(*args, **kw) == disk.append(*args, **kw)
            elif op[0] == "ack":
                model.ack(op[1])
                disk.ack(op[1])
            else:
                _, prio, after, limit = op
                assert model.pending(prio, after, limit) == disk.pending(prio, after, limit)
            assert model.stats() == disk.stats()
            assert model.last_seq("d") == disk.last_seq("d")
    finally:
        disk.close()
