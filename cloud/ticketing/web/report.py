"""The monthly quality report as a page (``/reports/monthly``) and a PDF
(``/reports/monthly.pdf?month=YYYY-MM``), and :func:`render` for the command line.

Both are drawn from one list of :class:`Section` (:func:`sections`): the same headings, tables,
notes and SVG charts (``report_charts.py``) in the viewer's language (``i18n.py``), so the page
and the PDF show the same thing; ``report_pdf.py`` writes the PDF (with the CJK font, or, without
one, in English and saying so). The command line picks the language with ``--lang``.

The page takes the pages' cookie sign-in; the PDF also takes ``Authorization: Bearer`` (a script
fetching it to mail it), and a bad token there is a 401, not a redirect to the sign-in form.
"""

# No ``from __future__ import annotations``: FastAPI reads the route functions' annotations.
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from sqlalchemy.orm import Session

from cloud.ticketing.reports import (
    TOP_PROBLEMS,
    InvalidMonth,
    MonthlyReport,
    latest_month,
    monthly_report,
)
from cloud.ticketing.service import TicketService
from cloud.ticketing.tokens import Principal, TokenRefused
from cloud.ticketing.web import auth, i18n
from cloud.ticketing.web import report_pdf as pdf_writer
from cloud.ticketing.web.i18n import name, tr
from cloud.ticketing.web.layout import CSS, esc, html, page
from cloud.ticketing.web.report_charts import bar_chart, line_chart, pareto_chart
from cloud.ticketing.web.report_pdf import FontFile, write_pdf


def title() -> str:
    return tr("Monthly after-sales quality report")


def definitions() -> tuple[str, ...]:
    """How each figure is counted (the report's last section)."""
    return (
        tr(
            "Definitions: a ticket belongs to the month (UTC) its detected_at falls in (for "
            "feedback: when it was received); device tickets folded into a batch ticket are left "
            "out (the batch ticket counts their units); the numbers are as the tickets stand now."
        ),
        tr(
            "Ack time: hours from opening to the first move to acknowledged, over the tickets the "
            "department leads; tickets not acknowledged yet are left out (pending)."
        ),
        tr(
            "Resolve time: hours from opening to the first move to resolved, verifying or "
            "callback (cause found or fix recorded); a dismissal or a merge is not resolved."
        ),
        tr("On-time rate: share of the department's tickets never flagged overdue."),
        tr(
            "Satisfaction: customer callbacks with a score (1-5, 5 best) recorded in the month, "
            "whichever month their ticket is from; low = 3 or lower (re-dispatched)."
        ),
        tr(
            "Recurrence rate: share of the month's tickets that came back after a verified fix "
            "(regression) or were re-dispatched after a low callback score."
        ),
        tr(
            "Measure completion: of the measures (not cancelled) on the month's tickets that the "
            "department owns, the share done."
        ),
    )


@dataclass(frozen=True, slots=True)
class Table:
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[int, ...]  # relative column widths (the PDF's)


@dataclass(frozen=True, slots=True)
class Section:
    """One part of the report: a heading, charts (SVG), tables and notes, in that order."""

    id: str
    heading: str
    charts: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()


# --- what the report shows ----------------------------------------------------------------------
def problem(key: str) -> str:
    """A problem (a fault, or a category where a ticket has no fault) by its name."""
    fault = name("fault", key)
    return fault if fault != key else name("category", key)


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def sections(r: MonthlyReport) -> list[Section]:
    """The report's content, shared by the page and the PDF."""
    feedback, telemetry = r.by_source["feedback"], r.by_source["telemetry"]
    sat = r.satisfaction
    summary = Table(
        (tr("Figure"), tr("Value")),
        (
            (tr("Tickets"), f"{r.tickets:,}"),
            (tr("Detected by telemetry"), f"{telemetry:,}"),
            (tr("Reported by people"), f"{feedback:,}"),
            (tr("Recurrence rate"), f"{_pct(r.recurrence_rate)} ({r.recurrences})"),
            (tr("Folded into batch tickets"), f"{r.merged:,}"),
            (tr("Callbacks scored"), f"{sat.responses:,}"),
            (tr("Mean score (1-5)"), _score(sat.mean_score)),
            (tr("Low scores (≤3)"), f"{sat.low_scores:,}"),
        ),
        (3, 2),
    )
    out = [
        Section(
            "summary",
            tr("Summary"),
            charts=(
                bar_chart(
                    [(tr("telemetry"), telemetry), (tr("people"), feedback)],
                    title=tr("Telemetry-detected vs people-reported"),
                ),
            ),
            tables=(summary,),
            notes=() if r.tickets else (tr("No tickets were detected in {month}.", month=r.month),),
        )
    ]
    if r.tickets:
        out += _ticket_sections(r)
    trend = r.satisfaction_trend
    out.append(
        Section(
            "satisfaction",
            tr("Satisfaction trend"),
            charts=(
                line_chart(
                    [p.month for p in trend],
                    [(tr("mean score"), [p.mean_score for p in trend])],
                    title=tr("Mean score, last 12 months"),
                    y_range=(1.0, 5.0),
                ),
            ),
            tables=(
                Table(
                    (tr("Month"), *(p.month[2:] for p in trend)),
                    (
                        (tr("Responses"), *(f"{p.responses:,}" for p in trend)),
                        (tr("Mean"), *(_score(p.mean_score) for p in trend)),
                        (tr("Low (≤3)"), *(f"{p.low_scores:,}" for p in trend)),
                    ),
                    (5, *(2 for _ in trend)),
                ),
            ),
        )
    )
    months = [p.month for p in r.ticket_trend]
    out.append(
        Section(
            "trend",
            tr("Tickets per month"),
            charts=(
                line_chart(
                    months,
                    [
                        (tr("all"), [float(p.tickets) for p in r.ticket_trend]),
                        (tr("telemetry"), [float(p.telemetry) for p in r.ticket_trend]),
                        (tr("people"), [float(p.feedback) for p in r.ticket_trend]),
                    ],
                    title=tr("Tickets detected, last 12 months"),
                ),
            ),
        )
    )
    out.append(Section("definitions", tr("Definitions"), notes=definitions()))
    return out


