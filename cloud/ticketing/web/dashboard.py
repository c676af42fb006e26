"""The dashboard page (``/dashboard``, 看板), where the pages land after signing in.

What ``GET /api/v1/board`` answers (``cloud/ticketing/board.py`` defines it), drawn for people:
the alerts of figures below target two weeks running; this month's four figures per department
against their targets (质量目标分解表), a missed one marked; the open tickets counted by
department and severity, then listed for triage (severity III first, then the soonest due, so
the overdue on top); the batches with open batch tickets; and the drill-down — every count links
to the board narrowed to its model, category or department, and the form narrows it too.
Server-rendered with bilingual labels, like the report page; no script.
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
from cloud.ticketing.web import auth
from cloud.ticketing.web.layout import esc, html, page, severity_badge, status_badge, when
from cloud.ticketing.web.report import CATEGORIES_ZH, STATUS_ZH, problem
from contract.errors import QloopError
from contract.faults import CATEGORIES

PATH = "/dashboard"
TITLE = "看板 / Dashboard"
MAX_MODEL_CHARS = 64
DEPARTMENTS_ZH = {
    "R&D": "研发", "Production": "生产", "Purchasing": "采购", "Quality": "质量",
    "Service": "售后", ALL: "全部",
}  # fmt: skip
SEVERITY_ZH = {"III": "III 紧急", "II": "II 严重", "I": "I 一般"}
TRIAGE_HEADS = (
    "工单 / Ticket", "级别 / Severity", "期限 / Due", "部门 / Department", "状态 / Status",
    "问题 / Problem", "型号 / Model", "批次 / Batch", "来源 / Source",
)  # fmt: skip
BATCH_HEADS = (
    "工单 / Ticket", "型号 / Model", "批次 / Batch", "故障 / Fault", "级别 / Severity",
    "影响 / Affected / units", "投诉 / Complaints", "状态 / Status", "期限 / Due",
)  # fmt: skip


class BadDrillDown(QloopError, ValueError):
    """A drill-down outside its vocabulary."""


def parse_filters(query: Mapping[str, str]) -> Filters:
    """The drill-down asked for; raises :class:`BadDrillDown` naming the choices."""
    model, category, department = ((query.get(k) or "").strip() for k in Filters.__match_args__)
    if len(model) > MAX_MODEL_CHARS:
        raise BadDrillDown(f"a model is at most {MAX_MODEL_CHARS} characters")
    if category and category not in CATEGORIES:
        raise BadDrillDown(f"unknown category {category!r}; one of {', '.join(CATEGORIES)}")
    if department and department not in DEPARTMENTS:
        raise BadDrillDown(f"unknown department {department!r}; one of {', '.join(DEPARTMENTS)}")
    return Filters(model or None, category or None, department or None)


def drill(filters: Filters, **narrow: str | None) -> str:
    """The board's address narrowed further (``narrow``) from ``filters``."""
    query = {k: v for k, v in {**filters.as_dict(), **narrow}.items() if v}
    return PATH + (f"?{urlencode(query)}" if query else "")


def _department(name: str) -> str:
    zh = DEPARTMENTS_ZH.get(name)
    return f"{esc(name)} {zh}" if zh else esc(name)


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
    mark = ' <span class="badge late" title="below target">✗ 未达标</span>' if missed else ""
    cls = "miss" if missed else "met" if value is not None else ""
    return (
        f'<td class="num {cls}" data-figure="{figure}" data-missed="{str(missed).lower()}">'
        f"<b>{_value(figure, value)}</b>{mark}"
        f'<div class="hint">target {_target(row.targets[figure])} · n={n}</div></td>'
    )


def figures_section(view: BoardView) -> str:
    head = "".join(f"<th class=num>{esc(f.zh)}<br>{esc(f.en)}</th>" for f in FIGURES.values())
    rows = []
    for r in view.figures:
        name = _department(r.department)
        if r.department != ALL:
            name = f'<a href="{esc(drill(view.filters, department=r.department))}">{name}</a>'
        cells = "".join(_figure_cell(r, f) for f in FIGURES)
        rows.append(f'<tr data-department="{esc(r.department)}"><td>{name}</td>{cells}</tr>')
    if not rows:
        rows.append(f'<tr><td class="empty" colspan="{len(FIGURES) + 1}">—</td></tr>')
    return (
        f'<section class="card" id="figures"><h2>本月指标 / This month\'s figures '
        f'<span class="sub">({esc(view.month)}, so far)</span></h2><div class="table-wrap">'
        f"<table><thead><tr><th>部门 / Department</th>{head}</tr></thead>"
        f'<tbody>{"".join(rows)}</tbody></table></div><p class="note">{DEFINITIONS}</p>'
        "</section>"
    )


