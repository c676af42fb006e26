"""``/healthz``: liveness and database reachability; needs no token."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from cloud.ticketing.api.deps import ServiceDep
from cloud.ticketing.api.schemas import HealthPublic

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic)
def healthz(svc: ServiceDep) -> HealthPublic:
    """Liveness and database reachability; needs no token."""
    with svc.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return HealthPublic(status="ok")
