"""The ticketing application: the API and the pages over one service, built from settings by
:func:`create_app` (nothing at import time).

This module is the only one that knows both halves: ``api`` (``/api/v1``, ``/healthz``) and
``web`` (the HTML pages, which read the API's schemas) are mounted here, so neither imports the
other's wiring and the ticketing core imports neither.

While it runs, a background task calls :meth:`TicketService.check_sla` every ``sla_check_s`` (in a
worker thread, with the injected clock), so overdue tickets are flagged and escalated even when no
one is looking; several API processes may do this at once (the service makes it once-only). The
same task checks the quality targets (:meth:`~cloud.ticketing.board.Board.check_targets`): a
figure below target two weeks running is alerted once. The dashboard's :class:`Board` is in
``app.state.board`` for the API and the pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine

from cloud.feedback.model import load_classifier
from cloud.store.readback import InfluxTarget
from cloud.ticketing.api.router import mount_api
from cloud.ticketing.board import Board
from cloud.ticketing.context import Context
from cloud.ticketing.db import make_engine
from cloud.ticketing.escalation import Notifier
from cloud.ticketing.policy import TicketPolicy
from cloud.ticketing.service import TicketService
from cloud.ticketing.targets import Targets
from cloud.ticketing.web import mount_pages
from contract.clock import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiConfig:
    """What the API is told by whoever starts it: the ``qloop`` command builds it from its
    options (``qloop/settings.py``, where the defaults live)."""

    db: str  # SQLAlchemy URL of the ticket database
    policy: TicketPolicy
    api_token: str | None  # bootstraps an administrator token when set
    api_token_name: str
    sla_check_s: float  # how often the SLA clocks are checked
    journal: str | None  # the worker's journal: the charts' source without InfluxDB
    influx: InfluxTarget | None  # the InfluxDB the charts read, if any
    notifier: Notifier | None  # where overdue tickets are escalated, if anywhere
    feedback_model: str | None = None  # a retrained feedback classifier; None: the shipped one
    targets: Targets = field(default_factory=Targets)  # the quality targets of the dashboard


async def _check_sla_forever(service: TicketService, board: Board, every_s: float) -> None:
    while True:
        try:
            report = await asyncio.to_thread(service.check_sla)
            if report.flagged or report.failed:
                log.info("SLA: flagged %s, escalations failed %d", report.flagged, report.failed)
            await asyncio.to_thread(board.check_targets)
        except Exception:  # a database hiccup must not end the clock; try again next round
            log.exception("SLA check failed")
        await asyncio.sleep(every_s)


def create_app(
    config: ApiConfig,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The ticketing API and pages over ``config.db`` (or ``engine``), with the admin token
    bootstrapped (replacing the one bootstrapped before)."""
    owns_engine = engine is None
    engine = engine if engine is not None else make_engine(config.db)
    classifier = None
    if config.feedback_model:  # read now: a bad file is an error at start, not at first use
        model = load_classifier(Path(config.feedback_model))
        classifier = lambda: model  # noqa: E731
    service = TicketService(
        engine, clock or utcnow, config.policy, notifier=config.notifier, classifier=classifier
    )
    if config.api_token is not None:
        service.bootstrap_token(config.api_token, name=config.api_token_name)
    context = Context(engine, clock or utcnow, config.policy, notifier=config.notifier)
    board = Board(context, config.targets)  # the dashboard: its figures, targets and alerts

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_check_sla_forever(service, board, config.sla_check_s))
        # fit the shipped classifier in the background, so the first feedback does not wait
        warm = asyncio.get_running_loop().run_in_executor(None, service.classifier)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):  # reported where it is used
                await warm
            if owns_engine:
                engine.dispose()

    app = FastAPI(
        title="qloop ticketing",
        version="1",
        description="Quality tickets opened from field telemetry (CONTRACTS.md §4).",
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.service = service
    app.state.board = board
    mount_api(app)  # /api/v1 and /healthz (cloud/ticketing/api)
    # the HTML pages (cloud/ticketing/web); their charts read InfluxDB if set, else the journal
    mount_pages(app, service, journal=config.journal, influx=config.influx)
    return app