DEFINITIONS = (
    "反馈收集率: feedback tickets taken up within the acknowledge deadline · 整改完成率: "
    "measures due so far that were done · 客户满意度: mean callback score (1-5) · 同类问题重复率: "
    "tickets that came back after a fix or a low callback. Targets per department: --targets."
)


def _alert(m: Miss) -> str:
    f = FIGURES[m.figure]
    weeks = ", ".join(
        f"{_value(m.figure, v)} ({esc(w)})" for w, v in zip(m.weeks, m.values, strict=True)
    )
    return (
        f'<li data-department="{esc(m.department)}" data-figure="{esc(m.figure)}">'
        f"<b>{_department(m.department)}</b> · {esc(f.zh)} {esc(f.en)}: {weeks} — "
        f"target {_target(m.target)}</li>"
    )


def alerts_section(view: BoardView) -> str:
    weeks = " and ".join(view.weeks)
    if not view.alerts:
        return (
            '<section class="card" id="alerts"><h2>目标预警 / Target alerts</h2>'
            f'<p class="note">No figure missed its target in both {esc(weeks)}.</p></section>'
        )
    items = "".join(_alert(m) for m in view.alerts)
    return (
        '<section class="card alerting" id="alerts"><h2>目标预警 / Target alerts</h2>'
        f'<p class="sub">Below target in both {esc(weeks)} (ISO weeks, UTC); sent through the '
        f'escalation webhook once a week.</p><ul class="alerts">{items}</ul></section>'
    )


# --- open tickets -------------------------------------------------------------------------------
def counts_section(view: BoardView) -> str:
    head = "".join(f"<th class=num>{esc(SEVERITY_ZH[v])}</th>" for v in SEVERITIES)
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
        rows.append('<tr><td class="empty" colspan="6">No open tickets.</td></tr>')
    return (
        '<section class="card" id="open-counts"><h2>未关闭工单 / Open tickets by department and '
        f'severity</h2><p class="sub"><b id="open-total">{view.open_tickets:,}</b> open, '
        f'<b id="overdue-total">{view.overdue:,}</b> overdue 超期.</p><div class="table-wrap">'
        f"<table><thead><tr><th>部门 / Department</th>{head}<th class=num>合计 / Total</th>"
        f"<th class=num>超期 / Overdue</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</div></section>"
    )


def _due(t: TriageItem) -> str:
    if t.overdue:
        late = '<span class="badge late">overdue 超期</span>'
        return f'<span class="overdue-due">{when(t.due_at.isoformat())}</span> {late}'
    return when(t.due_at.isoformat())


def _where(t: TriageItem) -> str:
    unit = f" · {esc(t.device)}" if t.device else ""
    return f"{esc(t.batch)}{unit}" if t.batch or t.device else esc(t.scope)


