"""API schemas, separate from the tables: what clients send (``*Create``) and get (``*Public``)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from cloud.feedback.extract import DEMANDS
from cloud.feedback.labelled import CHANNELS
from cloud.feedback.sources import MAX_TEXT
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.measures import DEPARTMENTS, FISHBONE
from cloud.ticketing.verdicts import SATISFACTION
from contract.clock import EARLIEST_TS
from contract.faults import FEEDBACK_CATEGORIES


def _iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UTCTime = Annotated[datetime, PlainSerializer(_iso_z, return_type=str)]
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")  # no database stores them (PostgreSQL: no NUL)


def _not_text(data: Any) -> str | None:
    """Where in ``data`` (parsed JSON) a string holds NUL or a lone surrogate, or None. Walks
    without recursion, so a body as deep as the JSON parser allows cannot overflow the stack."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if _NOT_TEXT.search(value):
                return where or "body"
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and _NOT_TEXT.search(key):
                    return f"{where}.{key!r}".lstrip(".")
                stack.append((f"{where}.{key}".lstrip("."), item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
    return None


class Body(BaseModel):
    """What a client sends: its strings are text, without NUL or lone surrogates (neither can be
    stored, and a surrogate cannot even be encoded), else a 422 naming where."""

    @model_validator(mode="before")
    @classmethod
    def _text_is_text(cls, data: Any) -> Any:
        where = _not_text(data)
        if where is not None:
            raise ValueError(f"{where[:100]}: NUL or a lone surrogate is not text")
        return data


class Scope(StrEnum):
    BATCH = "batch"
    DEVICE = "device"
    CUSTOMER = "customer"  # feedback from a person whose unit is not known


class MeasureTerm(StrEnum):
    SHORT = "short"
    LONG = "long"


class MeasureStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


Department = StrEnum("Department", {d.upper().replace("&", ""): d for d in DEPARTMENTS})  # type: ignore[misc]
FishboneBranch = StrEnum("FishboneBranch", {b.upper(): b for b in FISHBONE})  # type: ignore[misc]


class Source(StrEnum):
    TELEMETRY = "telemetry"
    FEEDBACK = "feedback"


Channel = StrEnum("Channel", {c.upper(): c for c in CHANNELS})  # type: ignore[misc]
Demand = StrEnum("Demand", {d.upper(): d for d in DEMANDS})  # type: ignore[misc]
Category = StrEnum("Category", {c.upper(): c for c in FEEDBACK_CATEGORIES})  # type: ignore[misc]


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
    SERVICE = "service"
    ENGINEER = "engineer"
    ADMIN = "admin"


class ClassificationPublic(BaseModel):
    """What the classifier (or a person correcting it) made of a piece of feedback."""

    category: str
    fault: str | None
    severity: Severity
    department: str
    confidence: float = Field(ge=0, le=1)
    needs_triage: bool = Field(description="a person must confirm the classification")
    priority: Priority | None = None
    departments: list[str] | None = None
    rule: str | None = Field(None, description="the safety words that decided it, if a rule did")
    corrected_by: str | None = None


class TicketPublic(BaseModel):
    """A ticket exactly as CONTRACTS.md §4 shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["PF202405001"])
    scope: Scope
    model: str | None = Field(description="null: feedback that names no known model")
    batch: str | None = Field(description="null: feedback from a unit not known")
    device: str | None
    fault: str | None = Field(description="null: feedback about no fault of the vocabulary")
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
    source: Source = Field(Source.TELEMETRY, description="what opened it: the data or a person")
    channel: str | None = Field(None, description="the channel of the feedback that opened it")
    classification: ClassificationPublic | None = Field(
        None, description="the classification of the feedback (CONTRACTS.md §4.1)"
    )
    parent: str | None = Field(None, description="the batch ticket this one joined")
    repeats: int = Field(0, description="how often the same problem was reported again")


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


class MeasurePublic(BaseModel):
    """A corrective (short-term) or preventive (long-term) measure: who does what by when."""

    id: int
    ticket: str
    term: str = Field(description="short (units already sold) or long (against the cause)")
    kind: str = Field(examples=["recall", "design"])
    action: str
    owner: str
    department: str
    due_at: UTCTime
    status: str = Field(description="planned, in_progress, done or cancelled")
    overdue: bool
    created_at: UTCTime
    created_by: str
    completed_at: UTCTime | None
    record: str | None = Field(description="what was done (done or cancelled)")


class FiguresPublic(BaseModel):
    """The procedure's tracking figures over measures (cancelled ones left out)."""

    measures: int
    done: int
    open_overdue: int
    completion_rate: float | None
    delay_rate: float | None = Field(description="done late or open past due, of all")


class DepartmentFiguresPublic(FiguresPublic):
    department: str


class TicketDetailPublic(TicketPublic):
    history: list[HistoryPublic]
    fix: FixPublic | None = Field(None, description="the latest fix record and its verification")
    cause_analysis: dict[str, Any] | None = Field(
        None, description="5-Why chain and fishbone branches, when recorded"
    )
    measures: list[MeasurePublic] = Field(default_factory=list)
    measure_figures: FiguresPublic | None = None


class MeasureCreate(Body):
    term: MeasureTerm
    kind: str = Field(
        min_length=1,
        max_length=16,
        description="short: repair, replace, recall, compensation, other; long: design, "
        "process, inspection, supplier, training, other",
    )
    action: str = Field(min_length=1, max_length=10_000, description="what is to be done")
    owner: str = Field(min_length=1, max_length=64)
    department: Department
    due_at: AwareDatetime

    @field_validator("due_at")
    @classmethod
    def _believable(cls, value: datetime) -> datetime:
        if not (EARLIEST_TS <= value.timestamp() < _LATEST_TS):
            raise ValueError("due_at must lie between 2000 and 2100")
        return value


class MeasureUpdate(Body):
    status: MeasureStatus
    record: str | None = Field(
        None, max_length=10_000, description="what was done; needed for done and cancelled"
    )


class CauseCreate(Body):
    """The cause analysis: a 5-Why chain and the fishbone's branches."""

    five_why: list[Annotated[str, Field(max_length=2_000)]] = Field(
        default_factory=list, max_length=10, description="each answer the cause of the one before"
    )
    fishbone: dict[FishboneBranch, list[Annotated[str, Field(max_length=2_000)]]] = Field(
        default_factory=dict,
        description="man, machine, material, method, environment, measurement",
    )
    summary: str | None = Field(None, max_length=10_000)


class TicketsPublic(BaseModel):
    items: list[TicketPublic]
    next: str | None = Field(description="cursor of the next page; null on the last page")


class TransitionCreate(Body):
    to: Status
    note: str | None = Field(None, max_length=10_000)


class CommentCreate(Body):
    text: str = Field(min_length=1, max_length=10_000)


class FixCreate(Body):
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


class Satisfaction(StrEnum):
    SATISFIED = "satisfied"  # 满意: 5
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意: 4
    DISSATISFIED = "dissatisfied"  # 不满意: 2


class FollowupCreate(Body):
    """A customer follow-up (callback); a score of 3 or lower re-dispatches the ticket."""

    note: str = Field(min_length=1, max_length=10_000, description="what the customer said")
    customer: str = Field(min_length=1, max_length=200)
    score: int | None = Field(None, ge=1, le=5, description="the customer's verdict, 5 best")
    satisfaction: Satisfaction | None = Field(
        None,
        description="the procedures' words instead of a score: satisfied = 5, "
        "basically_satisfied = 4, dissatisfied = 2",
    )

    @model_validator(mode="after")
    def _one_verdict(self) -> FollowupCreate:
        if self.score is not None and self.satisfaction is not None:
            implied = SATISFACTION[self.satisfaction.value]
            if implied != self.score:
                raise ValueError(
                    f"score {self.score} and satisfaction '{self.satisfaction.value}' "
                    f"(= {implied}) disagree: give one"
                )
        return self

    def verdict(self) -> int | None:
        if self.score is not None:
            return self.score
        return None if self.satisfaction is None else SATISFACTION[self.satisfaction.value]


class CheckResult(StrEnum):
    EFFECTIVE = "effective"  # 有效
    NOT_EFFECTIVE = "not_effective"  # 无效
    NEEDS_WORK = "needs_work"  # 需进一步优化


class CheckCreate(Body):
    """The quality engineer's verdict on a fix that has no units' data to judge it."""

    result: CheckResult
    note: str | None = Field(None, max_length=10_000)


class ErrorPublic(BaseModel):
    detail: str


class InvalidFieldPublic(BaseModel):
    """One refused field, as FastAPI's validation errors name it."""

    loc: list[str | int] = Field(description='where: ["body", "effective_from"], ["query", …]')
    msg: str
    type: str
    input: Any = Field(None, description="what was sent: at most a short prefix of it")
    ctx: dict[str, Any] | None = None


class InvalidPublic(BaseModel):
    """A 422: the fields refused and why."""

    detail: list[InvalidFieldPublic]


class HealthPublic(BaseModel):
    status: str


class CustomerIn(BaseModel):
    name: str | None = Field(None, max_length=200)
    contact: str | None = Field(None, max_length=200, description="phone or e-mail")


class FeedbackCreate(Body):
    """One piece of feedback as a person gave it (CONTRACTS.md §4.1); only channel and text are
    required."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "channel": "hotline",
                    "received_at": "2024-05-10T14:30:00+08:00",
                    "text": "空调使用1个月后，制冷效果明显下降，"
                    "出风口温度18℃(设定16℃)，噪音比初期增大。",
                    "customer": {"name": "张先生", "contact": "13800138000"},
                    "model": "KFR-35GW",
                    "serial": "SN2024050001",
                    "purchase_date": "2024-03-15",
                    "demand": "repair",
                }
            ]
        }
    )

    channel: Channel
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="the customer's own words")
    received_at: AwareDatetime | None = Field(
        None, description="when the feedback was given, with a time zone; default now"
    )
    customer: CustomerIn | None = None
    model: str | None = Field(None, max_length=64)
    serial: str | None = Field(None, max_length=128)
    device: str | None = Field(None, max_length=64, description="the unit's id, if known")
    purchase_date: date | None = None
    demand: Demand | None = None

    @field_validator("received_at")
    @classmethod
    def _believable(cls, value: datetime | None) -> datetime | None:
        if value is not None and not (EARLIEST_TS <= value.timestamp() < _LATEST_TS):
            raise ValueError("received_at must lie between 2000 and 2100")
        return value

    @field_validator("purchase_date")
    @classmethod
    def _plausible(cls, value: date | None) -> date | None:
        if value is not None and not (2000 <= value.year < 2100):
            raise ValueError("purchase_date must lie between 2000 and 2100")
        return value


_LATEST_TS = 4_102_444_800.0  # 2100-01-01


class ClassificationCorrect(Body):
    """A person's classification of a feedback ticket, replacing the automatic one."""

    category: Category
    fault: str | None = Field(None, max_length=64, description="a fault of that category")
    severity: Severity
    note: str | None = Field(None, max_length=10_000)
