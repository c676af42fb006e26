"""Dependencies as ``Annotated`` aliases: the session, the service, the caller and its role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from cloud.ticketing.service import TicketService
from cloud.ticketing.tokens import Principal, TokenRefused

_bearer = HTTPBearer(auto_error=False, description="an API token")


def get_service(request: Request) -> TicketService:
    return request.app.state.service


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.service.engine) as session:
        yield session


ServiceDep = Annotated[TicketService, Depends(get_service)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_current_user(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller by its bearer token; 401 saying why (none, unknown, expired) otherwise."""
    try:
        if credentials is None:
            raise TokenRefused("missing 'Authorization: Bearer <token>' header")
        return service.check_token(credentials.credentials)
    except TokenRefused as exc:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=str(exc),
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc


CurrentUser = Annotated[Principal, Depends(get_current_user)]


def require_role(role: str) -> Callable[[Principal], Principal]:
    """A dependency that lets through callers with at least ``role``, else 403."""

    def check(user: CurrentUser) -> Principal:
        if not user.can(role):
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"role '{user.role}' may not do this; needs '{role}' or higher",
            )
        return user

    return check


CustomerService = Annotated[Principal, Depends(require_role("service"))]
Engineer = Annotated[Principal, Depends(require_role("engineer"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
