"""Past cases: ``/cases?q=`` searches the closed tickets whose problem was solved (Chinese or
English); ``/tickets/{id}/similar`` lists those most like a ticket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.ticketing.api.case_schemas import CasePublic, CasesPublic
from cloud.ticketing.api.deps import CurrentUser, ServiceDep
from cloud.ticketing.api.routes.tickets import NOT_FOUND, _error, _not_found
from cloud.ticketing.errors import TicketNotFound

router = APIRouter(tags=["cases"], responses={401: _error("missing or invalid bearer token")})
MAX_QUERY = 500
QueryText = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_QUERY,
        pattern=r"\S",
        description="words of the problem, its cause or its measures, Chinese or English",
        examples=["不制冷 冷媒泄漏"],
    ),
]


@router.get(
    "/cases",
    response_model=CasesPublic,
    responses={422: _error("an empty query, or a bad limit", invalid=True)},
)
def search_cases(
    service: ServiceDep,
    _user: CurrentUser,
    q: QueryText,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> CasesPublic:
    """The past cases that best match ``q``, best first."""
    cases = service.search_cases(q, k=limit)
    return CasesPublic(items=[CasePublic.model_validate(c) for c in cases])


@router.get("/tickets/{ticket_id}/similar", response_model=CasesPublic, responses=NOT_FOUND)
def similar_cases(
    ticket_id: str,
    service: ServiceDep,
    _user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> CasesPublic:
    """The past cases most like the ticket (by its words, fault, cause and measures), best
    first; never the ticket itself."""
    try:
        cases = service.similar_cases(ticket_id, k=limit)
    except TicketNotFound as exc:
        raise _not_found(ticket_id) from exc
    return CasesPublic(items=[CasePublic.model_validate(c) for c in cases])
