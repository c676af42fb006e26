"""API schemas, separate from the tables: what clients send (``*Create``) and get (``*Public``)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from cloud.ticketing.lifecycle import Status


def _iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UTCTime = Annotated[datetime, PlainSerializer(_iso_z, return_type=str)]


class Scope(StrEnum):
    BATCH = "batch"
    DEVICE = "device"


class Severity(StrEnum):
    I = "I"  # noqa: E741 - the contract's name for "general"
    II = "II"
    III = "III"


class Priority(StrEnum):
    URGENT = "urgent"
    NORMAL = "normal"
    LOW = "low"


class Role(StrEnum):
    VIEWER = "viewer"
    ENGINEER = "engineer"
    ADMIN = "admin"


class TicketPublic(BaseModel):
    """A ticket exactly as CONTRACTS.md §4 shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["PF202405001"])
    scope: Scope
    model: str
    batch: str
    device: str | None
    fault: str
    category: str
    severity: Severity
    priority: Priority
    department: str
    departments: list[str]
    status: Status
    affected_devices: int
    batch_devices: int
    detected_at: UTCTime
    opened_at: UTCTime
    due_at: UTCTime = Field(description="deadline of the current SLA stage (wall clock)")
    evidence: dict[str, Any]
    # extensions of the contract
    stage: str | None = Field(
        None, description="SLA stage: acknowledge, containment, cause, fix, verification"
    )
    overdue: bool = Field(False, description="the current stage is past its deadline")
    overdue_stage: str | None = Field(None, description="the stage that is overdue, if any")


class FixUnitPublic(BaseModel):
    device: str
    state: str = Field(description="cleared, waiting or failed")
    ts: float | None = Field(description="event time that decided it, if any")
    reason: str


class FixPublic(BaseModel):
    """A fix record and its verification from the units' data."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    recorded_at: UTCTime
    actor: str
    description: str
    devices: list[str]
    effective_from: float = Field(description="event time (Unix seconds) the fix applies from")
    outcome: str = Field(description="pending, verified, failed or withdrawn")
    decided_at: UTCTime | None
    summary: str = Field(examples=["verified: 14/14 units back at baseline"])
    units: list[FixUnitPublic]


class HistoryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: UTCTime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None
    data: dict[str, Any]


class TicketDetailPublic(TicketPublic):
    history: list[HistoryPublic]
    fix: FixPublic | None = Field(None, description="the latest fix record and its verification")


class TicketsPublic(BaseModel):
    items: list[TicketPublic]
    next: str | None = Field(description="cursor of the next page; null on the last page")


class TransitionCreate(BaseModel):
    to: Status
    note: str | None = Field(None, max_length=10_000)


class CommentCreate(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


class FixCreate(BaseModel):
    description: str = Field(min_length=1, max_length=10_000, description="what was done")
    devices: list[str] | None = Field(
        None, min_length=1, max_length=100_000, description="fixed units; default every affected"
    )
    effective_from: float | AwareDatetime = Field(
        description="event time in the units' data from which the fix applies: Unix seconds or "
        "ISO 8601 with a time zone",
        examples=[1716000000.0, "2024-05-18T00:00:00Z"],
    )

    def effective_ts(self) -> float:
        value = self.effective_from
        return value.timestamp() if isinstance(value, datetime) else float(value)


class FollowupCreate(BaseModel):
    note: str = Field(min_length=1, max_length=10_000, description="what the customer said")
    customer: str = Field(min_length=1, max_length=200)


class ErrorPublic(BaseModel):
    detail: str


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Role = Role.VIEWER


class TokenPublic(BaseModel):
    name: str
    role: Role
    token: str = Field(description="shown once; only its digest is stored")


class HealthPublic(BaseModel):
    status: str
