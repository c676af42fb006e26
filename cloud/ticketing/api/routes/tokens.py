"""``/api/v1/tokens``: administrators hand out tokens for people and scripts."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.ticketing.api.deps import Admin, ServiceDep
from cloud.ticketing.api.schemas import TokenCreate, TokenPublic

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.post("", response_model=TokenPublic, status_code=201)
def create_token(body: TokenCreate, service: ServiceDep, _admin: Admin) -> TokenPublic:
    """A new token with a role: viewer reads; service also files feedback; engineer also
    changes tickets; admin also hands out tokens."""
    token = service.create_token(name=body.name, role=body.role)
    return TokenPublic(name=body.name, role=body.role, token=token)
