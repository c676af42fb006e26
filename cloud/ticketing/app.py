"""The ticketing application: the API and the pages over one service, built from settings by
:func:`create_app` (nothing at import time).

This module is the only one that knows both halves: ``api`` (``/api/v1``, ``/healthz``) and
``web`` (the HTML pages, which read the API's schemas) are mounted here, so neither imports the
other's wiring and the ticketing core imports neither.

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
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy import Engine

from cloud.ticketing.api.router import mount_api
from cloud.ticketing.db import make_engine
from cloud.ticketing.service import TicketService
from cloud.ticketing.settings import Settings
from cloud.ticketing.web import mount_pages
from contract.clock import utcnow

log = logging.getLogger(__name__)


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
    """The ticketing API and pages over ``settings.db`` (or ``engine``), with the admin token
    bootstrapped."""
    owns_engine = engine is None
    engine = engine if engine is not None else make_engine(settings.db)
    service = TicketService(
        engine, clock or utcnow, settings.ticket_policy(), notifier=settings.notifier()
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
    mount_api(app)  # /api/v1 and /healthz (cloud/ticketing/api)
    mount_pages(app, service, settings)  # the HTML pages (cloud/ticketing/web)
    return app
