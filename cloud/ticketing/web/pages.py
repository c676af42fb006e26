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
from cloud.ticketing.web import (
    auth,
    cases_view,
    feedback,
    feedback_view,
    identity_view,
    loop_view,
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
    select_options,
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
#: The vocabulary whose names (``i18n.name``) a filter's choices read as.
CHOICE_KINDS = {"status": "status", "scope": "scope", "source": "source", "channel": "channel",
                "severity": "severity"}  # fmt: skip
#: The filters' labels, in the viewer's language.
FILTER_LABELS = {
    "status": "status", "scope": "scope", "model": "model", "batch": "batch", "fault": "fault",
    "severity": "severity", "source": "source", "channel": "channel",
    "needs_triage": "needs triage",
}  # fmt: skip
FILTERS = (
    "status", "scope", "model", "batch", "fault", "severity", "source", "channel", "needs_triage",
)  # fmt: skip
TRIAGE_QUEUE = "/tickets?needs_triage=true"
#: How the batch test's numbers are labelled (in English: ``t`` translates), in the order an
#: engineer reads them.
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
    for key in FILTERS:
        value = (query.get(key) or "").strip()
        if not value:
            continue
        if key in CHOICES and value not in CHOICES[key]:
            raise BadFilter(
                tr("unknown {name} {value}; one of {choices}", name=key, value=repr(value),
                  choices=", ".join(CHOICES[key]))
            )  # fmt: skip
        out[key] = value
    return out


def parse_limit(value: str | None) -> int:
    """The page size asked for (``limit``, as in the API), 1..MAX_PAGE_SIZE."""
    if not value:
        return PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise BadFilter(
            tr("limit must be a whole number from 1 to {n}, got {value}", n=MAX_PAGE_SIZE,
              value=repr(value))
        )  # fmt: skip
    return int(value)


def _is_overdue(t: Mapping[str, Any]) -> bool:
    return t.get("overdue") is True  # optional field: absent means "not known to be overdue"


def _where(t: Mapping[str, Any]) -> str:
    if t["scope"] == "customer":
        return esc(name("scope", "customer"))
    if t["scope"] == "device":
        anchor = "feedback" if t.get("source") == "feedback" else "units"
        unit = f'<a href="/tickets/{esc(t["id"])}#{anchor}">{esc(t["device"])}</a>'
        return f"{esc(t['batch'])} · {unit}"
    return esc(t["batch"])


def _problem(t: Mapping[str, Any]) -> str:
    """The fault, or the category of a complaint about no fault of the vocabulary."""
    if t["fault"]:
        return named("fault", t["fault"])
    return f'<span class="note">{named("category", t["category"])}</span>'


def _due(t: Mapping[str, Any]) -> str:
    if _is_overdue(t):
        due = when(t["due_at"])
        late = f'<span class="badge late">{esc(tr("overdue"))}</span>'
        return f'<span class="overdue-due">{due}</span> {late}'
    return when(t["due_at"])


# --- the ticket list ----------------------------------------------------------------------------
def _choice(key: str, value: str) -> str:
    """How a filter's choice reads in its select."""
    if key == "needs_triage":
        return tr("yes, needs triage") if value == "true" else tr("no")
    kind = CHOICE_KINDS.get(key)
    return name(kind, value) if kind else value


def _filter_form(filters: Mapping[str, str]) -> str:
    fields = []
    anything = esc(tr("any"))
    for key in FILTERS:
        current = filters.get(key, "")
        if key in CHOICES:
            choices = {v: _choice(key, v) for v in CHOICES[key]}
            options = select_options(choices, current, tr("any"))
            control = f'<select name="{key}">{options}</select>'
        else:
            listed = ' list="faults"' if key == "fault" else ""
            control = (
                f'<input name="{key}" value="{esc(current)}" placeholder="{anything}"{listed}>'
            )
        fields.append(f"<label>{esc(tr(FILTER_LABELS[key]))}{control}</label>")
    faults = "".join(f'<option value="{esc(f)}" label="{esc(name("fault", f))}">' for f in FAULTS)
    return (
        f'<form class="filters card" method="get" action="/tickets">{"".join(fields)}'
        f'<datalist id="faults">{faults}</datalist>'
        f'<button class="primary" type="submit">{esc(tr("Filter"))}</button>'
        f'<a class="button" href="/tickets">{esc(tr("Clear"))}</a></form>'
    )


def _ticket_row(t: Mapping[str, Any]) -> str:
    lead, rest = t["department"], [d for d in t["departments"] if d != t["department"]]
    departments = f"<b>{named('department', lead)}</b>" + "".join(
        f", {named('department', d)}" for d in rest
    )
    priority = f'<span class="pr-{esc(t["priority"])}">{named("priority", t["priority"])}</span>'
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
        tr("id"), tr("source"), tr("fault"), tr("model"), tr("batch / device"), tr("severity"),
        tr("priority"), tr("departments"), tr("status"), tr("affected / batch"), tr("detected"),
        tr("due"),
    )  # fmt: skip
    head = "".join(
        f"<th{' class=num' if i == 9 else ''}>{esc(h)}</th>" for i, h in enumerate(heads)
    )
    rows = "".join(_ticket_row(t) for t in items)
    if not items:
        empty = esc(tr("No tickets match."))
        rows = f'<tr><td class="empty" colspan="{len(heads)}">{empty}</td></tr>'
    pager = []
    if paged:
        first = esc(tr("← First page"))
        pager.append(f'<a class="button" href="/tickets?{urlencode(filters)}">{first}</a>')
    if next_cursor:
        query = urlencode({**filters, "cursor": next_cursor})
        after = esc(tr("Next page →"))
        pager.append(f'<a class="button" rel="next" href="/tickets?{query}">{after}</a>')
    intro = tr("Opened from field telemetry and customer feedback, newest first.")
    body = (
        f"<h1>{esc(tr('Quality tickets'))}</h1>"
        f'<p class="sub">{esc(intro)} '
        f'<a class="button" id="triage-queue" href="{TRIAGE_QUEUE}">{esc(tr("Triage queue"))}</a>'
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
        ("due", tr("due"), _due(t)),
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
    } | feedback_view.EVIDENCE_KEYS  # shown in their own sections
    stats = {k: v for k, v in evidence.items() if k not in skip}
    order = [k for k in STAT_LABELS if k in stats] + [k for k in stats if k not in STAT_LABELS]
    rows = []
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
    if not rows:
        return f'<p class="note">{esc(tr("No batch statistics: a single unit stands out."))}</p>'
    return f'<dl class="facts" style="grid-template-columns:1fr">{"".join(rows)}</dl>'


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
        note = f"<div>{esc(h['note'])}</div>" if h.get("note") else ""
        items.append(
            f'<li data-action="{esc(h["action"])}"><b>{esc(name("action", h["action"]))}</b>'
            f'{move}<div class="meta">{when(h["at"])} · '
            f"{esc(h['actor'])}</div>{note}</li>"
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
