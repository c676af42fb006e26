"""The ticketing pages: the ticket list (rendered by :mod:`~cloud.ticketing.web.ticket_list`),
one ticket with its evidence chart, and signing in (people's feedback on them, and the
complaint form, are in :mod:`~cloud.ticketing.web.feedback`).

Server-rendered HTML over the same :class:`TicketService` calls and the same public schemas as
``/api/v1`` (a page shows exactly what the API answers, including fields added to the schema
later, such as ``overdue``). Mounted on the API's app by :func:`mount_pages`.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route functions' annotations,
# and the ``User`` dependency they name is local to :func:`pages_router`.
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from cloud.store.readback import InfluxTarget
from cloud.ticketing.api.schemas import (
    TicketDetailPublic,
    TicketPublic,
)
from cloud.ticketing.errors import InvalidCursor
from cloud.ticketing.history import SYSTEM
from cloud.ticketing.service import TicketService
from cloud.ticketing.tokens import Principal
from cloud.ticketing.web import (
    auth,
    cases_view,
    feedback,
    feedback_view,
    history_notes,
    identity_view,
    loop_view,
    pooled_view,
    report,
)
from cloud.ticketing.web.dashboard import dashboard_router
from cloud.ticketing.web.evidence import EvidenceChart, chart_for_ticket
from cloud.ticketing.web.i18n import name, tr
from cloud.ticketing.web.language import LocaleMiddleware, language_router
from cloud.ticketing.web.layout import (
    esc,
    html,
    named,
    number,
    page,
    severity_badge,
    status_badge,
    when,
    when_ts,
)
from cloud.ticketing.web.ticket_list import (
    CHOICES,
    FILTERS,
    PAGE_SIZE,
    BadFilter,
    due,
    parse_filters,
    parse_limit,
    ticket_list_page,
)

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


# --- one ticket ---------------------------------------------------------------------------------
def _facts(t: Mapping[str, Any]) -> str:
    """The ticket's fields; an unknown model, batch or fault (a customer's ticket) reads "—"."""
    parent = t.get("parent")
    affected = tr("{n} of {m} in the batch", n=t["affected_devices"], m=t["batch_devices"])
    received = "received" if feedback_view.from_complaint(t) else "detected"
    facts = [  # (field, its label, the value as HTML)
        ("scope", tr("scope"), named("scope", t["scope"])),
        ("model", tr("model"), esc(t["model"])),
        ("batch", tr("batch"), esc(t["batch"])),
        ("device", tr("device"), esc(t["device"])),
        ("fault", tr("fault"), named("fault", t["fault"])),
        ("category", tr("category"), named("category", t["category"])),
        ("severity", tr("severity"), severity_badge(t["severity"])),
        ("priority", tr("priority"), named("priority", t["priority"])),
        ("lead department", tr("lead department"), named("department", t["department"])),
        ("departments", tr("departments"), ", ".join(named("department", d)
                                                    for d in t["departments"])),
        ("status", tr("status"), status_badge(t["status"])),
        ("source", tr("source"), feedback_view.source_badge(t)),
        ("affected units", tr("affected units"), esc(affected) if t["batch"] is not None else "—"),
        (received, tr(received), when(t["detected_at"])),
        ("opened", tr("opened"), when(t["opened_at"])),
        ("due", tr("due"), due(t)),
        ("parent", tr("parent"),
         f'<a href="/tickets/{esc(parent)}">{esc(parent)}</a>' if parent else "—"),
        ("repeats", tr("repeats"), esc(t.get("repeats", 0))),
    ]  # fmt: skip
    for key, label in (("stage", tr("SLA stage")), ("overdue_stage", tr("overdue stage"))):
        if t.get(key):
            facts.append((key, label, named("stage", t[key])))
    if fix := t.get("fix"):  # the latest fix; its units are judged in the history
        outcome = named("outcome", fix["outcome"])
        facts.append(("fix", tr("fix"), f"{esc(fix['description'])} ({outcome})"))
    shown = {"id", "history", "evidence", "department", "affected_devices", "batch_devices"}
    shown |= {"detected_at", "opened_at", "due_at", "overdue", "channel", "classification"}
    shown |= {"stage", "overdue_stage", "fix", "cause_analysis", "measures", "measure_figures"}
    shown |= {k for k, _, _ in facts}
    facts += [(k, k, esc(v)) for k, v in t.items() if k not in shown]  # fields added later
    items = "".join(
        f'<div><dt>{esc(label)}</dt><dd data-field="{k}">{v}</dd></div>' for k, label, v in facts
    )
    return f'<dl class="facts">{items}</dl>'


def _statistics(evidence: Mapping[str, Any]) -> str:
    skip = {
        "devices",
        "merged_tickets",
        "opened_by",
        "pooled",
    } | feedback_view.EVIDENCE_KEYS  # shown in their own sections
    stats = {k: v for k, v in evidence.items() if k not in skip}
    order = [k for k in STAT_LABELS if k in stats] + [k for k in stats if k not in STAT_LABELS]
    rows = [pooled_view.opened_by_row(evidence)] if evidence.get("opened_by") else []
    for k in order:
        v = stats[k]
        text = f"{v:.1%}" if k == "share" and isinstance(v, int | float) else number(v)
        if isinstance(v, str):  # a named method (policy.TEST_*): its translation if it has one
            text = esc(tr(v))
        rows.append(
            f"<div><dt>{esc(tr(STAT_LABELS[k]) if k in STAT_LABELS else k)}</dt>"
            f'<dd data-stat="{esc(k)}">{text}</dd></div>'
        )
    merged = evidence.get("merged_tickets") or []
    if merged:
        links = ", ".join(f'<a href="/tickets/{esc(m)}">{esc(m)}</a>' for m in merged)
        rows.append(f"<div><dt>{esc(tr('merged tickets'))}</dt><dd>{links}</dd></div>")
    pooled = pooled_view.pooled_section(evidence)
    if not rows and not pooled:
        return f'<p class="note">{esc(tr("No batch statistics: a single unit stands out."))}</p>'
    return f'<dl class="facts" style="grid-template-columns:1fr">{"".join(rows)}</dl>{pooled}'


def _units(devices: list[Mapping[str, Any]]) -> str:
    if not devices:
        return f'<p class="note">{esc(tr("No units are listed."))}</p>'
    rows = []
    for d in devices:
        chips = "".join(
            f"<span>{esc(k)} {number(v)}</span>" for k, v in (d.get("evidence") or {}).items()
        )
        cls, state = ("st-open", "active") if d.get("active") else ("st-closed", "recovered")
        if not d.get("active") and d.get("basis") == "pooled":  # the pooled test's: no alarm yet
            cls, state = "st-open", "drifting"
        if not d.get("active") and d.get("basis") == "peers":  # short of the model's other batches
            cls, state = "st-open", "short"
        rows.append(
            f'<tr data-device="{esc(d["device"])}"><td>{esc(d["device"])}</td>'
            f'<td><span class="badge {cls}" data-state="{state}">{esc(name("unit_state", state))}'
            "</span></td>"
            f"<td>{when_ts(d.get('onset_ts'))}</td><td>{when_ts(d.get('first_ts'))}</td>"
            f"<td>{when_ts(d.get('last_ts'))}</td><td class=num>{number(d.get('score'))}</td>"
            f'<td class="chips">{chips}</td></tr>'
        )
    heads = (
        tr("unit"), tr("state"), tr("onset (estimate)"), tr("detected"), tr("last finding"),
        tr("score"), tr("evidence"),
    )  # fmt: skip
    head = "".join(
        f"<th{' class=num' if i == 5 else ''}>{esc(h)}</th>" for i, h in enumerate(heads)
    )
    head = f"<tr>{head}</tr>"
    return f'<table id="units"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _history(history: list[Mapping[str, Any]]) -> str:
    if not history:
        return f'<p class="note">{esc(tr("No history yet."))}</p>'
    items = []
    for h in history:
        move = ""
        if h.get("to_status"):
            source = f"{named('status', h['from_status'])} " if h.get("from_status") else ""
            move = f" · {source}→ {named('status', h['to_status'])}"
        note = ""
        if h.get("note"):  # the system's own wording in the viewer's language, the stored
            shown = history_notes.translate(h["note"], action=h["action"])  # English on hover
            title = f' title="{esc(h["note"])}"' if shown != h["note"] else ""
            note = f'<div class="note-text"{title}>{esc(shown)}</div>'
        items.append(
            f'<li data-action="{esc(h["action"])}"><b>{esc(name("action", h["action"]))}</b>'
            f'{move}<div class="meta">{when(h["at"])} · '
            f"{esc(tr('system') if h['actor'] == SYSTEM else h['actor'])}</div>{note}</li>"
        )
    return f'<ol class="timeline">{"".join(items)}</ol>'


def _chart(chart: EvidenceChart) -> str:
    if chart.svg is None:
        return f'<p class="note no-chart">{esc(chart.note)}</p>'
    return f'<div class="chart-wrap">{chart.svg}</div><p class="note">{esc(chart.note)}</p>'


def _subject(t: Mapping[str, Any]) -> str:
    """What the ticket is about and where (the line under its id)."""
    fault, category = named("fault", t["fault"]), named("category", t["category"])
    what = f"{fault} ({category})" if t["fault"] else category
    channel = named("channel", t.get("channel")) if t.get("channel") else ""
    via = tr(" via {channel}", channel=channel) if channel else ""
    if t["scope"] == "customer":
        return tr("{what} from a customer{via}", what=what, via=via)
    model, batch = esc(t["model"]), esc(t["batch"])
    if t["scope"] == "device":
        told = tr(", reported{via}", via=via) if t.get("source") == "feedback" else ""
        return tr("{what} on unit {unit} ({model}, batch {batch}){told}", what=what,
                  unit=esc(t["device"]), model=model, batch=batch, told=told)  # fmt: skip
    basis = tr(", standing out by complaints") if t["evidence"].get("basis") == "complaints" else ""
    return tr("{what} in batch {batch} of {model}{basis}", what=what, batch=batch, model=model,
              basis=basis)  # fmt: skip


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
    history = f'<section class="card" id="history"><h2>{esc(tr("History"))}</h2>'
    history += _history(t["history"])
    history += "</section>"
    if feedback_view.from_complaint(t):  # one unit or none: no batch statistics, no units table
        rest = history
    else:
        devices = t["evidence"].get("devices", [])
        rest = (
            '<div class="grid2">'
            f'<section class="card" id="statistics"><h2>{esc(tr("Batch statistics"))}</h2>'
            f"{_statistics(t['evidence'])}</section>{history}</div>"
            f'<section class="card"><h2>{esc(tr("Affected units ({n})", n=len(devices)))}</h2>'
            f"{_units(devices)}</section>"
        )
    return (
        f'<p class="sub"><a href="/tickets">{esc(tr("← All tickets"))}</a></p>'
        f"{notice}"
        f'<h1 id="ticket-id">{esc(t["id"])} {severity_badge(t["severity"])} '
        f"{status_badge(t['status'])}</h1>"
        f'<p class="sub" id="subject">{_subject(t)}</p>'
        f'<section class="card">{_facts(t)}</section>'
        f"{feedback_view.feedback_sections(t, can_correct=can_correct)}"
        f'<section class="card" id="evidence-chart"><h2>{esc(tr("Evidence"))}</h2>'
        f"{_chart(chart)}</section>"
        f"{loop}{cases}{rest}"
    )


# --- signing in ---------------------------------------------------------------------------------
def login_page(next_url: str, error: str | None = None) -> str:
    alert = f'<div class="error" role="alert">{esc(error)}</div>' if error else ""
    return (
        f'<div class="login card"><h1>{esc(tr("Sign in"))}</h1>'
        f'<p class="sub">{esc(tr("Use your qloop API token (ask an administrator for one)."))}'
        f'</p>{alert}<form method="post" action="/login">'
        f'<input type="hidden" name="next" value="{esc(next_url)}">'
        f'<label for="token">{esc(tr("API token"))}</label>'
        '<input id="token" name="token" type="password" autocomplete="current-password"'
        " required autofocus>"
        f'<button class="primary" id="sign-in" type="submit">{esc(tr("Sign in"))}</button>'
        "</form></div>"
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
        return html(page(tr("Sign in"), login_page(auth.safe_next(next)), user=None))

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not auth.same_origin(request):
            refused = login_page(auth.HOME, tr("cross-site sign-in refused"))
            return html(page(tr("Sign in"), refused, user=None), 403)
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
        token = (form.get("token") or [""])[0].strip()
        target = auth.safe_next((form.get("next") or [None])[0])
        principal = None
        if token and len(token) <= auth.MAX_TOKEN_CHARS:
            principal = await run_in_threadpool(service.authenticate, token)
        if principal is None:
            body = login_page(
                target, tr("That token is not valid.") if token else tr("Enter a token.")
            )
            return html(page(tr("Sign in"), body, user=None), 401)
        response = RedirectResponse(target, status_code=303)
        await run_in_threadpool(auth.sign_in, response, request, token)  # a database write
        return response

    @router.post("/logout")
    def logout(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        if auth.same_origin(request):  # another site's form cannot end a session
            auth.sign_out(response, request)  # the session ends on the server, not only here
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
            return html(page(tr("Tickets"), body, user=user), 422)
        items = [TicketPublic.model_validate(t).model_dump(mode="json") for t in result.items]
        if limit != PAGE_SIZE:  # keep a chosen page size on the paging links
            filters = {**filters, "limit": str(limit)}
        body = ticket_list_page(items, filters, result.next, paged=cursor is not None)
        return html(page(tr("Tickets"), body, user=user))

    @router.get("/tickets/{ticket_id}")
    def ticket(ticket_id: str, request: Request, user: User) -> Response:
        view = service.get_ticket(ticket_id)
        if view is None:
            body = (
                f"<h1>{esc(tr('No ticket {id}', id=ticket_id))}</h1>"
                f'<p class="sub">{esc(tr("It may have been mistyped."))} '
                f'<a href="/tickets">{esc(tr("Back to all tickets"))}</a></p>'
            )
            return html(page(tr("Not found"), body, user=user), 404)
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
    app.include_router(identity_view.identity_router(service))  # identity changes: decide
    app.include_router(language_router())  # the language switch, the time zone picker
    app.add_exception_handler(auth.LoginRequired, auth.login_redirect)
    app.add_middleware(LocaleMiddleware)  # each request's language and time zone
