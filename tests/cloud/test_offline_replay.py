"""A fleet replayed as fast as the broker takes it, over several connections at once (a backfill
after an outage, a gateway replay), through a real Mosquitto and a real ``qloop cloud run``:
the connections run hours of event time apart, and that must not look like offline units,
while a unit that really fell silent in the replayed data is still found; and one unit whose
clock jumps ten years ahead fools neither the offline watch nor the ticket database."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.ingest import Traffic, make_traffic, worker_phase
from contract import protocol

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

DEVICES, BLOCKS = 400, 30  # 10-minute blocks: 5 h of data per unit, 12,000 messages
PUBLISHERS = 4


def _findings(workdir: Path, fault: str = "device_offline") -> list[tuple[str, bool]]:
    with sqlite3.connect(workdir / "one-w0" / "tickets.db") as db:
        return db.execute(
            "SELECT device, active FROM findings WHERE fault = ? ORDER BY id", (fault,)
        ).fetchall()


def _offline(workdir: Path) -> list[tuple[str, bool]]:
    return _findings(workdir)


def _silenced(traffic: Traffic, device: str, drop: Callable[[int], bool]) -> tuple[list, int, int]:
    """``traffic``'s messages without ``device``'s k-th ones (from 1) where ``drop(k)``: the
    messages kept, how many were dropped, and how many ``device`` had."""
    kept, dropped, k = [], 0, 0
    for item in traffic.messages:
        if protocol.parse_topic(item[0]).device == device:
            k += 1
            if drop(k):
                dropped += 1
                continue
        kept.append(item)
    return kept, dropped, k


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return make_traffic(DEVICES, BLOCKS)


def test_a_replay_over_four_connections_opens_no_offline_finding(traffic, tmp_path):
    result = worker_phase(traffic, tmp_path, PUBLISHERS, ["0-63"], "one")
    assert result["lost"] == 0
    assert _offline(tmp_path) == []


def test_a_unit_silent_in_the_replayed_data_is_still_found(traffic, tmp_path):
    silent = protocol.parse_topic(traffic.messages[0][0]).device
    kept, dropped, _ = _silenced(traffic, silent, lambda k: k > BLOCKS // 3)  # after 100 min
    assert dropped > 0
    result = worker_phase(replace(traffic, messages=kept), tmp_path, PUBLISHERS, ["0-63"], "one")
    assert result["lost"] == 0
    assert _offline(tmp_path) == [(silent, True)]


def test_a_unit_stamped_ten_years_ahead_fools_no_clock(traffic, tmp_path):
    """Halfway through, one unit sends a block stamped ten years ahead (with a seq after all
    of its own, so none of its real blocks is displaced): it is refused as a dead letter and
    is that unit's clock_skew finding, and neither the other units' silence nor any last-seen
    time in the ticket database moves."""
    messages = list(traffic.messages)
    middle = len(messages) // 2
    topic, payload, retain = messages[middle]
    block = protocol.decode(topic, payload)
    assert isinstance(block, protocol.Telemetry)
    last_seq = max(
        protocol.decode(t, p).seq
        for t, p, _ in messages
        if protocol.parse_topic(t).device == block.device
    )
    ten_years = 10 * 365.25 * 86400
    ts_at = block.fields.index("ts")
    ahead = replace(
        block,
        seq=last_seq + 1,
        rows=tuple(
            tuple(v + ten_years if k == ts_at else v for k, v in enumerate(r)) for r in block.rows
        ),
    )
    messages.insert(middle + 1, (topic, protocol.encode(ahead), retain))
    result = worker_phase(
        replace(traffic, messages=messages), tmp_path, PUBLISHERS, ["0-63"], "one"
    )
    assert result["lost"] == 0 and result["dead_letters"] == 1
    assert _offline(tmp_path) == []
    # the episode opens with the skewed block and closes with the unit's next sane one
    assert _findings(tmp_path, "clock_skew") == [(block.device, True), (block.device, False)]
    with sqlite3.connect(tmp_path / "one-w0" / "tickets.db") as db:
        (newest,) = db.execute("SELECT max(last_seen_ts) FROM devices").fetchone()
    # the replay covers 5 h: every unit's last-seen time, the skewed one's too, lies within it
    assert newest < block.rows[-1][ts_at] + 86400


def test_a_unit_silent_for_two_hours_of_a_stream_in_time_order_is_found(traffic, tmp_path):
    """One connection delivering the fleet in time order, as a live fleet's stream comes (here
    as fast as the broker takes it: the worker's arrival-time check is not what finds it): one
    unit sends nothing for two hours of event time in the middle of the five, then speaks
    again. It gets a ``device_offline`` finding, and no other unit does."""
    silent = protocol.parse_topic(traffic.messages[0][0]).device
    start = BLOCKS // 3
    kept, dropped, sent = _silenced(traffic, silent, lambda k: start < k <= start + 12)  # 2 h
    assert dropped == 12 and sent > start + 12  # it spoke again afterwards
    result = worker_phase(replace(traffic, messages=kept), tmp_path, 1, ["0-63"], "one")
    assert result["lost"] == 0
    offline = _offline(tmp_path)
    assert offline[:1] == [(silent, True)]
    assert {d for d, _ in offline} == {silent}
