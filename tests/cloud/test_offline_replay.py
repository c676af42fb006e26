"""A fleet replayed as fast as the broker takes it, over several connections at once (a backfill
after an outage, a gateway replay), through a real Mosquitto and a real ``qloop cloud run``:
the connections run hours of event time apart, and that must not look like offline units,
while a unit that really fell silent in the replayed data is still found."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.ingest import Traffic, make_traffic, worker_phase
from contract import protocol

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

DEVICES, BLOCKS = 400, 30  # 10-minute blocks: 5 h of data per unit, 12,000 messages
PUBLISHERS = 4


def _offline(workdir: Path) -> list[tuple[str, bool]]:
    with sqlite3.connect(workdir / "one-w0" / "tickets.db") as db:
        return db.execute(
            "SELECT device, active FROM findings WHERE fault = 'device_offline' ORDER BY id"
        ).fetchall()


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return make_traffic(DEVICES, BLOCKS)


def test_a_replay_over_four_connections_opens_no_offline_finding(traffic, tmp_path):
    result = worker_phase(traffic, tmp_path, PUBLISHERS, ["0-63"], "one")
    assert result["lost"] == 0
    assert _offline(tmp_path) == []


def test_a_unit_silent_in_the_replayed_data_is_still_found(traffic, tmp_path):
    silent = protocol.parse_topic(traffic.messages[0][0]).device
    kept, dropped = [], 0
    seen: dict[str, int] = {}
    for item in traffic.messages:
        device = protocol.parse_topic(item[0]).device
        seen[device] = seen.get(device, 0) + 1
        if device == silent and seen[device] > BLOCKS // 3:  # silent after its first 100 min
            dropped += 1
            continue
        kept.append(item)
    assert dropped > 0
    result = worker_phase(replace(traffic, messages=kept), tmp_path, PUBLISHERS, ["0-63"], "one")
    assert result["lost"] == 0
    assert _offline(tmp_path) == [(silent, True)]
