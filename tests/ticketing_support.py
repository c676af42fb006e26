"""Fixtures and builders shared by the ticketing tests: a settable clock, a fleet, findings, and a
ticket database on SQLite or PostgreSQL (``db_url`` is parametrised over both)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from cloud.anomaly.base import Finding
from cloud.ticketing.db import make_engine
from cloud.ticketing.intake import DeviceRecord
from cloud.ticketing.service import TicketService

MODEL = "KFR-35GW"
DAY = 86_400.0
HOUR = 3_600.0
T0 = 1_700_000_000.0  # units went into the field here
NOW_TS = T0 + 30 * DAY  # event time of the findings


class Inbox:
    """A notifier that keeps what it is sent."""

    max_attempts = 3
    retry_base = timedelta(minutes=1)
    retry_cap = timedelta(hours=1)

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send(self, payload) -> None:
        self.sent.append(dict(payload))


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tickets.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def svc(engine: Engine, clock: Clock) -> TicketService:
    return TicketService(engine, clock)


def dev_id(batch: int, unit: int) -> str:
    return f"ac-{batch}-{unit:02d}"


def record(device: str, batch: str, model: str = MODEL) -> DeviceRecord:
    return DeviceRecord(
        device, "air_conditioner", model, batch, f"SN-{device}", "2.3.0", T0, NOW_TS
    )


def register_fleet(svc: TicketService, batches: int = 4, units: int = 20) -> None:
    for b in range(batches):
        for u in range(units):
            svc.register_device(record(dev_id(b, u), f"B{b}"))


def finding(
    device: str, fault: str = "cooling_decline", ts: float = NOW_TS, active: bool = True
) -> Finding:
    return Finding(device, fault, ts, ts - DAY, 0.9 if active else 0.0, {"dt_drop_c": 2.5}, active)


def open_tickets(svc: TicketService, **filters: str) -> list:
    return [t for t in svc.tickets(limit=500, **filters).items if t.status != "closed"]


def run_together(target: Callable[..., object], args: list[tuple]) -> list[BaseException]:
    """Run ``target(*a)`` for every ``a`` in its own thread, all released at once; the errors."""
    barrier = threading.Barrier(len(args))
    errors: list[BaseException] = []

    def run(*a: object) -> None:
        try:
            barrier.wait()
            target(*a)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=a) for a in args]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors
