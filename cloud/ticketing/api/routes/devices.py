"""``/api/v1/devices/changes``: births that announced another product, model or batch than a
unit had, held for a person (``cloud/ticketing/identity.py``); engineers accept or reject them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from cloud.ticketing.api.deps import CurrentUser, Engineer, ServiceDep
from cloud.ticketing.api.device_schemas import (
    ChangeStatus,
    DeviceChangeDecide,
    DeviceChangePublic,
    DeviceChangesPublic,
)
from cloud.ticketing.api.refusals import answering
from cloud.ticketing.api.refusals import documented as _error
from cloud.ticketing.identity import ChangeNotFound

router = APIRouter(
    prefix="/devices/changes",
    tags=["devices"],
    responses={401: _error("missing, invalid or expired bearer token")},
)


@router.get("", response_model=DeviceChangesPublic)
def list_changes(
    service: ServiceDep,
    _user: CurrentUser,
    status_: Annotated[ChangeStatus | None, Query(alias="status")] = ChangeStatus.PENDING,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeviceChangesPublic:
    """Identity changes, newest first: the pending ones unless ``status`` says otherwise."""
    found = service.identity_changes(None if status_ is None else status_.value, limit=limit)
    return DeviceChangesPublic.model_validate({"items": found})


@router.post(
    "/{change_id}",
    response_model=DeviceChangePublic,
    responses={
        403: _error("the token's role may not decide (needs engineer)"),
        404: _error("no such change"),
        409: _error("the change was decided already"),
    },
)
def decide_change(
    change_id: int, body: DeviceChangeDecide, service: ServiceDep, user: Engineer
) -> DeviceChangePublic:
    """Accept (the unit moves to the announced model and batch, and its active faults count
    there) or reject (it keeps its identity) a pending change."""
    try:
        with answering():
            change, _changes = service.decide_identity_change(
                change_id, body.decision.value, actor=user.name, note=body.note
            )
    except ChangeNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    return DeviceChangePublic.model_validate(change)
