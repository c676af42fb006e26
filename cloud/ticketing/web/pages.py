"""The ticketing pages: the ticket list, one ticket with its evidence chart, and signing in
(people's feedback on them, and the complaint form, are in :mod:`~cloud.ticketing.web.feedback`).

Server-rendered HTML over the same :class:`TicketService` calls and the same public schemas as
``/api/v1`` (a page shows exactly what the API answers, including fields added to the schema
later, such as ``overdue``). Mounted on the API's app by :func:`mount_pages`.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route functions' annotations,
# and the ``User`` dependency they name is local to :func:`pages_router`.
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from cloud.store.readback import InfluxTarget
from cloud.ticketing.api.schemas import (
    Channel,
    Scope,
    Severity,
    Source,
    TicketDetailPublic,
    TicketPublic,
)
from cloud.ticketing.errors import InvalidCursor
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.service import TicketService
from cloud.ticketing.tokens import Principal
from cloud.ticketing.web import auth, cases_view, feedback, feedback_view, loop_view, report
from cloud.ticketing.web.dashboard import dashboard_router
from cloud.ticketing.web.evidence import EvidenceChart, chart_for_ticket
from cloud.ticketing.web.layout import (
    esc,
    html,
    number,
    page,
    severity_badge,
    status_badge,
    when,
    when_ts,
)
from contract.errors import QloopError
from contract.faults import FAULTS

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: Filters with a fixed vocabulary (a select); the others are free text.
CHOICES: dict[str, tuple[str, ...]] = {
    "status": tuple(s.value for s in Status),
    "scope": tuple(s.value for s in Scope),
    "severity": tuple(s.value for s in Severity),
    "source": tuple(s.value for s in Source),
    "channel": tuple(c.value for c in Channel),
    "needs_triage": ("true", "false"),
}
#: How a choice reads in its select, where it is more than the value.
CHOICE_LABELS = {
    "channel": {c: f"{c} {zh}" for c, zh in feedback_view.CHANNEL_LABELS.items()},
    "needs_triage": {"true": "yes 待人工确认", "false": "no"},
}
FILTERS = (
    "status", "scope", "model", "batch", "fault", "severity", "source", "channel", "needs_triage",
)  # fmt: skip
TRIAGE_QUEUE = "/tickets?needs_triage=true"
#: How the batch test's numbers are labelled, in the order an engineer reads them.
STAT_LABELS = {
    "batch_affected": "affected units in the batch",
    "batch_units": "units in the batch",
    "share": "affected share",
    "p_value": "p-value",
    "p_adjusted": "p-value, adjusted",
    "alpha": "significance level α",
    "correction": "multiple-test correction",
    "rate_ratio": "rate ratio vs rest of model",
    "batch_exposure_days": "batch exposure (unit-days)",
    "rest_units": "units in other batches",
    "rest_affected": "affected in other batches",
    "rest_exposure_days": "other batches' exposure (unit-days)",
    "test": "test",
}


class BadFilter(QloopError, ValueError):
    """A list filter outside its fixed vocabulary."""


def parse_filters(query: Mapping[str, str]) -> dict[str, str]:
    """The non-empty filters of a list request; raises :class:`BadFilter` naming the choices."""
    out = {}
    for name in FILTERS:
        value = (query.get(name) or "").strip()
        if not value:
            continue
        if name in CHOICES and value not in CHOICES[name]:
            raise BadFilter(f"unknown {name} {value!r}; one of {', '.join(CHOICES[name])}")
        out[name] = value
    return out


def parse_limit(value: str | None) -> int:
    """The page size asked for (``limit``, as in the API), 1..MAX_PAGE_SIZE."""
    if not value:
        return PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise BadFilter(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}, got {value!r}")
    return int(value)


def _is_overdue(t: Mapping[str, Any]) -> bool:
    return t.get("overdue") is True  # optional field: absent means "not known to be overdue"


def _where(t: Mapping[str, Any]) -> str:
    if t["scope"] == "customer":
        return "customer"
    if t["scope"] == "device":
        anchor = "feedback" if t.get("source") == "feedback" else "units"
        unit = f'<a href="/tickets/{esc(t["id"])}#{anchor}">{esc(t["device"])}</a>'
        return f"{esc(t['batch'])} · {unit}"
    return esc(t["batch"])


def _problem(t: Mapping[str, Any]) -> str:
    """The fault, or the category of a complaint about no fault of the vocabulary."""
    return esc(t["fault"]) if t["fault"] else f'<span class="note">{esc(t["category"])}</span>'


def _due(t: Mapping[str, Any]) -> str:
    if _is_overdue(t):
        due = when(t["due_at"])
        return f'<span class="overdue-due">{due}</span> <span class="badge late">overdue</span>'
    return when(t["due_at"])


# --- the ticket list ----------------------------------------------------------------------------
def _filter_form(filters: Mapping[str, str]) -> str:
    fields = []
    for name in FILTERS:
        current = filters.get(name, "")
        if name in CHOICES:
            labels = CHOICE_LABELS.get(name, {})
            options = "".join(
                f'<option value="{esc(v)}"{" selected" if v == current else ""}>'
                f"{esc(labels.get(v, v))}</option>"
                for v in CHOICES[name]
            )
            control = f'<select name="{name}"><option value="">any</option>{options}</select>'
        else:
            listed = ' list="faults"' if name == "fault" else ""
            control = f'<input name="{name}" value="{esc(current)}" placeholder="any"{listed}>'
        fields.append(f"<label>{name.replace('_', ' ')}{control}</label>")
    faults = "".join(f'<option value="{esc(f)}">' for f in FAULTS)
    return (
        f'<form class="filters card" method="get" action="/tickets">{"".join(fields)}'
        f'<datalist id="faults">{faults}</datalist>'
        '<button class="primary" type="submit">Filter</button>'
        '<a class="button" href="/tickets">Clear</a></form>'
    )


def _ticket_row(t: Mapping[str, Any]) -> str:
    lead, rest = t["department"], [d for d in t["departments"] if d != t["department"]]
    departments = f"<b>{esc(lead)}</b>" + "".join(f", {esc(d)}" for d in rest)
    priority = f'<span class="pr-{esc(t["priority"])}">{esc(t["priority"])}</span>'
    return (
        f'<tr class="ticket{" overdue" if _is_overdue(t) else ""}" data-id="{esc(t["id"])}">'
        f'<td><a href="/tickets/{esc(t["id"])}">{esc(t["id"])}</a></td>'
        f'<td class="source">{feedback_view.source_badge(t, compact=True)}</td>'
        f"<td>{_problem(t)}</td>"
        f"<td class=nowrap>{esc(t['model'])}</td><td>{_where(t)}</td>"
        f"<td>{severity_badge(t['severity'])}</td><td>{priority}</td><td>{departments}</td>"
        f"<td>{status_badge(t['status'])}</td>"
        f'<td class="num">{t["affected_devices"]} / {t["batch_devices"]}</td>'
        f"<td>{when(t['detected_at'])}</td><td>{_due(t)}</td></tr>"
    )


def ticket_list_page(
    items: list[dict[str, Any]],
    filters: Mapping[str, str],
    next_cursor: str | None,
    *,
    paged: bool,
    error: str | None = None,
) -> str:
    heads = (
        "id", "source", "fault", "model", "batch / device", "severity", "priority", "departments",
        "status", "affected / batch", "detected", "due",
    )  # fmt: skip
    head = "".join(f"<th{' class=num' if h.startswith('affected') else ''}>{h}</th>" for h in heads)
    rows = "".join(_ticket_row(t) for t in items)
    if not items:
        rows = f'<tr><td class="empty" colspan="{len(heads)}">No tickets match.</td></tr>'
    pager = []
    if paged:
        pager.append(f'<a class="button" href="/tickets?{urlencode(filters)}">← First page</a>')
    if next_cursor:
        query = urlencode({**filters, "cursor": next_cursor})
        pager.append(f'<a class="button" rel="next" href="/tickets?{query}">Next page →</a>')
    body = (
        "<h1>Quality tickets</h1>"
        '<p class="sub">Opened from field telemetry and customer feedback, newest first. '
        f'<a class="button" id="triage-queue" href="{TRIAGE_QUEUE}">Triage queue / 待人工确认</a>'
        "</p>"
        + (f'<div class="error" role="alert">{esc(error)}</div>' if error else "")
        + _filter_form(filters)
        + f'<div class="card table-wrap"><table id="tickets"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
        f'<div class="pager">{"".join(pager)}</div>'
    )
    return body


# --- one ticket ---------------------------------------------------------------------------------
def _facts(t: Mapping[str, Any]) -> str:
    """The ticket's fields; an unknown model, batch or fault (a customer's ticket) reads "—"."""
    parent = t.get("parent")
    affected = f"{t['affected_devices']} of {t['batch_devices']} in the batch"
    facts = [
        ("scope", esc(t["scope"])),
        ("model", esc(t["model"])),
        ("batch", esc(t["batch"])),
        ("device", esc(t["device"])),
        ("fault", esc(t["fault"])),
        ("category", esc(t["category"])),
        ("severity", severity_badge(t["severity"])),
        ("priority", esc(t["priority"])),
        ("lead department", esc(t["department"])),
        ("departments", esc(", ".join(t["departments"]))),
        ("status", status_badge(t["status"])),
        ("source", feedback_view.source_badge(t)),
        ("affected units", affected if t["batch"] is not None else "—"),
        ("received" if feedback_view.from_complaint(t) else "detected", when(t["detected_at"])),
        ("opened", when(t["opened_at"])),
        ("due", _due(t)),
        ("parent", f'<a href="/tickets/{esc(parent)}">{esc(parent)}</a>' if parent else "—"),
        ("repeats", esc(t.get("repeats", 0))),
    ]
    shown = {"id", "history", "evidence", "department", "affected_devices", "batch_devices"}
    shown |= {"detected_at", "opened_at", "due_at", "overdue", "channel", "classification"}
    shown |= {k for k, _ in facts}
    facts += [(k, esc(v)) for k, v in t.items() if k not in shown]  # fields added later
    items = "".join(f'<div><dt>{k}</dt><dd data-field="{k}">{v}</dd></div>' for k, v in facts)
    return f'<dl class="facts">{items}</dl>'


def _statistics(evidence: Mapping[str, Any]) -> str:
    skip = {
        "devices",
        "merged_tickets",
    } | feedback_view.EVIDENCE_KEYS  # shown in their own sections
    stats = {k: v for k, v in evidence.items() if k not in skip}
    order = [k for k in STAT_LABELS if k in stats] + [k for k in stats if k not in STAT_LABELS]
    rows = []
    for k in order:
        v = stats[k]
        text = f"{v:.1%}" if k == "share" and isinstance(v, int | float) else number(v)
        rows.append(
            f'<div><dt>{esc(STAT_LABELS.get(k, k))}</dt><dd data-stat="{esc(k)}">{text}</dd></div>'
        )
    merged = evidence.get("merged_tickets") or []
    if merged:
        links = ", ".join(f'<a href="/tickets/{esc(m)}">{esc(m)}</a>' for m in merged)
        rows.append(f"<div><dt>merged tickets</dt><dd>{links}</dd></div>")
    if not rows:
        return '<p class="note">No batch statistics: a single unit stands out.</p>'
    return f'<dl class="facts" style="grid-template-columns:1fr">{"".join(rows)}</dl>'


def _units(devices: list[Mapping[str, Any]]) -> str:
    if not devices:
        return '<p class="note">No units are listed.</p>'
    rows = []
    for d in devices:
        chips = "".join(
            f"<span>{esc(k)} {number(v)}</span>" for k, v in (d.get("evidence") or {}).items()
        )
        cls, state = ("st-open", "active") if d.get("active") else ("st-closed", "recovered")
        rows.append(
            f'<tr data-device="{esc(d["device"])}"><td>{esc(d["device"])}</td>'
            f'<td><span class="badge {cls}">{state}</span></td>'
            f"<td>{when_ts(d.get('onset_ts'))}</td><td>{when_ts(d.get('first_ts'))}</td>"
            f"<td>{when_ts(d.get('last_ts'))}</td><td class=num>{number(d.get('score'))}</td>"
            f'<td class="chips">{chips}</td></tr>'
        )
    head = "<tr><th>unit</th><th>state</th><th>onset (estimate)</th><th>detected</th>"
    head += "<th>last finding</th><th class=num>score</th><th>evidence</th></tr>"
    return f'<table id="units"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _history(history: list[Mapping[str, Any]]) -> str:
    if not history:
        return '<p class="note">No history yet.</p>'
    items = []
    for h in history:
        move = ""
        if h.get("to_status"):
            source = f"{esc(h['from_status'])} " if h.get("from_status") else ""
            move = f" · {source}→ {esc(h['to_status'])}"
        note = f"<div>{esc(h['note'])}</div>" if h.get("note") else ""
        items.append(
            f'<li><b>{esc(h["action"])}</b>{move}<div class="meta">{when(h["at"])} · '
            f"{esc(h['actor'])}</div>{note}</li>"
        )
    return f'<ol class="timeline">{"".join(items)}</ol>'


def _chart(chart: EvidenceChart) -> str:
    if chart.svg is None:
        return f'<p class="note no-chart">{esc(chart.note)}</p>'
    return f'<div class="chart-wrap">{chart.svg}</div><p class="note">{esc(chart.note)}</p>'


def _subject(t: Mapping[str, Any]) -> str:
    """What the ticket is about and where (the line under its id)."""
    what = f"{esc(t['fault'])} ({esc(t['category'])})" if t["fault"] else esc(t["category"])
    via = f" via {esc(t['channel'])}" if t.get("channel") else ""
    if t["scope"] == "customer":
        return f"{what} from a customer{via}"
    if t["scope"] == "device":
        told = f", reported{via}" if t.get("source") == "feedback" else ""
        unit = f"{esc(t['device'])} ({esc(t['model'])}, batch {esc(t['batch'])})"
        return f"{what} on unit {unit}{told}"
    basis = ", standing out by complaints" if t["evidence"].get("basis") == "complaints" else ""
    return f"{what} in batch {esc(t['batch'])} of {esc(t['model'])}{basis}"


def ticket_page(
    t: Mapping[str, Any],
    chart: EvidenceChart,
    *,
    can_correct: bool = False,
    notice: str = "",
    cases: str = "",
    loop: str = "",
) -> str:
    """One ticket; ``notice`` tops it (what became of a form just sent), ``can_correct`` shows
    the form correcting a feedback ticket's classification, ``cases`` its similar past cases."""
    history = f'<section class="card" id="history"><h2>History</h2>{_history(t["history"])}'
    history += "</section>"
    if feedback_view.from_complaint(t):  # one unit or none: no batch statistics, no units table
        rest = history
    else:
        devices = t["evidence"].get("devices", [])
        rest = (
            '<div class="grid2">'
            f'<section class="card" id="statistics"><h2>Batch statistics</h2>'
            f"{_statistics(t['evidence'])}</section>{history}</div>"
            f'<section class="card"><h2>Affected units ({len(devices)})</h2>'
            f"{_units(devices)}</section>"
        )
    return (
        '<p class="sub"><a href="/tickets">← All tickets</a></p>'
        f"{notice}"
        f'<h1 id="ticket-id">{esc(t["id"])} {severity_badge(t["severity"])} '
        f"{status_badge(t['status'])}</h1>"
        f'<p class="sub" id="subject">{_subject(t)}</p>'
        f'<section class="card">{_facts(t)}</section>'
        f"{feedback_view.feedback_sections(t, can_correct=can_correct)}"
        f'<section class="card" id="evidence-chart"><h2>Evidence</h2>{_chart(chart)}</section>'
        f"{loop}{cases}{rest}"
    )


