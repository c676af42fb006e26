"""Devices as the API documents them: one unit (``/api/v1/devices/{device}``,
``cloud/ticketing/device_view.py``) and identity changes (``/api/v1/devices/changes``;
``cloud/ticketing/identity.py`` holds them)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from cloud.ticketing.api.schemas import Body, UTCTime


class IdentityPublic(BaseModel):
    product: str
    model: str
    batch: str


class DeviceChangePublic(BaseModel):
    """A birth that announced another identity than the unit had, and what became of it."""

    id: int
    device: str
    announced_at: UTCTime = Field(description="when the birth was taken in (wall clock)")
    birth_ts: float = Field(description="the unit's own time when it announced it (Unix s)")
    previous: IdentityPublic = Field(description="the identity the unit had, and keeps if rejected")
    announced: IdentityPublic
    status: str = Field(description="pending, accepted, rejected or withdrawn (announced back)")
    decided_by: str | None
    decided_at: UTCTime | None
    note: str | None


class DeviceChangesPublic(BaseModel):
    items: list[DeviceChangePublic]


class ChangeStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Decision(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"


class DeviceChangeDecide(Body):
    decision: Decision = Field(description="accept: the unit takes the announced identity")
    note: str | None = Field(None, max_length=2000, description="why, for the record")


class ActiveFaultPublic(BaseModel):
    fault: str = Field(description="the fault (CONTRACTS.md §3)")
    since_ts: float = Field(description="event time of the episode's first finding (Unix s)")
    last_ts: float = Field(description="event time of its latest finding (Unix s)")
    score: float


class DevicePublic(BaseModel):
    """One unit: an extension of CONTRACTS.md §4 (the contract names no device resource).
    ``lost_seqs`` makes lost data something to check: the seqs between the unit's first and
    newest message that never came in an accepted message (lost between unit and worker, or
    refused: see ``qloop cloud dead-letters``), as the worker serving the unit's partition last
    counted them from its journal. The fleet's total is on ``/metrics`` (``qloop_lost_seqs``)."""

    device: str
    product: str
    model: str
    batch: str
    serial: str
    firmware: str
    first_seen_ts: float = Field(description="event time the unit was first seen (Unix s)")
    last_seen_ts: float = Field(description="event time its data was judged up to (Unix s)")
    lost_seqs: int = Field(
        ge=0, description="seqs of this unit that never came in an accepted message (0: none)"
    )
    active_faults: list[ActiveFaultPublic] = Field(description="faults active on it now")