def _ticket_sections(r: MonthlyReport) -> list[Section]:
    categories = sorted(r.by_category.items(), key=lambda kv: (-kv[1], kv[0]))
    faults = [
        Table(
            ("#", label, tr("Tickets"), tr("Units")),
            tuple(
                (str(i), problem(f.key), f"{f.tickets:,}", f"{f.units:,}")
                for i, f in enumerate(ranking, 1)
            ),
            (1, 5, 2, 2),
        )
        for label, ranking in (
            (tr("Problem, by tickets"), r.top_faults),
            (tr("Problem, by units"), r.top_faults_by_units),
        )
    ]
    departments = Table(
        (
            tr("Department"),
            tr("Tickets"),
            tr("Not acked"),
            tr("Ack h"),
            tr("Resolved"),
            tr("Resolve h"),
            tr("On time"),
            tr("Measures"),
        ),  # fmt: skip
        tuple(
            (
                name("department", d.department),
                f"{d.tickets:,}",
                f"{d.tickets - d.acknowledged:,}",
                _hours(d.mean_ack_h),
                f"{d.resolved:,}",
                _hours(d.mean_resolve_h),
                _pct(d.on_time_rate),
                _pct(d.measure_completion_rate),
            )  # fmt: skip
            for d in r.departments
        ),
        (3, 2, 2, 2, 2, 2, 2, 2),
    )
    progress = Table(
        (tr("Problem"), tr("Tickets"), tr("Statuses"), tr("Resolved"), tr("Closed")),
        tuple(
            (
                problem(p.key),
                f"{p.tickets:,}",
                ", ".join(f"{name('status', s)} {n}" for s, n in p.statuses.items()),
                f"{p.resolved:,} ({_pct(p.resolved / p.tickets)})",
                f"{p.closed:,}",
            )
            for p in r.top_problems
        ),
        (3, 1, 5, 2, 1),
    )
    return [
        Section(
            "categories",
            tr("Problem types"),
            charts=(
                bar_chart(
                    [(name("category", c), n) for c, n in categories],
                    title=tr("Problem types (tickets, share)"),
                ),
            ),
        ),
        Section(
            "faults",
            tr("Top 5 faults"),
            charts=(
                pareto_chart(
                    [(problem(f.key), f.tickets) for f in r.faults],
                    title=tr("Pareto of faults (tickets, cumulative share)"),
                ),
            ),
            tables=tuple(faults),
            notes=(tr("A problem is the ticket's fault, or its category where it has no fault."),),
        ),
        Section(
            "departments",
            tr("Department efficiency"),
            tables=(departments,),
            notes=(tr("Over the tickets each department leads; hours from the ticket's opening."),),
        ),
        Section(
            "progress",
            tr("Top-{n} problems' corrective progress", n=TOP_PROBLEMS),
            tables=(progress,),
        ),
    ]


# --- HTML ---------------------------------------------------------------------------------------
_NUMERIC = re.compile(r"[\d—.,% ()]+")


def _cell(i: int, c: str) -> str:
    return f"<td{' class=num' if i and _NUMERIC.fullmatch(c) else ''}>{esc(c)}</td>"


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in t.head)
    rows = "".join(
        "<tr>" + "".join(_cell(i, c) for i, c in enumerate(row)) + "</tr>" for row in t.rows
    )
    if not t.rows:
        rows = f'<tr><td class="empty" colspan="{len(t.head)}">—</td></tr>'
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return f'<div class="table-wrap">{table}</div>'


def report_html(r: MonthlyReport) -> str:
    """The report's body as HTML (the charts inline)."""
    parts = [f'<h1>{esc(title())}</h1><p class="sub" id="report-month">{esc(r.month)} (UTC)</p>']
    for s in sections(r):
        charts = "".join(f'<div class="chart-wrap">{svg}</div>' for svg in s.charts)
        tables = "".join(_table_html(t) for t in s.tables)
        notes = "".join(f'<p class="note">{esc(n)}</p>' for n in s.notes)
        parts.append(
            f'<section class="card" id="{s.id}"><h2>{esc(s.heading)}</h2>{charts}{tables}{notes}'
            "</section>"
        )
    return "".join(parts)


