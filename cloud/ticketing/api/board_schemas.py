"""The dashboard's answer (``GET /api/v1/board``) as the API documents it;
``cloud/ticketing/board.py`` defines every figure and the triage order, ``targets.py`` the
targets."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cloud.ticketing.api.schemas import Priority, Scope, Severity, Source, UTCTime
from cloud.ticketing.lifecycle import Status
from contract.faults import CATEGORIES

#: Every category a ticket may have (telemetry's too: sensor, connectivity).
TicketCategory = StrEnum("TicketCategory", {c.upper(): c for c in CATEGORIES})  # type: ignore[misc]


class BoardFiltersPublic(BaseModel):
    model: str | None
    category: str | None
    department: str | None


class SeverityCountPublic(BaseModel):
    """A department's open tickets by severity."""

    model_config = ConfigDict(populate_by_name=True)

    department: str = Field(description="the lead department")
    sev_iii: int = Field(alias="III")
    sev_ii: int = Field(alias="II")
    sev_i: int = Field(alias="I")
    total: int
    overdue: int = Field(description="open tickets past the deadline of their SLA stage")


class BoardTicketPublic(BaseModel):
    """An open ticket as the board lists it: the ticket's fields without its evidence."""

    id: str
    scope: Scope
    source: Source
    model: str | None
    batch: str | None
    device: str | None
    fault: str | None
    category: str
    severity: Severity
    priority: Priority
    department: str
    status: Status
    affected_devices: int
    batch_devices: int
    detected_at: UTCTime
    due_at: UTCTime = Field(description="deadline of the current SLA stage")
    stage: str | None
    overdue: bool
    complaints: int = Field(0, description="tickets from people that joined it (batch tickets)")


class FigurePublic(BaseModel):
    value: float | None = Field(description="null: nothing to rate in the period")
    target: float
    op: Literal[">=", "<="] = Field(description="the value must be at least (>=) or at most (<=)")
    missed: bool
    n: int = Field(description="what it is over: feedback tickets, measures, callbacks, tickets")


class FigureRowPublic(BaseModel):
    department: str = Field(description="a department, or 'all' for all of them together")
    collection: FigurePublic = Field(description="反馈收集率: feedback taken up in time")
    completion: FigurePublic = Field(description="整改完成率: measures due that were done")
    satisfaction: FigurePublic = Field(description="客户满意度: mean callback score, 1-5")
    recurrence: FigurePublic = Field(description="同类问题重复率: tickets that came back")


class TargetAlertPublic(BaseModel):
    """A department's figure below its target in each of the last two complete ISO weeks."""

    event: Literal["target_missed"]
    department: str
    figure: str
    figure_name: str
    target: float
    op: Literal[">=", "<="]
    weeks: list[str] = Field(description="the ISO weeks, oldest first: 2026-W46")
    values: list[float | None] = Field(description="the figure in each of them")


class ModelCountPublic(BaseModel):
    model: str | None = Field(description="null: tickets from people naming no known model")
    tickets: int


class CategoryCountPublic(BaseModel):
    category: str
    tickets: int


class BoardPublic(BaseModel):
    """The dashboard: open tickets for triage, the month's figures against their targets, the
    batches with open batch tickets and the two-week target alerts."""

    now: UTCTime
    month: str = Field(description="the month (UTC) the figures are over, so far")
    filters: BoardFiltersPublic
    open_tickets: int
    overdue: int
    by_department: list[SeverityCountPublic]
    triage: list[BoardTicketPublic] = Field(
        description="open tickets, severity III first, then the soonest due (overdue first)"
    )
    batches: list[BoardTicketPublic] = Field(description="open batch tickets, in triage order")
    figures: list[FigureRowPublic] = Field(description="'all' first, then each department")
    weeks: list[str] = Field(description="the two complete ISO weeks the alerts are over")
    alerts: list[TargetAlertPublic]
    models: list[ModelCountPublic] = Field(description="open tickets by model, most first")
    categories: list[CategoryCountPublic] = Field(description="open tickets by category")
