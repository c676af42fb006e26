"""``/healthz`` (liveness and database reachability, no token), ``/readyz`` (ready to serve:
the database answers and its schema is the one this code knows; no token, for load balancers and
orchestrators) and ``/metrics`` (Prometheus; any valid token, since ticket counts are business
data: Prometheus sends it with ``authorization: {credentials: …}`` in its scrape config)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cloud.ticketing.api.deps import CurrentUser, ServiceDep
from cloud.ticketing.api.refusals import documented
from cloud.ticketing.api.schemas import HealthPublic
from cloud.ticketing.db import schema_head, schema_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic)
def healthz(svc: ServiceDep) -> HealthPublic:
    """Liveness and database reachability; needs no token."""
    with svc.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return HealthPublic(status="ok")


@router.get(
    "/readyz",
    response_model=HealthPublic,
    responses={503: documented("not ready: the database does not answer or its schema differs")},
)
def readyz(svc: ServiceDep) -> Response:
    """Ready to serve: the database answers and is at the schema revision this code expects (a
    newer qloop may have upgraded it: then this one is not ready, rather than half-working)."""
    head = schema_head()
    try:
        current = schema_revision(svc.engine)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return JSONResponse({"detail": f"the database does not answer: {reason}"}, status_code=503)
    if current != head:
        detail = f"the database schema is at {current}, this qloop expects {head}"
        return JSONResponse({"detail": detail}, status_code=503)
    return JSONResponse(HealthPublic(status="ready").model_dump())


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        401: documented("missing, invalid or expired bearer token"),
    },
)
def metrics(request: Request, _user: CurrentUser) -> Response:
    """The API's metrics in Prometheus' text format (``cloud/ticketing/api/metrics.py``)."""
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
