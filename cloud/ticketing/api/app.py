"""The FastAPI application, built from settings by :func:`create_app` (nothing at import time).

While it runs, a background task calls :meth:`TicketService.check_sla` every ``sla_check_s`` (in a
worker thread, with the injected clock), so overdue tickets are flagged and escalated even when no
one is looking; several API processes may do this at once (the service makes it once-only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
from cloud.ticketing.web import mount_pages

API_PREFIX = "/api/v1"
log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _check_sla_forever(service: TicketService, every_s: float) -> None:
    while True:
        try:
            report = await asyncio.to_thread(service.check_sla)
            if report.flagged or report.failed:
                log.info("SLA: flagged %s, escalations failed %d", report.flagged, report.failed)
        except Exception:  # a database hiccup must not end the clock; try again next round
            log.exception("SLA check failed")
        await asyncio.sleep(every_s)


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The ticketing API over ``settings.db`` (or ``engine``), with the admin token bootstrapped."""
    owns_engine = engine is None
    engine = engine if engine is not None else make_engine(settings.db)
    service = TicketService(
        engine, clock or _utc_now, settings.ticket_policy(), notifier=settings.notifier()
    )
    if settings.api_token is not None:
        service.ensure_token(
            settings.api_token.get_secret_value(), name=settings.api_token_name, role="admin"
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_check_sla_forever(service, settings.sla_check_s))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
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

    mount_pages(app, service, settings)  # the HTML pages (cloud/ticketing/web)

    @app.get("/healthz", response_model=HealthPublic, tags=["health"])
    def healthz(svc: ServiceDep) -> HealthPublic:
        """Liveness and database reachability; needs no token."""
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return HealthPublic(status="ok")

    return app
