"""The edge's protocol logic without I/O: numbering, blocks, safety events, bad values."""

from __future__ import annotations

import math

import pytest

from contract.protocol import Event, Telemetry, decode, encode, topic
from edge_agent.buffer import PRIORITY_EVENT, MemoryBuffer
from edge_agent.core import DeviceCore, Identity, SafetyRule

FIELDS = ("ts", "current_a", "return_c")
IDENT = Identity("ac-1", "KFR-35GW", "B1", "SN-1", "2.3.0", sample_period_s=1.0)


def test_blocks_close_by_rows_and_by_age():
    core = DeviceCore(IDENT, FIELDS, block_rows=3, block_max_age_s=10.0, next_seq=7)
    out = []
    for t in range(7):
        out += core.sample((float(t), 4.0, 25.0), now=float(t))
    blocks = [m for m in out if isinstance(m, Telemetry)]
    assert [b.seq for b in blocks] == [7, 8]
    assert [len(b.rows) for b in blocks] == [3, 3]
    assert core.due(15.0) == []  # the open block's first row came at now=6
    (aged,) = core.due(16.0)
    assert aged.seq == 9 and aged.rows == ((6.0, 4.0, 25.0),)
    assert core.flush() == []


def test_safety_event_leaves_at_once_and_fires_once_per_crossing():
    rule = SafetyRule("overcurrent", "current_a", 10.0, rearm=1.0)
    core = DeviceCore(IDENT, FIELDS, block_rows=100, rules=[rule])
    currents = [4.0, 11.0, 12.0, 9.5, 12.5, 8.0, 10.5]
    events = []
    for t, c in enumerate(currents):
        events += [m for m in core.sample((float(t), c, 25.0)) if isinstance(m, Event)]
    # 11.0 fires; 12.0 and 12.5 don't (9.5 is not below 10 - 1); 8.0 re-arms; 10.5 fires
    assert [(e.ts, e.value) for e in events] == [(1.0, 11.0), (6.0, 10.5)]
    assert [e.seq for e in events] == [0, 1]
    assert all(e.kind == "overcurrent" and e.limit == 10.0 for e in events)


def test_an_event_carries_its_rules_context_fields_at_the_trip():
    """The built-in overcurrent rule carries the outdoor and return air temperatures of the
    tripping reading (the cloud judges the trip against the model's rated envelope); a field the
    device lacks, or a reading without it, is left out."""
    fields = ("ts", "current_a", "ambient_c")
    core = DeviceCore(IDENT, fields, block_rows=100)
    (e,) = [m for m in core.sample((1.0, 12.0, 46.5)) if isinstance(m, Event)]
    assert e.extra == {"ambient_c": 46.5}
    assert decode(topic("ac-1", "event"), encode(e)).extra == {"ambient_c": 46.5}
    core.sample((2.0, 4.0, 30.0))
    (e,) = [m for m in core.sample((3.0, 12.0, None)) if isinstance(m, Event)]
    assert e.extra == {}
    both = DeviceCore(IDENT, ("ts", "current_a", "ambient_c", "return_c"), block_rows=100)
    (e,) = [m for m in both.sample((1.0, 12.0, 35.0, 34.5)) if isinstance(m, Event)]
    assert e.extra == {"ambient_c": 35.0, "return_c": 34.5}
    bare = DeviceCore(IDENT, FIELDS, block_rows=100)  # no ambient_c among its fields
    (e,) = [m for m in bare.sample((1.0, 12.0, 25.0)) if isinstance(m, Event)]
    assert e.extra == {"return_c": 25.0}


def test_bad_values_go_out_as_null_and_are_counted():
    core = DeviceCore(IDENT, FIELDS, block_rows=1)
    (block,) = core.sample((1.0, math.nan, "hot"))
    assert block.rows == ((1.0, None, None),)
    (block,) = core.sample((2.0, None, True))
    assert block.rows == ((2.0, None, 1.0),)
    assert core.bad_values == 2  # NaN and "hot"; None is "no value", not an error


def test_memory_buffer_priorities_cursor_and_drop_oldest():
    buf = MemoryBuffer(max_messages=3)
    a = buf.append("t", b"a", readings=10, device="d", seq=0)
    e = buf.append("e", b"e", priority=PRIORITY_EVENT, device="d", seq=1)
    b = buf.append("t", b"b", readings=10, device="d", seq=2)
    c = buf.append("t", b"c", readings=10, device="d", seq=3)  # over the cap: drops a
    assert [x.id for x in buf.pending(0, 0, 10)] == [b, c]
    assert [x.id for x in buf.pending(PRIORITY_EVENT, 0, 10)] == [e]
    assert buf.pending(0, b, 10)[0].id == c
    assert buf.stats().dropped_readings == 10 and a not in {x.id for x in buf.pending(0, 0, 9)}
    buf.ack([b, e])
    assert len(buf) == 1 and buf.last_seq("d") == 3


