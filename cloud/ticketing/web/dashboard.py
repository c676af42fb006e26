"""The dashboard page (``/dashboard``, 看板), where the pages land after signing in.

What ``GET /api/v1/board`` answers (``cloud/ticketing/board.py`` defines it), drawn for people:
the alerts of figures below target two weeks running; this month's four figures per department
against their targets (质量目标分解表), a missed one marked; the open tickets counted by
department and severity, then listed for triage (severity III first, then the soonest due, so
the overdue on top); the batches with open batch tickets; and the drill-down — every count links
to the board narrowed to its model, category or department, and the form narrows it too.
Server-rendered in the viewer's language (``i18n.py``), like every page; no script.
"""

# No ``from __future__ import annotations``: FastAPI reads the route functions' annotations.
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

from cloud.ticketing.board import SEVERITIES, Board, BoardView, Filters, TriageItem
from cloud.ticketing.measures import DEPARTMENTS
from cloud.ticketing.service import TicketService
from cloud.ticketing.targets import ALL, FIGURES, FigureRow, Miss, Target
from cloud.ticketing.tokens import Principal
from cloud.ticketing.web import auth, identity_view
from cloud.ticketing.web.i18n import name, names, tr
from cloud.ticketing.web.layout import (
    esc,
    html,
    named,
    page,
    select_options,
    severity_badge,
    status_badge,
    when,
)
from contract.errors import QloopError
from contract.faults import CATEGORIES

PATH = "/dashboard"
MAX_MODEL_CHARS = 64


class BadDrillDown(QloopError, ValueError):
    """A drill-down outside its vocabulary."""


def parse_filters(query: Mapping[str, str]) -> Filters:
    """The drill-down asked for; raises :class:`BadDrillDown` naming the choices."""
    model, category, department = ((query.get(k) or "").strip() for k in Filters.__match_args__)
    if len(model) > MAX_MODEL_CHARS:
        raise BadDrillDown(tr("a model is at most {n} characters", n=MAX_MODEL_CHARS))
    if category and category not in CATEGORIES:
        raise BadDrillDown(
            tr("unknown {name} {value}; one of {choices}", name="category",
               value=repr(category), choices=", ".join(CATEGORIES))
        )  # fmt: skip
    if department and department not in DEPARTMENTS:
        raise BadDrillDown(
            tr("unknown {name} {value}; one of {choices}", name="department",
               value=repr(department), choices=", ".join(DEPARTMENTS))
        )  # fmt: skip
    return Filters(model or None, category or None, department or None)


def drill(filters: Filters, **narrow: str | None) -> str:
    """The board's address narrowed further (``narrow``) from ``filters``."""
    query = {k: v for k, v in {**filters.as_dict(), **narrow}.items() if v}
    return PATH + (f"?{urlencode(query)}" if query else "")


def _department(department: str) -> str:
    return named("department", department)


def _problem(fault: str | None, category: str) -> str:
    return named("fault", fault) if fault else named("category", category)


