"""API schemas, separate from the tables: what clients send (``*Create``) and get (``*Public``)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

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
    due_at: UTCTime
    evidence: dict[str, Any]


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


class TicketsPublic(BaseModel):
    items: list[TicketPublic]
    next: str | None = Field(description="cursor of the next page; null on the last page")


class TransitionCreate(BaseModel):
    to: Status
    note: str | None = Field(None, max_length=10_000)


class CommentCreate(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Role = Role.VIEWER


class TokenPublic(BaseModel):
    name: str
    role: Role
    token: str = Field(description="shown once; only its digest is stored")


class HealthPublic(BaseModel):
    status: str
