"""The API's routes in one place: ``/api/v1`` (tickets, feedback, tokens, reports, the board)
and the health check."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cloud.ticketing.api.routes import board, feedback, health, measures, reports, tickets, tokens
from cloud.ticketing.api.routes.cases import router as cases_router

API_PREFIX = "/api/v1"
ECHO_CHARS = 200  # the most of a refused input an error answer repeats


def _echo(value: Any) -> Any:
    """A refused input as the answer may repeat it: JSON-safe (NaN and infinities as text) and
    short (a 10 MB comment comes back as its first characters and its size)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= ECHO_CHARS:
        return value if isinstance(value, str) else text
    return f"{text[:ECHO_CHARS]}… ({len(text):,} characters)"


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
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(tickets.router)
    api.include_router(feedback.router)
    api.include_router(measures.router)
    api.include_router(tokens.router)
    api.include_router(reports.router)
    api.include_router(board.router)
    api.include_router(cases_router)  # past cases
    app.include_router(api)
    app.include_router(health.router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