# --- figures and alerts -------------------------------------------------------------------------
def _value(figure: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if FIGURES[figure].is_rate else f"{value:.2f}"


def _target(t: Target) -> str:
    return f"{'≥' if t.op == '>=' else '≤'} {_value(t.figure, t.value)}"


def _figure_cell(row: FigureRow, figure: str) -> str:
    value, missed = row.values[figure], row.missed(figure)
    n = row.counts.bases()[figure]
    below = esc(tr("below target"))
    mark = f' <span class="badge late" title="{below}">✗ {below}</span>' if missed else ""
    cls = "miss" if missed else "met" if value is not None else ""
    target = tr("target {target}", target=_target(row.targets[figure]))
    return (
        f'<td class="num {cls}" data-figure="{figure}" data-missed="{str(missed).lower()}">'
        f"<b>{_value(figure, value)}</b>{mark}"
        f'<div class="hint">{esc(target)} · n={n}</div></td>'
    )


def figures_section(view: BoardView) -> str:
    head = "".join(f"<th class=num>{esc(name('figure', f))}</th>" for f in FIGURES)
    rows = []
    for r in view.figures:
        label = _department(r.department)
        if r.department != ALL:
            label = f'<a href="{esc(drill(view.filters, department=r.department))}">{label}</a>'
        cells = "".join(_figure_cell(r, f) for f in FIGURES)
        rows.append(f'<tr data-department="{esc(r.department)}"><td>{label}</td>{cells}</tr>')
    if not rows:
        rows.append(f'<tr><td class="empty" colspan="{len(FIGURES) + 1}">—</td></tr>')
    so_far = esc(tr("({month}, so far)", month=view.month))
    heading = esc(tr("This month's figures"))
    return (
        f'<section class="card" id="figures"><h2>{heading} '
        f'<span class="sub">{so_far}</span></h2><div class="table-wrap">'
        f"<table><thead><tr><th>{esc(tr('Department'))}</th>{head}</tr></thead>"
        f'<tbody>{"".join(rows)}</tbody></table></div><p class="note">{_definitions()}</p>'
        "</section>"
    )


def _definitions() -> str:
    meaning = {
        "collection": tr("feedback tickets taken up within the acknowledge deadline"),
        "completion": tr("measures due so far that were done"),
        "satisfaction": tr("mean callback score (1-5)"),
        "recurrence": tr("tickets that came back after a fix or a low callback"),
    }
    said = " · ".join(f"{esc(name('figure', f))}: {esc(meaning[f])}" for f in FIGURES)
    return f"{said}. {esc(tr('Targets per department: --targets.'))}"


def _alert(m: Miss) -> str:
    f = FIGURES[m.figure]
    weeks = ", ".join(
        f"{_value(m.figure, v)} ({esc(w)})" for w, v in zip(m.weeks, m.values, strict=True)
    )
    target = esc(tr("target {target}", target=_target(m.target)))
    return (
        f'<li data-department="{esc(m.department)}" data-figure="{esc(m.figure)}">'
        f"<b>{_department(m.department)}</b> · {esc(name('figure', f.name))}: {weeks} — "
        f"{target}</li>"
    )


def alerts_section(view: BoardView) -> str:
    weeks = tr(" and ").join(view.weeks)
    heading = f"<h2>{esc(tr('Target alerts'))}</h2>"
    if not view.alerts:
        none = tr("No figure missed its target in both {weeks}.", weeks=weeks)
        return (
            f'<section class="card" id="alerts">{heading}<p class="note">{esc(none)}</p></section>'
        )
    items = "".join(_alert(m) for m in view.alerts)
    below = tr(
        "Below target in both {weeks} (ISO weeks, UTC); sent through the escalation webhook "
        "once a week.", weeks=weeks,
    )  # fmt: skip
    return (
        f'<section class="card alerting" id="alerts">{heading}<p class="sub">{esc(below)}</p>'
        f'<ul class="alerts">{items}</ul></section>'
    )


# --- open tickets -------------------------------------------------------------------------------
def counts_section(view: BoardView) -> str:
    head = "".join(f"<th class=num>{esc(name('severity', v))}</th>" for v in SEVERITIES)
    rows = []
    for r in view.severities:
        link = f'<a href="{esc(drill(view.filters, department=r.department))}">'
        cells = "".join(f'<td class="num">{r.severities[v]:,}</td>' for v in SEVERITIES)
        late = f'<span class="overdue-due">{r.overdue:,}</span>' if r.overdue else "0"
        rows.append(
            f'<tr data-department="{esc(r.department)}"><td>{link}'
            f"{_department(r.department)}</a></td>{cells}"
            f'<td class="num"><b>{r.total:,}</b></td><td class="num">{late}</td></tr>'
        )
    if not rows:
        rows.append(f'<tr><td class="empty" colspan="6">{esc(tr("No open tickets."))}</td></tr>')
    counted = tr(
        "{open} open, {overdue} overdue.",
        open=f'<b id="open-total">{view.open_tickets:,}</b>',
        overdue=f'<b id="overdue-total">{view.overdue:,}</b>',
    )
    return (
        '<section class="card" id="open-counts">'
        f"<h2>{esc(tr('Open tickets by department and severity'))}</h2>"
        f'<p class="sub">{counted}</p><div class="table-wrap">'
        f"<table><thead><tr><th>{esc(tr('Department'))}</th>{head}"
        f"<th class=num>{esc(tr('Total'))}</th><th class=num>{esc(tr('Overdue'))}</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _due(t: TriageItem) -> str:
    if t.overdue:
        late = f'<span class="badge late">{esc(tr("overdue"))}</span>'
        return f'<span class="overdue-due">{when(t.due_at.isoformat())}</span> {late}'
    return when(t.due_at.isoformat())


def _where(t: TriageItem) -> str:
    unit = f" · {esc(t.device)}" if t.device else ""
    return f"{esc(t.batch)}{unit}" if t.batch or t.device else named("scope", t.scope)


def triage_section(view: BoardView) -> str:
    rows = []
    for t in view.triage:
        status = status_badge(t.status)
        rows.append(
            f'<tr class="ticket{" overdue" if t.overdue else ""}" data-id="{esc(t.id)}">'
            f'<td><a href="/tickets/{esc(t.id)}">{esc(t.id)}</a></td>'
            f"<td>{severity_badge(t.severity)}</td><td>{_due(t)}</td>"
            f"<td>{_department(t.department)}</td><td>{status}</td>"
            f"<td>{_problem(t.fault, t.category)}</td><td class=nowrap>{esc(t.model)}</td>"
            f"<td>{_where(t)}</td><td>{named('source', t.source)}</td></tr>"
        )
    heads = (
        tr("Ticket"), tr("Severity"), tr("Due"), tr("Department"), tr("Status"), tr("Problem"),
        tr("Model"), tr("Batch"), tr("Source"),
    )  # fmt: skip
    if not rows:
        empty = esc(tr("No open tickets."))
        rows.append(f'<tr><td class="empty" colspan="{len(heads)}">{empty}</td></tr>')
    more = ""
    if view.open_tickets > len(view.triage):
        first = tr("The first {n} of {total};", n=len(view.triage), total=f"{view.open_tickets:,}")
        more = f'<p class="note">{esc(first)} <a href="/tickets">{esc(tr("all tickets"))}</a>.</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in heads)
    return (
        '<section class="card" id="triage">'
        f"<h2>{esc(tr('Triage: severity III first, then the soonest due'))}</h2>"
        '<div class="table-wrap"><table id="triage-list">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{more}"
        "</section>"
    )


def batches_section(view: BoardView) -> str:
    rows = []
    for b in view.batches:
        model = f'<a href="{esc(drill(view.filters, model=b.model))}">{esc(b.model)}</a>'
        rows.append(
            f'<tr data-id="{esc(b.id)}"><td><a href="/tickets/{esc(b.id)}">{esc(b.id)}</a></td>'
            f"<td class=nowrap>{model}</td><td>{esc(b.batch)}</td>"
            f"<td>{_problem(b.fault, b.category)}</td><td>{severity_badge(b.severity)}</td>"
            f'<td class="num">{b.affected_devices:,} / {b.batch_devices:,}</td>'
            f'<td class="num">{b.complaints:,}</td><td>{status_badge(b.status)}</td>'
            f"<td>{_due(b)}</td></tr>"
        )
    heads = (
        tr("Ticket"), tr("Model"), tr("Batch"), tr("Fault"), tr("Severity"),
        tr("Affected / units"), tr("Complaints"), tr("Status"), tr("Due"),
    )  # fmt: skip
    if not rows:
        empty = esc(tr("No open batch tickets."))
        rows.append(f'<tr><td class="empty" colspan="{len(heads)}">{empty}</td></tr>')
    head = "".join(f"<th>{esc(h)}</th>" for h in heads)
    return (
        '<section class="card" id="batches">'
        f"<h2>{esc(tr('Batches with open batch tickets'))}</h2>"
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def drilldown_section(view: BoardView) -> str:
    def links(items: list[tuple[str | None, int]], key: str, kind: str | None) -> str:
        out = []
        for value, n in items:
            shown = (named(kind, value) if kind else esc(value)) if value else "—"
            if value:
                shown = f'<a href="{esc(drill(view.filters, **{key: value}))}">{shown}</a>'
            out.append(f"<span>{shown} <b>{n:,}</b></span>")
        return "".join(out) or '<span class="note">—</span>'

    return (
        f'<section class="card" id="drilldown"><h2>{esc(tr("Drill down (open tickets)"))}</h2>'
        f'<h3>{esc(tr("By model"))}</h3><div class="chips" id="by-model">'
        f"{links(view.models, 'model', None)}</div>"
        f'<h3>{esc(tr("By category"))}</h3><div class="chips" id="by-category">'
        f"{links(view.categories, 'category', 'category')}</div></section>"
    )


def _form(filters: Filters, models: list[str], error: str | None = None) -> str:
    listed = "".join(f'<option value="{esc(m)}">' for m in models)
    alert = f'<div class="error" role="alert">{esc(error)}</div>' if error else ""
    anything = esc(tr("any"))
    return (
        f'{alert}<form class="filters card" method="get" action="{PATH}">'
        f'<label>{esc(tr("model"))}<input name="model" value="{esc(filters.model or "")}" '
        f'placeholder="{anything}" list="models"></label><datalist id="models">{listed}</datalist>'
        f'<label>{esc(tr("category"))}<select name="category">'
        f"{select_options(names('category', CATEGORIES), filters.category, tr('any'))}</select>"
        f'</label><label>{esc(tr("department"))}<select name="department">'
        f"{select_options(names('department', DEPARTMENTS), filters.department, tr('any'))}"
        "</select></label>"
        f'<button class="primary" type="submit">{esc(tr("Show"))}</button>'
        f'<a class="button" href="{PATH}">{esc(tr("Clear"))}</a></form>'
    )


def dashboard_page(view: BoardView, changes: str = "") -> str:
    """The dashboard's body; ``changes``: the units announcing another identity, if any."""
    models = [m for m, _ in view.models if m]
    narrowed = ", ".join(f"{tr(k)} {v}" for k, v in view.filters.as_dict().items() if v)
    sub = tr("As of {at}", at=when(view.now.isoformat()))
    if narrowed:
        sub += " · " + esc(tr("narrowed to {what}", what=narrowed))
    return (
        f'<h1>{esc(tr("Dashboard"))}</h1><p class="sub" id="board-as-of">{sub}</p>'
        f"{_form(view.filters, models)}{changes}{alerts_section(view)}{figures_section(view)}"
        f"{counts_section(view)}{triage_section(view)}{batches_section(view)}"
        f"{drilldown_section(view)}"
    )


# --- the route ----------------------------------------------------------------------------------
def dashboard_router(service: TicketService) -> APIRouter:
    """``/dashboard`` for anyone signed in (the board is in ``app.state.board``)."""
    router = APIRouter(include_in_schema=False)
    User = Annotated[Principal, Depends(auth.cookie_user(service))]

    @router.get(PATH)
    def dashboard(request: Request, user: User) -> Response:
        board: Board = request.app.state.board
        try:
            filters = parse_filters(request.query_params)
        except BadDrillDown as exc:
            body = f"<h1>{esc(tr('Dashboard'))}</h1>{_form(Filters(), [], str(exc))}"
            return html(page(tr("Dashboard"), body, user=user), 422)
        held = identity_view.changes_section(service.identity_changes("pending", limit=50), user)
        body = dashboard_page(board.view(filters), held)
        return html(page(tr("Dashboard"), body, user=user))

    return router
