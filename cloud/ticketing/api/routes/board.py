"""``/api/v1/board``: the dashboard's data (``cloud/ticketing/board.py``), for any signed-in
role, narrowed by model, category and department."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from cloud.ticketing.api.board_schemas import BoardPublic, TicketCategory
from cloud.ticketing.api.deps import CurrentUser
from cloud.ticketing.api.routes.tickets import _error
from cloud.ticketing.api.schemas import Department
from cloud.ticketing.board import Board, Filters

router = APIRouter(tags=["board"], responses={401: _error("missing or invalid bearer token")})


def get_board(request: Request) -> Board:
    return request.app.state.board


BoardDep = Annotated[Board, Depends(get_board)]


@router.get("/board", response_model=BoardPublic)
def board(
    dashboard: BoardDep,
    _user: CurrentUser,
    model: Annotated[str | None, Query(max_length=64, description="drill down to a model")] = None,
    category: TicketCategory | None = None,
    department: Department | None = None,
    limit: Annotated[int, Query(ge=1, le=500, description="open tickets listed at most")] = 50,
) -> BoardPublic:
    """Open tickets in triage order (severity III first, then the soonest due, so the overdue
    first) and counted by department and severity; this month's collection, completion,
    satisfaction and recurrence per department against their targets; the batches with open
    batch tickets; the alerts of figures below target two complete ISO weeks running."""
    filters = Filters(
        model=model or None,
        category=None if category is None else category.value,
        department=None if department is None else department.value,
    )
    return BoardPublic.model_validate(dashboard.view(filters, limit=limit).as_dict())