# --- signing in ---------------------------------------------------------------------------------
def login_page(next_url: str, error: str | None = None) -> str:
    alert = f'<div class="error" role="alert">{esc(error)}</div>' if error else ""
    return (
        '<div class="login card"><h1>Sign in</h1>'
        '<p class="sub">Use your qloop API token (ask an administrator for one).</p>'
        f'{alert}<form method="post" action="/login">'
        f'<input type="hidden" name="next" value="{esc(next_url)}">'
        '<label for="token">API token</label>'
        '<input id="token" name="token" type="password" autocomplete="current-password"'
        " required autofocus>"
        '<button class="primary" id="sign-in" type="submit">Sign in</button></form></div>'
    )


# --- wiring -------------------------------------------------------------------------------------
def pages_router(
    service: TicketService, *, journal: str | None, influx: InfluxTarget | None
) -> APIRouter:
    """The pages' routes over ``service``; the evidence charts read the store in use
    (``influx`` if set, else the worker's ``journal``)."""
    router = APIRouter(include_in_schema=False)
    User = Annotated[Principal, Depends(auth.cookie_user(service))]

    @router.get("/")
    def home() -> RedirectResponse:
        return RedirectResponse(auth.HOME, status_code=303)

    @router.get("/login")
    def login_form(next: str | None = None) -> Response:
        return html(page("Sign in", login_page(auth.safe_next(next)), user=None))

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not auth.same_origin(request):
            return html(
                page("Sign in", login_page(auth.HOME, "cross-site sign-in refused"), user=None), 403
            )
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
        token = (form.get("token") or [""])[0].strip()
        target = auth.safe_next((form.get("next") or [None])[0])
        principal = None
        if token and len(token) <= auth.MAX_TOKEN_CHARS:
            principal = await run_in_threadpool(service.authenticate, token)
        if principal is None:
            body = login_page(target, "That token is not valid." if token else "Enter a token.")
            return html(page("Sign in", body, user=None), 401)
        response = RedirectResponse(target, status_code=303)
        auth.sign_in(response, request, token)
        return response

    @router.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        auth.sign_out(response)
        return response

    @router.get("/tickets")
    def tickets(request: Request, user: User) -> Response:
        cursor = request.query_params.get("cursor") or None
        try:
            filters = parse_filters(request.query_params)
            limit = parse_limit(request.query_params.get("limit"))
            query: dict[str, Any] = dict(filters)
            if "needs_triage" in query:
                query["needs_triage"] = query["needs_triage"] == "true"
            result = service.tickets(**query, limit=limit, cursor=cursor)
        except (BadFilter, InvalidCursor) as exc:
            safe = {
                k: v for k, v in request.query_params.items() if k in FILTERS and k not in CHOICES
            }
            body = ticket_list_page([], safe, None, paged=False, error=str(exc))
            return html(page("Tickets", body, user=user), 422)
        items = [TicketPublic.model_validate(t).model_dump(mode="json") for t in result.items]
        if limit != PAGE_SIZE:  # keep a chosen page size on the paging links
            filters = {**filters, "limit": str(limit)}
        body = ticket_list_page(items, filters, result.next, paged=cursor is not None)
        return html(page("Tickets", body, user=user))

    @router.get("/tickets/{ticket_id}")
    def ticket(ticket_id: str, request: Request, user: User) -> Response:
        view = service.get_ticket(ticket_id)
        if view is None:
            body = (
                f'<h1>No ticket {esc(ticket_id)}</h1><p class="sub">It may have been mistyped.'
                ' <a href="/tickets">Back to all tickets</a>.</p>'
            )
            return html(page("Not found", body, user=user), 404)
        t = TicketDetailPublic.model_validate(view).model_dump(mode="json")
        if feedback_view.from_complaint(t) or t["fault"] is None:
            chart = feedback_view.feedback_chart(t, journal, influx)
        else:
            detected = datetime.fromisoformat(t["detected_at"]).timestamp()
            chart = chart_for_ticket(t, journal, detected_ts=detected, influx=influx)
        notice = feedback_view.notice(request.query_params, t)
        cases = cases_view.similar_section(service.similar_cases(ticket_id))
        body = ticket_page(
            t,
            chart,
            can_correct=user.can(feedback.ROLE),
            notice=notice,
            cases=cases,
            loop=loop_view.loop_sections(t, user),
        )
        return html(page(t["id"], body, user=user))

    return router


def mount_pages(
    app: FastAPI, service: TicketService, *, journal: str | None, influx: InfluxTarget | None
) -> None:
    """Serve the pages from ``app`` (call once in ``create_app``)."""
    app.include_router(pages_router(service, journal=journal, influx=influx))
    app.include_router(feedback.feedback_router(service))  # the complaint form, corrections
    app.include_router(report.report_router(service))  # the monthly report, page and PDF
    app.include_router(dashboard_router(service))  # the landing page, /dashboard
    app.include_router(cases_view.cases_router(service))  # past cases: search
    app.include_router(loop_view.loop_router(service))  # measures, cause, check, callback
    app.add_exception_handler(auth.LoginRequired, auth.login_redirect)