def _month_form(month: str, error: str | None = None) -> str:
    alert = f'<div class="error" role="alert">{esc(error)}</div>' if error else ""
    pdf = (
        f' <a class="button" id="report-pdf" href="/reports/monthly.pdf?month={esc(month)}">PDF</a>'
    )
    return (
        f'{alert}<form class="filters card" method="get" action="/reports/monthly">'
        f'<label>{esc(tr("Month"))}<input type="month" name="month" value="{esc(month)}"></label>'
        f'<button class="primary" type="submit">{esc(tr("Show"))}</button>'
        f"{pdf if month and not error else ''}</form>"
    )


def standalone_html(r: MonthlyReport) -> str:
    """The report as a whole HTML document of its own (no navigation), e.g. to mail."""
    return (
        f'<!doctype html><html lang="{i18n.current().lang}"><head><meta charset="utf-8">'
        f"<title>{esc(title())} {esc(r.month)}</title><style>{CSS}</style></head>"
        f"<body><main>{report_html(r)}</main></body></html>"
    )


def report_pdf(r: MonthlyReport, font: FontFile | None = None) -> bytes:
    """The report as an A4 PDF (``report_pdf.py``) in the viewer's language; in English when
    there is no CJK font to write Chinese with (the PDF then says so)."""
    font = font or pdf_writer.find_cjk_font()
    if font is None and i18n.current().zh:
        with i18n.use(i18n.Locale("en", i18n.current().tz, i18n.current().here)):
            return report_pdf(r, None)
    return write_pdf(title(), f"{r.month} (UTC)", sections(r), font)


# --- for the command line -----------------------------------------------------------------------
Format = Literal["json", "html", "pdf"]


def render(report: MonthlyReport, fmt: Format, lang: str = "zh-CN") -> bytes:
    """``report`` as JSON (the API's answer), a standalone HTML document or a PDF, the last two
    in ``lang`` (zh-CN or en)."""
    if fmt == "json":
        return json.dumps(report.as_dict(), ensure_ascii=False, indent=2).encode()
    with i18n.use(i18n.for_lang(lang)):
        if fmt == "html":
            return standalone_html(report).encode()
        if fmt == "pdf":
            return report_pdf(report)
    raise ValueError(f"unknown report format {fmt!r}; one of json, html, pdf")


# --- routes -------------------------------------------------------------------------------------
def _bearer_or_cookie(service: TicketService) -> Callable[[Request], Principal]:
    """The caller by ``Authorization: Bearer`` when it sends one (401 if it is not valid), else
    by the pages' cookie (a redirect to sign in without one)."""
    cookie = auth.cookie_user(service)

    def dependency(request: Request) -> Principal:
        header = request.headers.get("authorization")
        if header is None:
            return cookie(request)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        try:
            if scheme.lower() != "bearer" or not token or len(token) > auth.MAX_TOKEN_CHARS:
                raise TokenRefused("missing or invalid bearer token")
            return service.check_token(token)  # says why: unknown, revoked or expired
        except TokenRefused as exc:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail=str(exc),
                headers={"WWW-Authenticate": "Bearer"},
            ) from exc

    return dependency


def _bad_month(message: str) -> HTTPException:
    detail = [{"type": "value_error", "loc": ["query", "month"], "msg": message}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


def report_router(service: TicketService) -> APIRouter:
    """``/reports/monthly`` (page) and ``/reports/monthly.pdf`` over ``service``'s database."""
    router = APIRouter(include_in_schema=False)
    User = Annotated[Principal, Depends(auth.cookie_user(service))]
    Caller = Annotated[Principal, Depends(_bearer_or_cookie(service))]

    @router.get("/reports/monthly")
    def monthly(user: User, month: str | None = None) -> Response:
        with Session(service.engine) as s:
            if not month:  # the latest month with tickets
                latest = latest_month(s)
                if latest is None:
                    body = _month_form("") + f'<p class="note">{esc(tr("No tickets yet."))}</p>'
                    return html(page(tr("Monthly report"), body, user=user))
                month = str(latest)
            try:
                report = monthly_report(s, month)
            except InvalidMonth as exc:
                body = _month_form(month, str(exc))
                return html(page(tr("Monthly report"), body, user=user), 422)
        body = _month_form(report.month) + report_html(report)
        return html(page(f"{tr('Monthly report')} {report.month}", body, user=user))

    @router.get("/reports/monthly.pdf")
    def monthly_pdf(_user: Caller, month: str | None = None) -> Response:
        if not month:
            raise _bad_month("month is required: ?month=YYYY-MM")
        with Session(service.engine) as s:
            try:
                report = monthly_report(s, month)
            except InvalidMonth as exc:
                raise _bad_month(str(exc)) from exc
        name = f"qloop-quality-report-{report.month}.pdf"
        return Response(
            report_pdf(report),
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="{name}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return router
