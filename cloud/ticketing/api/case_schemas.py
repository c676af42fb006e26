"""Past cases as the API answers them (``/cases``, ``/tickets/{id}/similar``); what a case is and
how "worked" is decided are in ``cloud/ticketing/cases.py``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cloud.ticketing.api.schemas import Source


class CaseMeasurePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    term: str = Field(description="short (units already sold) or long (against the cause)")
    kind: str = Field(examples=["repair", "supplier"])
    action: str
    status: str = Field(description="planned, in_progress, done or cancelled")
    record: str | None = Field(description="what was done (done or cancelled)")


class CaseFixPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    description: str
    outcome: str = Field(description="pending, verified, failed or withdrawn")
    worked: bool = Field(description="verified, and the problem did not come back after")


class CasePublic(BaseModel):
    """A closed ticket whose problem was solved, as a search found it."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["PF202405001"])
    model: str | None
    fault: str | None
    category: str
    source: Source
    score: float = Field(description="BM25 relevance to the query; higher is closer")
    problem: str = Field(description="the customers' words (shortened), or the fault and where")
    root_cause: str | None = Field(description="the last of the 5 whys, else the summary")
    measures: list[CaseMeasurePublic]
    fixes: list[CaseFixPublic] = Field(description="oldest first; the last one closed the case")
    fix: CaseFixPublic | None = Field(description="the last fix")
    worked: bool = Field(
        description="the last fix held (no regression, no re-dispatch after it); with no fix "
        "of its own, the customer's last callback was satisfied"
    )


class CasesPublic(BaseModel):
    items: list[CasePublic] = Field(description="best match first")