def triage_section(view: BoardView) -> str:
    rows = []
    for t in view.triage:
        status = f"{status_badge(t.status)} {esc(STATUS_ZH.get(t.status, ''))}"
        rows.append(
            f'<tr class="ticket{" overdue" if t.overdue else ""}" data-id="{esc(t.id)}">'
            f'<td><a href="/tickets/{esc(t.id)}">{esc(t.id)}</a></td>'
            f"<td>{severity_badge(t.severity)}</td><td>{_due(t)}</td>"
            f"<td>{_department(t.department)}</td><td>{status}</td>"
            f"<td>{esc(problem(t.fault or t.category))}</td><td class=nowrap>{esc(t.model)}</td>"
            f"<td>{_where(t)}</td><td>{esc(t.source)}</td></tr>"
        )
    heads = TRIAGE_HEADS
    if not rows:
        rows.append(f'<tr><td class="empty" colspan="{len(heads)}">No open tickets.</td></tr>')
    more = ""
    if view.open_tickets > len(view.triage):
        more = (
            f'<p class="note">The first {len(view.triage)} of {view.open_tickets:,}; '
            '<a href="/tickets">all tickets</a>.</p>'
        )
    head = "".join(f"<th>{h}</th>" for h in heads)
    return (
        '<section class="card" id="triage"><h2>待处理 / Triage: severity III first, then the '
        'soonest due</h2><div class="table-wrap"><table id="triage-list">'
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
            f"<td>{esc(problem(b.fault or b.category))}</td><td>{severity_badge(b.severity)}</td>"
            f'<td class="num">{b.affected_devices:,} / {b.batch_devices:,}</td>'
            f'<td class="num">{b.complaints:,}</td><td>{status_badge(b.status)}</td>'
            f"<td>{_due(b)}</td></tr>"
        )
    heads = BATCH_HEADS
    if not rows:
        rows.append(
            f'<tr><td class="empty" colspan="{len(heads)}">No open batch tickets.</td></tr>'
        )
    head = "".join(f"<th>{h}</th>" for h in heads)
    return (
        '<section class="card" id="batches"><h2>批次问题 / Batches with open batch tickets</h2>'
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def drilldown_section(view: BoardView) -> str:
    def links(items: list[tuple[str | None, int]], key: str, label: dict[str, str]) -> str:
        out = []
        for value, n in items:
            name = esc(f"{value} {label.get(value, '')}".strip()) if value else "—"
            if value:
                name = f'<a href="{esc(drill(view.filters, **{key: value}))}">{name}</a>'
            out.append(f"<span>{name} <b>{n:,}</b></span>")
        return "".join(out) or '<span class="note">—</span>'

    return (
        '<section class="card" id="drilldown"><h2>钻取 / Drill down (open tickets)</h2>'
        f'<h3>型号 / By model</h3><div class="chips" id="by-model">'
        f"{links(view.models, 'model', {})}</div>"
        f'<h3>类别 / By category</h3><div class="chips" id="by-category">'
        f"{links(view.categories, 'category', CATEGORIES_ZH)}</div></section>"
    )


def _form(filters: Filters, models: list[str], error: str | None = None) -> str:
    def options(values: tuple[str, ...] | list[str], current: str | None, zh: dict) -> str:
        return "".join(
            f'<option value="{esc(v)}"{" selected" if v == current else ""}>'
            f"{esc(f'{v} {zh.get(v, chr(32))}'.strip())}</option>"
            for v in values
        )

    listed = "".join(f'<option value="{esc(m)}">' for m in models)
    alert = f'<div class="error" role="alert">{esc(error)}</div>' if error else ""
    return (
        f'{alert}<form class="filters card" method="get" action="{PATH}">'
        f'<label>型号 / model<input name="model" value="{esc(filters.model or "")}" '
        f'placeholder="any" list="models"></label><datalist id="models">{listed}</datalist>'
        '<label>类别 / category<select name="category"><option value="">any</option>'
        f"{options(CATEGORIES, filters.category, CATEGORIES_ZH)}</select></label>"
        '<label>部门 / department<select name="department"><option value="">any</option>'
        f"{options(DEPARTMENTS, filters.department, DEPARTMENTS_ZH)}</select></label>"
        f'<button class="primary" type="submit">Show</button>'
        f'<a class="button" href="{PATH}">Clear</a></form>'
    )


def dashboard_page(view: BoardView) -> str:
    """The dashboard's body."""
    models = [m for m, _ in view.models if m]
    narrowed = ", ".join(f"{k} {v}" for k, v in view.filters.as_dict().items() if v)
    sub = f"As of {when(view.now.isoformat())}" + (
        f" · narrowed to {esc(narrowed)}" if narrowed else ""
    )
    return (
        f'<h1>{esc(TITLE)}</h1><p class="sub" id="board-as-of">{sub}</p>'
        f"{_form(view.filters, models)}{alerts_section(view)}{figures_section(view)}"
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
            body = f"<h1>{esc(TITLE)}</h1>{_form(Filters(), [], str(exc))}"
            return html(page("Dashboard", body, user=user), 422)
        return html(page("Dashboard", dashboard_page(board.view(filters)), user=user))

    return router
