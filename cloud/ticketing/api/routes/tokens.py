"""``/api/v1/tokens``: administrators hand out, list and revoke tokens for people and scripts."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Response, status

from cloud.ticketing.api.deps import Admin, ServiceDep
from cloud.ticketing.api.refusals import documented as _error
from cloud.ticketing.api.refusals import unprocessable
from cloud.ticketing.api.token_schemas import (
    TokenCreate,
    TokenInfoPublic,
    TokenPublic,
    TokensPublic,
)
from cloud.ticketing.tokens import InvalidExpiry, TokenNameTaken, TokenNotFound

router = APIRouter(
    prefix="/tokens",
    tags=["tokens"],
    responses={
        401: _error("missing, invalid or expired bearer token"),
        403: _error("the token's role may not manage tokens (needs admin)"),
    },
)


@router.post("", response_model=TokenPublic, status_code=201, responses={409: _error("name taken")})
def create_token(body: TokenCreate, service: ServiceDep, _admin: Admin) -> TokenPublic:
    """A new token with a role: viewer reads; service also files feedback; engineer also
    changes tickets; admin also manages tokens. Optionally it expires (``expires_at``, or
    ``ttl_s`` seconds from now); its name must be unique."""
    ttl = None if body.ttl_s is None else timedelta(seconds=body.ttl_s)
    try:
        token = service.create_token(
            name=body.name, role=body.role, expires_at=body.expires_at, ttl=ttl
        )
    except TokenNameTaken as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except InvalidExpiry as exc:
        raise unprocessable(exc.field, str(exc)) from exc
    (info,) = service.list_tokens(name=body.name)
    return TokenPublic(name=body.name, role=body.role, token=token, expires_at=info.expires_at)


@router.get("", response_model=TokensPublic)
def list_tokens(service: ServiceDep, _admin: Admin) -> TokensPublic:
    """Every token by name, with its role, creation and expiry (expired ones until revoked);
    never the token itself."""
    return TokensPublic(items=[TokenInfoPublic.model_validate(t) for t in service.list_tokens()])


@router.delete("/{name:path}", status_code=204, responses={404: _error("no token of that name")})
def revoke_token(name: str, service: ServiceDep, _admin: Admin) -> Response:
    """Revoke the token named ``name`` at once: the API refuses it and its page sessions end.
    (The bootstrap token comes back when the API restarts with it in QLOOP_API_TOKEN.)"""
    try:
        service.revoke_token(name)
    except TokenNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    return Response(status_code=204)
