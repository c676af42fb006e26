"""Corrective and preventive measures and the cause analysis: on a ticket
(``/tickets/{id}/measures``, ``/tickets/{id}/cause``), and across tickets for a department's
to-do list and figures (``/measures``, ``/measures/figures``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.ticketing.api.deps import CurrentUser, Engineer, ServiceDep
from cloud.ticketing.api.refusals import answering
from cloud.ticketing.api.routes.tickets import CHANGES, _error
from cloud.ticketing.api.schemas import (
    CauseCreate,
    Department,
    DepartmentFiguresPublic,
    MeasureCreate,
    MeasurePublic,
    MeasureStatus,
    MeasureUpdate,
    TicketDetailPublic,
)

router = APIRouter(tags=["measures"], responses={401: _error("missing or invalid bearer token")})
REFUSED = {
    422: _error(
        "a field that is wrong, or a move the measure's status does not allow", invalid=True
    )
}


@router.post(
    "/tickets/{ticket_id}/measures",
    response_model=TicketDetailPublic,
    status_code=201,
    responses={**CHANGES, **REFUSED},
)
def add_measure(
    ticket_id: str, body: MeasureCreate, service: ServiceDep, user: Engineer
) -> TicketDetailPublic:
    """Add a corrective (short-term) or preventive (long-term) measure with its owner,
    department and due date."""
    with answering():
        ticket = service.add_measure(
            ticket_id,
            term=body.term.value,
            kind=body.kind,
            action=body.action,
            owner=body.owner,
            department=body.department.value,
            due_at=body.due_at,
            actor=user.name,
        )
    return TicketDetailPublic.model_validate(ticket)


@router.patch(
    "/tickets/{ticket_id}/measures/{measure_id}",
    response_model=TicketDetailPublic,
    responses={**CHANGES, **REFUSED},
)
def update_measure(
    ticket_id: str, measure_id: int, body: MeasureUpdate, service: ServiceDep, user: Engineer
) -> TicketDetailPublic:
    """Move a measure on: planned → in_progress → done, or → cancelled (done and cancelled
    need a record of what was done)."""
    with answering():
        ticket = service.update_measure(
            ticket_id, measure_id, status=body.status.value, record=body.record, actor=user.name
        )
    return TicketDetailPublic.model_validate(ticket)


@router.put("/tickets/{ticket_id}/cause", response_model=TicketDetailPublic, responses=CHANGES)
def set_cause(
    ticket_id: str, body: CauseCreate, service: ServiceDep, user: Engineer
) -> TicketDetailPublic:
    """Record the cause analysis (5-Why chain, fishbone branches, summary); replaces any
    earlier one, which stays in the history."""
    with answering():
        ticket = service.set_cause(
            ticket_id,
            five_why=body.five_why,
            fishbone={b.value: causes for b, causes in body.fishbone.items()},
            summary=body.summary,
            actor=user.name,
        )
    return TicketDetailPublic.model_validate(ticket)


@router.get("/measures", response_model=list[MeasurePublic])
def list_measures(
    service: ServiceDep,
    _user: CurrentUser,
    department: Department | None = None,
    status_: Annotated[MeasureStatus | None, Query(alias="status")] = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[MeasurePublic]:
    """Measures across tickets, soonest due first (a department's to-do list)."""
    rows = service.measures(
        department=None if department is None else department.value,
        status=None if status_ is None else status_.value,
        overdue=overdue,
        limit=limit,
    )
    return [MeasurePublic.model_validate(r) for r in rows]


@router.get("/measures/figures", response_model=list[DepartmentFiguresPublic])
def measure_figures(service: ServiceDep, _user: CurrentUser) -> list[DepartmentFiguresPublic]:
    """Per department: measures, done, open past due, completion rate and milestone delay
    rate."""
    return [
        DepartmentFiguresPublic(department=d, **f.as_dict())
        for d, f in service.measure_figures().items()
    ]
