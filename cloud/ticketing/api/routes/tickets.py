"""``/api/v1/tickets``: list, read, move along the lifecycle, comment, record the fix, follow up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from cloud.ticketing.api.deps import CurrentUser, CustomerService, Engineer, ServiceDep
from cloud.ticketing.api.refusals import answering, unprocessable
from cloud.ticketing.api.refusals import documented as _error
from cloud.ticketing.api.schemas import (
    Channel,
    CheckCreate,
    CommentCreate,
    FixCreate,
    FollowupCreate,
    Scope,
    Severity,
    Source,
    TicketDetailPublic,
    TicketPublic,
    TicketsPublic,
    TransitionCreate,
)
from cloud.ticketing.errors import InvalidCursor
from cloud.ticketing.lifecycle import Status

router = APIRouter(
    prefix="/tickets",
    tags=["tickets"],
    responses={401: _error("missing or invalid bearer token")},
)
NOT_FOUND = {404: _error("no such ticket")}
CHANGES = {
    **NOT_FOUND,
    403: _error("the token's role may not change tickets (needs engineer)"),
}

MAX_LIMIT = 500


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
    source: Source | None = None,
    channel: Channel | None = None,
    parent: str | None = None,
    needs_triage: Annotated[
        bool | None, Query(description="true: the triage queue of feedback to confirm")
    ] = None,
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
            source=source,
            channel=channel,
            parent=parent,
            needs_triage=needs_triage,
            limit=limit,
            cursor=cursor,
        )
    except InvalidCursor as exc:
        raise unprocessable("cursor", str(exc), "query") from exc
    items = [TicketPublic.model_validate(t) for t in page.items]
    return TicketsPublic(items=items, next=page.next)


@router.get("/{ticket_id}", response_model=TicketDetailPublic, responses=NOT_FOUND)
def read_ticket(ticket_id: str, service: ServiceDep, _user: CurrentUser) -> TicketDetailPublic:
    """One ticket with its full evidence, history and latest fix with its verification."""
    ticket = service.get_ticket(ticket_id)
    if ticket is None:
        raise _not_found(ticket_id)
    return TicketDetailPublic.model_validate(ticket)


@router.post(
    "/{ticket_id}/transitions",
    response_model=TicketDetailPublic,
    responses={**CHANGES, 409: _error("not a legal move from the ticket's status")},
)
def transition_ticket(
    ticket_id: str, body: TransitionCreate, service: ServiceDep, user: Engineer
) -> TicketDetailPublic:
    """Move the ticket along its lifecycle (409 names the legal moves)."""
    with answering():
        ticket = service.transition(ticket_id, body.to, actor=user.name, note=body.note)
    return TicketDetailPublic.model_validate(ticket)


@router.post(
    "/{ticket_id}/comments", response_model=TicketDetailPublic, status_code=201, responses=CHANGES
)
def comment_ticket(
    ticket_id: str, body: CommentCreate, service: ServiceDep, user: Engineer
) -> TicketDetailPublic:
    """Add a comment to the ticket's history."""
    with answering():
        ticket = service.comment(ticket_id, body.text, actor=user.name)
    return TicketDetailPublic.model_validate(ticket)


@router.post(
    "/{ticket_id}/fix",
    response_model=TicketDetailPublic,
    status_code=201,
    responses={
        **CHANGES,
        409: _error("the ticket is not in_progress or resolved"),
        422: _error("units outside the ticket, or a bad effective_from", invalid=True),
    },
)
def record_fix(
    ticket_id: str, body: FixCreate, service: ServiceDep, user: Engineer
) -> TicketDetailPublic:
    """Record the fix (what, which units, effective from which event time): the ticket goes to
    verifying, and the service closes it when every fixed unit's fault clears after
    ``effective_from``, or reopens it when one shows the fault again or never clears."""
    with answering():
        ticket = service.record_fix(
            ticket_id,
            description=body.description,
            effective_from=body.effective_ts(),
            devices=body.devices,
            actor=user.name,
        )
    return TicketDetailPublic.model_validate(ticket)


@router.post(
    "/{ticket_id}/followups",
    response_model=TicketDetailPublic,
    status_code=201,
    responses={
        **NOT_FOUND,
        403: _error("the token's role may not record follow-ups (needs service or higher)"),
        409: _error("a re-dispatch would reopen a key that has another open ticket"),
    },
)
def follow_up(
    ticket_id: str, body: FollowupCreate, service: ServiceDep, user: CustomerService
) -> TicketDetailPublic:
    """Record a customer follow-up (the callback): with a score, 4 or 5 closes a ticket in
    ``callback`` and 3 or lower re-dispatches a ticket whose fix was recorded (reopened, back to
    its department, the reason in its history)."""
    with answering():
        ticket = service.follow_up(
            ticket_id, body.note, customer=body.customer, actor=user.name, score=body.verdict()
        )
    return TicketDetailPublic.model_validate(ticket)


@router.post(
    "/{ticket_id}/verification",
    response_model=TicketDetailPublic,
    responses={
        **CHANGES,
        409: _error("the ticket is not verifying, or its fix is judged by its units' data"),
    },
)
def check_fix(
    ticket_id: str, body: CheckCreate, service: ServiceDep, user: Engineer
) -> TicketDetailPublic:
    """The quality engineer's verdict on a fix with no units' data: effective (closes, or goes
    to the customer's callback), not_effective (reopened) or needs_work (back to
    in_progress)."""
    with answering():
        ticket = service.check_fix(
            ticket_id, result=body.result.value, note=body.note, actor=user.name
        )
    return TicketDetailPublic.model_validate(ticket)
