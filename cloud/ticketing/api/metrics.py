"""The API's Prometheus metrics (prometheus-client), served at ``/metrics``.

Two kinds, in one registry per app (so two apps in one process, as in the tests, do not mix):

- **Requests** (:class:`RequestMetrics`, a pure ASGI middleware): a counter by method, route
  template (``/api/v1/tickets/{ticket_id}``, never the raw path, so ids do not make series) and
  status, and a latency histogram by route.
- **The ticket database as it stands** (:class:`TicketCollector`, read at each scrape): open
  tickets by status, severity and lead department, tickets past their SLA deadline, escalations
  and target alerts still to be delivered, identity changes waiting for a person, and the
  fleet's lost data (seqs that never came, and units with any, as the workers handed them
  over; ``device_view.py``). One grouped query each; a scrape every 15 s is a handful of
  indexed queries.

The worker's counters (readings, duplicates, dead letters, lost seqs, queue depth, InfluxDB
writes) are its own process's; see ``cloud/worker_metrics.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud.ticketing.device_view import lost_seqs_total
from cloud.ticketing.models import DeviceChange, SlaEscalation, TargetAlert, Ticket

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class TicketCollector(Collector):
    """Gauges of the ticket database, read when Prometheus scrapes."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self._clock()
        by_state = GaugeMetricFamily(
            "qloop_tickets", "tickets not closed, by status, severity and lead department",
            labels=["status", "severity", "department"],
        )  # fmt: skip
        overdue = GaugeMetricFamily(
            "qloop_tickets_overdue",
            "tickets not closed past their SLA deadline",
            labels=["severity"],
        )
        outbox = GaugeMetricFamily(
            "qloop_notifications_pending", "escalations and target alerts not delivered yet",
            labels=["kind"],
        )  # fmt: skip
        changes = GaugeMetricFamily(
            "qloop_device_changes_pending",
            "births announcing another identity, waiting for a person",
        )
        lost = GaugeMetricFamily(
            "qloop_lost_seqs", "seqs of the fleet's units that never came in an accepted message"
        )
        lost_units = GaugeMetricFamily(
            "qloop_devices_with_lost_seqs", "units with at least one seq that never came"
        )
        open_ = Ticket.status != "closed"
        with Session(self._engine) as s:
            for status, severity, department, n in s.execute(
                select(Ticket.status, Ticket.severity, Ticket.department, func.count())
                .where(open_)
                .group_by(Ticket.status, Ticket.severity, Ticket.department)
            ):
                by_state.add_metric([status, severity, department], n)
            late = dict(
                s.execute(
                    select(Ticket.severity, func.count())
                    .where(open_, Ticket.due_at < now)
                    .group_by(Ticket.severity)
                ).all()
            )
            for severity in ("I", "II", "III"):
                overdue.add_metric([severity], late.get(severity, 0))
            for kind, table in (("escalation", SlaEscalation), ("target_alert", TargetAlert)):
                pending = (
                    select(func.count()).select_from(table).where(table.delivered_at.is_(None))
                )
                outbox.add_metric([kind], s.scalar(pending) or 0)
            held = select(func.count()).select_from(DeviceChange)
            changes.add_metric([], s.scalar(held.where(DeviceChange.status == "pending")) or 0)
            total, units = lost_seqs_total(s)
            lost.add_metric([], total)
            lost_units.add_metric([], units)
        yield from (by_state, overdue, outbox, changes, lost, lost_units)


def template(scope: Scope) -> str:
    """The matched route's path template with the prefix it was included under
    (``/api/v1/tickets/{ticket_id}``; FastAPI's route knows its path within its router only),
    or "unmatched".

    >>> class R: path = "/tickets/{ticket_id}"
    >>> template({"route": R(), "path": "/api/v1/tickets/PF1"}), template({"path": "/x"})
    ('/api/v1/tickets/{ticket_id}', 'unmatched')
    """
    path = getattr(scope.get("route"), "path", None)
    if not path:
        return "unmatched"
    segments = scope["path"].rstrip("/").split("/")
    depth = len(path.rstrip("/").split("/"))
    prefix = "/".join(segments[: max(1, len(segments) - depth + 1)])
    return (prefix + path) if prefix else path


class RequestMetrics:
    """Counts and times every HTTP request by route template (pure ASGI: nothing buffered)."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "qloop_api_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=registry,
        )  # fmt: skip
        self.seconds = Histogram(
            "qloop_api_request_seconds", "time to answer", ["route"], buckets=BUCKETS,
            registry=registry,
        )  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the answer started

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = template(scope)
            self.requests.labels(scope["method"], route, str(status)).inc()
            self.seconds.labels(route).observe(time.perf_counter() - started)
