"""Shared fixtures (a real Mosquitto broker per test that needs one) and the test tiers.

Tiers, as markers: ``broker`` (Mosquitto), ``postgres`` (a throwaway PostgreSQL), ``tsdb``
(VictoriaMetrics or InfluxDB), ``e2e`` (several real processes), ``browser`` (Chromium) and
``slow`` (simulates days of a fleet). The server markers are added here from the fixtures a test
uses, and every test of a slow tier is also ``slow``, so ``pytest -m "not slow"`` is the fast
tier a developer runs in seconds; CI runs everything.
"""

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


_SERVER_FIXTURES = {
    "mosquitto": "broker",
    "pg_server": "postgres",
    "pg_url": "postgres",
    "victoria_metrics": "tsdb",
    "influxdb2": "tsdb",
}
_SLOW_TIERS = ("broker", "postgres", "tsdb", "e2e", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in _SERVER_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db_url") == "postgresql":
            item.add_marker("postgres")  # the database fixture's PostgreSQL variant
        if any(item.get_closest_marker(m) for m in _SLOW_TIERS):
            item.add_marker("slow")
