"""Shared fixtures: a real Mosquitto broker per test that needs one."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from qloop.broker import BrokerProcess, find_mosquitto, start_broker

pytest_plugins = ["tests.pg", "tests.vm"]  # throwaway PostgreSQL and VictoriaMetrics servers


@pytest.fixture
def mosquitto(tmp_path) -> Iterator[BrokerProcess]:
    """A real Mosquitto on a free loopback port, with persistence in the test's directory."""
    if find_mosquitto() is None:
        msg = "Mosquitto is not installed: run scripts/setup.sh --test (apt-get install mosquitto)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    broker = start_broker(tmp_path / "broker")
    assert broker.kind == "mosquitto"
    yield broker
    broker.kill()
