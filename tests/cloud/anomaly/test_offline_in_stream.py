"""Silence read in a device's own stream (``OfflineWatch.seen`` with ``seq`` and ``times``).

In a replay whose connections run hours of event time apart, the fleet's present is the slowest
connection's time, so a unit on a fast one that was silent for two hours had spoken again long
before the present reached its silence (``qloop eval replay``: 4 of 12 outages found, S11). The
silence is in the unit's own messages, though: between two that follow each other by ``seq``,
or inside one block.
"""

from __future__ import annotations

import numpy as np

from cloud.anomaly.base import Finding
from cloud.anomaly.offline import OfflineWatch

BLOCK = 600.0  # 10-minute blocks of 60-s readings
LAG = 6 * 3600.0
REPLAYED_AT = 2e9  # the worker's clock, long after the readings


def _block(end: float) -> np.ndarray:
    return np.arange(end - BLOCK + 60.0, end + 1.0, 60.0)


def _replay(in_stream: bool, silent: tuple[float, float] = (20 * 3600.0, 22 * 3600.0)):
    """40 units over 4 connections, connection ``c`` delivering ``c * LAG`` behind the first;
    unit 0 (the fastest connection) sends nothing in ``silent``. Returns unit 0's findings and
    every other unit's."""
    w = OfflineWatch()
    seqs = dict.fromkeys(range(40), 0)
    mine: list[Finding] = []
    others: list[Finding] = []
    for step in range(1, 48 * 6 + 1):
        now = step * BLOCK
        for unit in range(40):
            end = now - (unit % 4) * LAG
            if end <= 0 or (unit == 0 and silent[0] < end <= silent[1]):
                continue
            seqs[unit] += 1
            times = _block(end)
            if unit == 0 and silent[0] < times[0] - 60.0 < silent[1]:
                times = times[times > silent[1]]  # the block that straddles the end
            seq, ts = (seqs[unit], times) if in_stream else (None, None)
            found = w.seen(f"u{unit}", float(times[-1]), BLOCK, REPLAYED_AT, seq, ts)
            (mine if unit == 0 else others).extend(found)
        for f in w.check(now=REPLAYED_AT):
            (mine if f.device == "u0" else others).append(f)
    return mine, others


def test_a_silence_on_a_fast_connection_is_found_in_the_units_own_stream() -> None:
    mine, others = _replay(in_stream=True)
    assert others == []
    assert [(f.active, f.onset_ts) for f in mine] == [(True, 20 * 3600.0), (False, 20 * 3600.0)]
    assert mine[0].evidence["silence_s"] >= 2 * 3600.0 - 60.0


def test_without_it_the_present_never_reaches_that_silence() -> None:
    mine, others = _replay(in_stream=False)
    assert mine == [] and others == []


def test_messages_out_of_order_say_nothing_of_silence() -> None:
    w = OfflineWatch()
    order = [1, 2, 3, 5, 4, 6, 8, 7, 9]  # a store-and-forward replay reorders some blocks
    found = []
    for seq in order:
        times = _block(seq * BLOCK)
        found += w.seen("a", float(times[-1]), BLOCK, REPLAYED_AT, seq, times)
    assert found == []


def test_a_hole_inside_one_block_is_found_and_a_short_one_is_not() -> None:
    w = OfflineWatch()
    for seq in range(1, 7):
        times = _block(seq * BLOCK)
        assert w.seen("a", float(times[-1]), BLOCK, REPLAYED_AT, seq, times) == []
    short = np.concatenate([_block(7 * BLOCK)[:3], _block(7 * BLOCK + 1200.0)[3:]])  # 20 min
    assert w.seen("a", float(short[-1]), float(short[-1] - short[0]), REPLAYED_AT, 7, short) == []
    start = float(short[-1])
    hole = np.concatenate(
        [start + np.arange(60.0, 241.0, 60.0), start + 3 * 3600.0 + 60.0 * np.arange(1, 7)]
    )
    found = w.seen("a", float(hole[-1]), float(hole[-1] - hole[0]), REPLAYED_AT, 8, hole)
    assert [(f.active, f.onset_ts) for f in found] == [
        (True, start + 240.0),
        (False, start + 240.0),
    ]


def test_live_a_silence_the_watch_already_found_is_not_found_twice() -> None:
    w = OfflineWatch()
    for seq in range(1, 7):
        times = _block(seq * BLOCK)
        w.seen("a", float(times[-1]), BLOCK, float(times[-1]), seq, times)
        w.seen("b", float(times[-1]), BLOCK, float(times[-1]), seq, times)
    gone = 6 * BLOCK
    for step in range(7, 7 + 18):  # b alone speaks for three hours
        times = _block(step * BLOCK)
        w.seen("b", float(times[-1]), BLOCK, float(times[-1]), step, times)
    flagged = w.check(now=24 * BLOCK)
    assert [(f.device, f.active, f.onset_ts) for f in flagged] == [("a", True, gone)]
    back = _block(25 * BLOCK)
    again = w.seen("a", float(back[-1]), BLOCK, float(back[-1]), 7, back)
    assert [(f.active, f.onset_ts) for f in again] == [(False, gone)]
