"""Schemathesis against the running API (in-process ASGI): requests generated from the OpenAPI
document, valid and invalid, with an administrator's token, a viewer's and none; no answer is a
5xx, and every answer (status, content type, body) is one the document describes — the 400, 401,
403, 404, 409, 413 and 422 shapes included.

Marked ``fuzz`` so it can be deselected (``-m 'not fuzz'``); the suite runs it. The number of
examples is bounded so a run takes well under a minute.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cloud.anomaly.base import Finding
from cloud.ticketing.app import create_app
from cloud.ticketing.intake import DeviceRecord
from cloud.ticketing.tokens import TokenNameTaken
from qloop.settings import Settings

pytestmark = pytest.mark.fuzz

ADMIN = "admin-secret"
VIEWER = "viewer-secret"
T0 = 1_700_000_000.0
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = {"admin": 250, "viewer": 60, "none": 40}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    db = tmp_path_factory.mktemp("fuzz") / "api.db"
    clock = lambda: datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC)  # noqa: E731
    app = create_app(Settings(db=f"sqlite:///{db}", api_token=ADMIN).api(), clock=clock)
    svc = app.state.service
    for u in range(10):
        svc.register_device(
            DeviceRecord(f"ac-{u}", "air_conditioner", "M1", "B0", "SN", "1.0", T0, T0 + 9e5)
        )
    for u in range(4):
        svc.record_finding(Finding(f"ac-{u}", "cooling_decline", T0 + 9e5, T0, 0.9))
    return app


@pytest.fixture(scope="module")
def schema(app):
    with TestClient(app):  # run the lifespan once, as a server would
        pass
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("caller", list(EXAMPLES))
def test_the_api_answers_as_its_openapi_document_says(app, schema, mode, caller) -> None:
    service = app.state.service
    token = {"admin": ADMIN, "viewer": VIEWER, "none": None}[caller]
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    @settings(
        max_examples=EXAMPLES[caller],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=schema.as_strategy(generation_mode=mode))
    def run(case) -> None:
        # a generated DELETE /tokens/{name} may revoke them: make sure they are there
        service.bootstrap_token(ADMIN, name="admin")
        with contextlib.suppress(TokenNameTaken):  # a generated token took the name: no viewer
            service.ensure_token(VIEWER, name="viewer", role="viewer")
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
