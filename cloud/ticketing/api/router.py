"""The API's routes in one place: ``/api/v1`` (tickets, tokens) and the health check."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from cloud.ticketing.api.routes import health, tickets, tokens

API_PREFIX = "/api/v1"


def mount_api(app: FastAPI) -> None:
    """Serve the API from ``app`` (call once in ``create_app``); the routes find the service in
    ``app.state.service``."""
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(tickets.router)
    api.include_router(tokens.router)
    app.include_router(api)
    app.include_router(health.router)
