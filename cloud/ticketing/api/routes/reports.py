"""``/api/v1/reports/monthly``: the month's quality report (CONTRACTS.md §4.3)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from cloud.ticketing.api.deps import CurrentUser, SessionDep
from cloud.ticketing.api.report_schemas import MonthlyReportPublic
from cloud.ticketing.api.routes.tickets import _error
from cloud.ticketing.reports import InvalidMonth, monthly_report

router = APIRouter(
    prefix="/reports", tags=["reports"], responses={401: _error("missing or invalid bearer token")}
)


@router.get(
    "/monthly",
    response_model=MonthlyReportPublic,
    responses={422: _error("a month that is not YYYY-MM", invalid=True)},
)
def monthly(
    session: SessionDep,
    _user: CurrentUser,
    month: Annotated[str, Query(description="YYYY-MM (UTC)", examples=["2024-05"])],
) -> MonthlyReportPublic:
    """The quality report over the tickets detected in ``month``; a month without tickets is an
    empty report. The PDF of the same report is ``/reports/monthly.pdf?month=…``."""
    try:
        report = monthly_report(session, month)
    except InvalidMonth as exc:
        detail = [{"type": "value_error", "loc": ["query", "month"], "msg": str(exc)}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from exc
    return MonthlyReportPublic.model_validate(report.as_dict())
