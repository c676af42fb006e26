"""``/api/v1/devices``: one unit with its lost data (``/devices/{device}``,
``cloud/ticketing/device_view.py``), and births that announced another product, model or batch
than a unit had, held for a person (``/devices/changes``, ``cloud/ticketing/identity.py``);
engineers accept or reject them. The changes are routed first: a unit whose id is literally
``changes`` has no view here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from cloud.ticketing.api.deps import CurrentUser, Engineer, ServiceDep, SessionDep
from cloud.ticketing.api.device_schemas import (
    ChangeStatus,
    DeviceChangeDecide,
    DeviceChangePublic,
    DeviceChangesPublic,
    DevicePublic,
)
from cloud.ticketing.api.refusals import answering
from cloud.ticketing.api.refusals import documented as _error
from cloud.ticketing.device_view import device_view
from cloud.ticketing.identity import ChangeNotFound
from cloud.ticketing.models import ROW_ID_MAX

router = APIRouter(
    prefix="/devices",
    tags=["devices"],
    responses={401: _error("missing, invalid or expired bearer token")},
)


@router.get("/changes", response_model=DeviceChangesPublic)
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
    "/changes/{change_id}",
    response_model=DeviceChangePublic,
    responses={
        403: _error("the token's role may not decide (needs engineer)"),
        404: _error("no such change"),
        409: _error("the change was decided already"),
    },
)
def decide_change(
    change_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)],
    body: DeviceChangeDecide,
    service: ServiceDep,
    user: Engineer,
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


@router.get(
    "/{device}", response_model=DevicePublic, responses={404: _error("no birth of this unit")}
)
def get_device(
    device: Annotated[str, Path(max_length=64)], session: SessionDep, _user: CurrentUser
) -> DevicePublic:
    """One unit: its identity, the event times it was seen between, its active faults, and
    ``lost_seqs``, how many of its messages never arrived (0: nothing lost)."""
    view = device_view(session, device)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no device {device[:64]!r}")
    return DevicePublic.model_validate(view)
