"""The API's routes in one place: ``/api/v1`` (tickets, feedback, tokens, reports, the board)
and the health check."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from cloud.ticketing.api.limits import MAX_BODY_BYTES, BodyLimit, too_large
from cloud.ticketing.api.metrics import RequestMetrics, TicketCollector
from cloud.ticketing.api.routes import (
    board,
    devices,
    feedback,
    health,
    measures,
    reports,
    tickets,
    tokens,
)
from cloud.ticketing.api.routes.cases import router as cases_router
from cloud.ticketing.api.schemas import ErrorPublic

API_PREFIX = "/api/v1"
ECHO_CHARS = 200  # the most of a refused input an error answer repeats


def _echo(value: Any) -> Any:
    """A refused input as the answer may repeat it: JSON-safe (NaN and infinities, lone
    surrogates as text) and short (a 10 MB comment or a 400-digit number comes back as its first
    characters and its size)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bool | float) or value is None:
        return value
    if isinstance(value, int) and abs(value) < 10**ECHO_CHARS:
        return value
    text = value if isinstance(value, str) else repr(value)
    if len(text) > ECHO_CHARS:
        text = f"{text[:ECHO_CHARS]}… ({len(text):,} characters)"
    return text.encode("utf-8", "backslashreplace").decode()  # a lone surrogate as \ud800


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 answer, in the shape the OpenAPI document gives it, with every echoed
    input made safe: its default handler fails with a 500 on a NaN in the body and repeats
    the whole input however large it is."""
    errors = []
    for error in exc.errors():
        error = dict(error)
        if "input" in error:
            error["input"] = _echo(error["input"])
        if "ctx" in error:
            error["ctx"] = {k: _echo(v) for k, v in error["ctx"].items()}
        errors.append(error)
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})


def mount_api(app: FastAPI) -> None:
    """Serve the API from ``app`` (call once in ``create_app``); the routes find the service in
    ``app.state.service``."""
    api = APIRouter(
        prefix=API_PREFIX,
        responses={
            400: {"model": ErrorPublic, "description": "a body that cannot be read as JSON"},
            413: {"model": ErrorPublic, "description": too_large(MAX_BODY_BYTES)},
        },
    )
    api.include_router(tickets.router)
    api.include_router(feedback.router)
    api.include_router(measures.router)
    api.include_router(tokens.router)
    api.include_router(reports.router)
    api.include_router(board.router)
    api.include_router(cases_router)  # past cases
    api.include_router(devices.router)  # identity changes held for a person
    app.include_router(api)
    app.include_router(health.router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(BodyLimit)  # every request's body, the pages' too
    app.state.metrics = registry = CollectorRegistry()
    service = app.state.service
    registry.register(TicketCollector(service.engine, service.now))
    app.add_middleware(RequestMetrics, registry=registry)  # outermost: times everything
