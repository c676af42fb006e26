"""The FastAPI application, built from settings by :func:`create_app` (nothing at import time)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine, text

from cloud.ticketing.api.deps import ServiceDep
from cloud.ticketing.api.routes import tickets, tokens
from cloud.ticketing.api.schemas import HealthPublic
from cloud.ticketing.db import make_engine
from cloud.ticketing.service import TicketService
from cloud.ticketing.settings import Settings

API_PREFIX = "/api/v1"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The ticketing API over ``settings.db`` (or ``engine``), with the admin token bootstrapped."""
    owns_engine = engine is None
    engine = engine if engine is not None else make_engine(settings.db)
    service = TicketService(engine, clock or _utc_now, settings.ticket_policy())
    if settings.api_token is not None:
        service.ensure_token(
            settings.api_token.get_secret_value(), name=settings.api_token_name, role="admin"
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_engine:
            engine.dispose()

    app = FastAPI(
        title="qloop ticketing",
        version="1",
        description="Quality tickets opened from field telemetry (CONTRACTS.md §4).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = service

    api = APIRouter(prefix=API_PREFIX)
    api.include_router(tickets.router)
    api.include_router(tokens.router)
    app.include_router(api)

    @app.get("/healthz", response_model=HealthPublic, tags=["health"])
    def healthz(svc: ServiceDep) -> HealthPublic:
        """Liveness and database reachability; needs no token."""
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return HealthPublic(status="ok")

    return app
