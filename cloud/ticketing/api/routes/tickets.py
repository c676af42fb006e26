"""``/api/v1/tickets``: list, read, move along the lifecycle, comment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from cloud.ticketing.api.deps import CurrentUser, Engineer, ServiceDep
from cloud.ticketing.api.schemas import (
    CommentCreate,
    Scope,
    Severity,
    TicketDetailPublic,
    TicketPublic,
    TicketsPublic,
    TransitionCreate,
)
from cloud.ticketing.lifecycle import IllegalTransition, Status
from cloud.ticketing.service import InvalidCursor, TicketConflict, TicketNotFound

router = APIRouter(prefix="/tickets", tags=["tickets"])

MAX_LIMIT = 500


def _unprocessable(field: str, message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors."""
    detail = [{"type": "value_error", "loc": ["query", field], "msg": message}]
    return HTTPException(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


def _not_found(ticket_id: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"no ticket {ticket_id}")


@router.get("", response_model=TicketsPublic)
def list_tickets(
    service: ServiceDep,
    _user: CurrentUser,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    scope: Scope | None = None,
    model: str | None = None,
    batch: str | None = None,
    fault: str | None = None,
    severity: Severity | None = None,
    device: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(description="'next' of the previous page")] = None,
) -> TicketsPublic:
    """Tickets, newest first."""
    try:
        page = service.tickets(
            status=status_,
            scope=scope,
            model=model,
            batch=batch,
            fault=fault,
            severity=severity,
            device=device,
            limit=limit,
            cursor=cursor,
        )
    except InvalidCursor as exc:
        raise _unprocessable("cursor", str(exc)) from exc
    items = [TicketPublic.model_validate(t) for t in page.items]
    return TicketsPublic(items=items, next=page.next)


@router.get("/{ticket_id}", response_model=TicketDetailPublic)
def read_ticket(ticket_id: str, service: ServiceDep, _user: CurrentUser) -> TicketDetailPublic:
    """One ticket with its full evidence and history."""
    ticket = service.get_ticket(ticket_id)
    if ticket is None:
        raise _not_found(ticket_id)
    return TicketDetailPublic.model_validate(ticket)


@router.post("/{ticket_id}/transitions", response_model=TicketDetailPublic)
def transition_ticket(
    ticket_id: str, body: TransitionCreate, service: ServiceDep, user: Engineer
) -> TicketDetailPublic:
    """Move the ticket along its lifecycle (409 names the legal moves)."""
    try:
        ticket = service.transition(ticket_id, body.to, actor=user.name, note=body.note)
    except TicketNotFound as exc:
        raise _not_found(ticket_id) from exc
    except (IllegalTransition, TicketConflict) as exc:
        raise HTTPException(status_code=status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    return TicketDetailPublic.model_validate(ticket)


@router.post("/{ticket_id}/comments", response_model=TicketDetailPublic, status_code=201)
def comment_ticket(
    ticket_id: str, body: CommentCreate, service: ServiceDep, user: Engineer
) -> TicketDetailPublic:
    """Add a comment to the ticket's history."""
    try:
        ticket = service.comment(ticket_id, body.text, actor=user.name)
    except TicketNotFound as exc:
        raise _not_found(ticket_id) from exc
    return TicketDetailPublic.model_validate(ticket)
