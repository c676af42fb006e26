"""The monthly report's answer (CONTRACTS.md §4.3) as the API documents it: the contract's
fields first, then the extensions; ``cloud/ticketing/reports.py`` defines every figure."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FaultCountPublic(BaseModel):
    key: str = Field(description="the fault, or the category where the tickets have no fault")
    tickets: int
    units: int = Field(description="affected units summed over the tickets")


class DepartmentPublic(BaseModel):
    department: str = Field(description="the lead department")
    tickets: int
    mean_ack_h: float | None = Field(
        description="mean hours from opening to the first acknowledgement; null: none yet"
    )
    mean_resolve_h: float | None = Field(
        description="mean hours from opening to first reaching resolved, verifying or callback"
    )
    on_time_rate: float | None = Field(description="share of tickets never flagged overdue")
    acknowledged: int
    pending_ack: int = Field(description="tickets not acknowledged yet")
    resolved: int
    overdue: int = Field(description="tickets flagged overdue at least once")
    measure_completion_rate: float | None = Field(
        None, description="always null: corrective measures are not recorded yet"
    )


class SatisfactionMonthPublic(BaseModel):
    month: str
    responses: int
    mean_score: float | None
    low_scores: int


class SatisfactionPublic(BaseModel):
    responses: int = Field(description="scored callbacks recorded in the month")
    mean_score: float | None = Field(description="1-5, 5 best; null without responses")
    low_scores: int = Field(description="scores of 3 or lower (they re-dispatch)")
    trend: list[SatisfactionMonthPublic] = Field(description="the 12 months up to this one")


class ProgressPublic(BaseModel):
    key: str
    tickets: int
    statuses: dict[str, int] = Field(description="the problem's tickets per status now")
    resolved: int = Field(description="tickets that reached resolved, verifying or callback")
    closed: int
    resolved_rate: float | None


class TrendPointPublic(BaseModel):
    month: str
    tickets: int
    telemetry: int
    feedback: int


class MonthlyReportPublic(BaseModel):
    month: str = Field(examples=["2024-05"])
    tickets: int = Field(description="tickets whose detected_at falls in the month (UTC)")
    by_category: dict[str, int]
    by_source: dict[str, int] = Field(examples=[{"telemetry": 3, "feedback": 69}])
    top_faults: list[FaultCountPublic] = Field(description="at most five, most tickets first")
    departments: list[DepartmentPublic]
    satisfaction: SatisfactionPublic
    recurrence_rate: float | None = Field(
        description="share of the month's tickets with a regression or a re-dispatch"
    )
    # extensions
    top_faults_by_units: list[FaultCountPublic] = Field(description="at most five, most units")
    faults: list[FaultCountPublic] = Field(description="every problem, most tickets first")
    recurrences: int
    top_problems: list[ProgressPublic] = Field(
        description="the three most frequent problems' corrective progress"
    )
    trend: list[TrendPointPublic] = Field(description="tickets per month, the 12 months up to this")
    merged: int = Field(
        description="device tickets of the month folded into a batch ticket, left out of the rest"
    )
