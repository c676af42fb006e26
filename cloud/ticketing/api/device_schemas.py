"""Device identity changes as the API documents them (``/api/v1/devices/changes``;
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
