"""The ticketing API's fixtures, shared by its tests and the pages' tests: an app over a fresh
SQLite database with an admin token, a client signed in with it, and a seeded fleet."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from cloud.anomaly.base import Finding
from cloud.ticketing.app import create_app
from cloud.ticketing.intake import DeviceRecord
from cloud.ticketing.service import TicketService
from qloop.settings import Settings

ADMIN = "admin-secret"
DAY = 86_400.0
T0 = 1_700_000_000.0


@pytest.fixture
def app(tmp_path):
    # no journal: the pages' charts must not read whatever var/journal.db the checkout holds
    settings = Settings(db=f"sqlite:///{tmp_path / 'api.db'}", api_token=ADMIN, journal=None)
    clock = lambda: datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC)  # noqa: E731
    return create_app(settings.api(), clock=clock)


@pytest.fixture
def client(app) -> TestClient:
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN}"
        yield c


@pytest.fixture
def seeded(app) -> TicketService:
    """Batch B0 of model M1 stands out (8/20; from its 4th unit, against the background rate) and
    7 isolated units elsewhere have device tickets."""
    svc: TicketService = app.state.service
    for b in range(4):
        for u in range(20):
            svc.register_device(
                DeviceRecord(f"ac-{b}-{u:02d}", "air_conditioner", "M1", f"B{b}", "SN", "1.0",
                             T0, T0 + 30 * DAY)
            )  # fmt: skip
    for u in range(8):
        svc.record_finding(Finding(f"ac-0-{u:02d}", "cooling_decline", T0 + 30 * DAY, T0, 0.9))
    for u in range(7):
        svc.record_finding(Finding(f"ac-{1 + u % 3}-{u:02d}", "noise_rise", T0 + 30 * DAY, T0, 0.8))
    return svc


def signed_in(app, role: str) -> TestClient:
    """A browser-like client signed in through the login form with a token of ``role``."""
    token = app.state.service.create_token(name=f"{role}-1", role=role)
    client = TestClient(app, base_url="http://qloop.test")
    r = client.post("/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303
    return client


@pytest.fixture
def cs(app):
    """Customer-service staff signed in to the pages."""
    with signed_in(app, "service") as c:
        yield c


@pytest.fixture
def viewer(app):
    with signed_in(app, "viewer") as c:
        yield c


@pytest.fixture
def engineer(app):
    with signed_in(app, "engineer") as c:
        yield c