START_FIELDS = ("ts", "current_a", "compressor_on")
STARTING = SafetyRule(
    "overcurrent", "current_a", 10.0, rearm=1.0, start_field="compressor_on", blank_s=2.0
)


def events_of(core: DeviceCore, rows) -> list[tuple[float, float]]:
    out = []
    for row in rows:
        out += [(m.ts, m.value) for m in core.sample(row) if isinstance(m, Event)]
    return out


def test_a_compressor_start_is_blanked_at_1_hz_but_a_stalled_rotor_trips():
    core = DeviceCore(IDENT, START_FIELDS, block_rows=1000, rules=[STARTING])
    # off, then a start whose locked-rotor current shows in the first two 1-s readings
    start = [(0.0, 0.5, 0.0), (1.0, 14.0, 1.0), (2.0, 10.5, 1.0), (3.0, 5.0, 1.0)]
    assert events_of(core, start) == [], "the inrush of a start is not an overcurrent"
    # running: one reading over the limit is an overcurrent at once, no delay
    assert events_of(core, [(4.0, 11.0, 1.0), (5.0, 5.0, 1.0)]) == [(4.0, 11.0)]
    # stop, then a start that stays over the limit (a stalled rotor): trips once blanking ends
    stalled = [(6.0, 0.5, 0.0)] + [(7.0 + s, 25.0, 1.0) for s in range(5)]
    assert events_of(core, stalled) == [(9.0, 25.0)]


def test_a_current_above_the_instantaneous_level_trips_at_once_even_at_a_start():
    core = DeviceCore(IDENT, START_FIELDS, block_rows=1000, rules=[STARTING])
    assert STARTING.limit * STARTING.instant_factor == 40.0
    assert events_of(core, [(0.0, 0.5, 0.0), (1.0, 39.0, 1.0)]) == []
    core = DeviceCore(IDENT, START_FIELDS, block_rows=1000, rules=[STARTING])
    assert events_of(core, [(0.0, 0.5, 0.0), (1.0, 41.0, 1.0)]) == [(1.0, 41.0)]


def test_at_a_coarse_period_only_the_first_reading_after_a_start_is_blanked():
    core = DeviceCore(IDENT, START_FIELDS, block_rows=1000, rules=[STARTING])
    rows = [(0.0, 0.5, 0.0), (10.0, 13.0, 1.0), (20.0, 12.0, 1.0)]
    assert events_of(core, rows) == [(20.0, 12.0)]
    # the first reading of the device's life with the compressor on counts as a start too
    core = DeviceCore(IDENT, START_FIELDS, block_rows=1000, rules=[STARTING])
    assert events_of(core, [(0.0, 13.0, 1.0), (10.0, 4.0, 1.0)]) == []


def test_a_missing_compressor_state_keeps_the_last_one():
    core = DeviceCore(IDENT, START_FIELDS, block_rows=1000, rules=[STARTING])
    rows = [
        (0.0, 0.5, 0.0),
        (1.0, 14.0, None),
        (2.0, 5.0, 1.0),
        (3.0, 5.0, None),
        (9.0, 12.0, None),
    ]
    # at 1.0 the state is unknown (off so far): judged, it trips; the start is then seen at
    # 2.0 (5 A re-arms the rule), and 9.0 is past its blanking
    assert events_of(core, rows) == [(1.0, 14.0), (9.0, 12.0)]
    core = DeviceCore(IDENT, START_FIELDS, block_rows=1000, rules=[STARTING])
    rows = [(0.0, 5.0, 1.0), (1.0, 5.0, None), (2.0, 0.5, None), (3.0, 12.0, 1.0)]
    assert events_of(core, rows) == [(3.0, 12.0)], "no off reading seen: no new start"


def test_without_its_start_field_a_rule_judges_every_reading():
    core = DeviceCore(IDENT, FIELDS, block_rows=1000, rules=[STARTING])
    assert events_of(core, [(0.0, 0.5, 25.0), (1.0, 14.0, 25.0)]) == [(1.0, 14.0)]


def test_start_blanking_settings_are_checked():
    with pytest.raises(ValueError, match="start_field"):
        SafetyRule("undervoltage", "volts", 190.0, above=False, start_field="compressor_on")
    with pytest.raises(ValueError, match="blank_s"):
        SafetyRule("overcurrent", "current_a", 10.0, blank_s=-1.0)
    with pytest.raises(ValueError, match="instant_factor"):
        SafetyRule("overcurrent", "current_a", 10.0, instant_factor=0.5)
