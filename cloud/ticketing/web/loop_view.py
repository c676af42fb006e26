"""The loop on a ticket's page: its measures, cause analysis, the engineer's check and the
customer's callback — shown, and recorded with forms (issue 13).

- "纠正与预防措施 / Measures": who does what by when, status, overdue, the completion record,
  and the ticket's completion and milestone delay rates; engineers add a measure and move one on.
- "原因分析 / Cause analysis": the 5-Why chain and the fishbone's branches; engineers record it.
- "验证 / Verification": where a fix has no units' data, the engineer records effective / not
  effective / needs further work (有效 / 无效 / 需进一步优化).
- "回访 / Callback": customer service records the customer's score (1-5; 3 or lower
  re-dispatches the ticket) with what they said, and the callbacks so far.

Every form posts to a route of :func:`loop_router`, which calls the same service methods as the
API and redirects back to the ticket; a refusal (a bad field, an illegal move) is a page that
says why, with the status the API would answer.
"""

# No ``from __future__ import annotations``: FastAPI reads the route functions' annotations.
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from cloud.ticketing.errors import (
    IllegalTransition,
    InvalidFeedback,
    InvalidFix,
    TicketConflict,
    TicketNotFound,
)
from cloud.ticketing.measures import DEPARTMENTS, FISHBONE, MOVES, TERMS
from cloud.ticketing.service import TicketService
from cloud.ticketing.tokens import Principal
from cloud.ticketing.web import auth
from cloud.ticketing.web.forms import posted, problem
from cloud.ticketing.web.layout import esc, when

BRANCHES = {
    "man": "人 man",
    "machine": "机 machine",
    "material": "料 material",
    "method": "法 method",
    "environment": "环 environment",
    "measurement": "测 measurement",
}
RESULTS = {"effective": "有效 effective", "not_effective": "无效 not effective",
           "needs_work": "需进一步优化 needs further work"}  # fmt: skip


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _options(values: Mapping[str, str] | list[str], chosen: str = "") -> str:
    items = values.items() if isinstance(values, Mapping) else ((v, v) for v in values)
    return "".join(
        f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>{esc(label)}</option>'
        for v, label in items
    )


def _measures(t: Mapping[str, Any], can_work: bool) -> str:
    rows = []
    for m in t.get("measures") or []:
        late = ' <span class="badge overdue">overdue 逾期</span>' if m["overdue"] else ""
        move = ""
        if can_work and MOVES.get(m["status"]):
            move = (
                f'<form method="post" action="/tickets/{quote(t["id"])}/measures/{m["id"]}" '
                'class="inline"><select name="status">'
                f"{_options(sorted(MOVES[m['status']]))}</select>"
                '<input name="record" placeholder="record 完成记录" maxlength="10000">'
                '<button type="submit">Move</button></form>'
            )
        rows.append(
            f'<tr data-measure="{m["id"]}"><td>{esc(m["term"])}</td><td>{esc(m["kind"])}</td>'
            f"<td>{esc(m['action'])}</td><td>{esc(m['owner'])}</td>"
            f"<td>{esc(m['department'])}</td><td>{when(m['due_at'])}</td>"
            f"<td>{esc(m['status'])}{late}</td><td>{esc(m.get('record') or '')}</td>"
            f"<td>{move}</td></tr>"
        )
    figures = t.get("measure_figures") or {}
    summary = (
        f'<p class="note" id="measure-figures">completion 完成率 '
        f"{_pct(figures.get('completion_rate'))} · milestone delay 延期率 "
        f"{_pct(figures.get('delay_rate'))}</p>"
        if figures
        else '<p class="note">No measures yet.</p>'
    )
    head = (
        "<tr><th>term</th><th>kind</th><th>what 措施</th><th>owner 责任人</th>"
        "<th>department</th><th>due 期限</th><th>status</th><th>record</th><th></th></tr>"
    )
    table = f'<table id="measures"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
    form = ""
    if can_work and t["status"] != "closed":
        kinds = sorted({k for ks in TERMS.values() for k in ks})
        form = (
            f'<form method="post" action="/tickets/{quote(t["id"])}/measures" class="stack">'
            f'<select name="term">{_options({"short": "short 短期 (units sold)", "long": "long 长期 (cause)"})}</select>'  # noqa: E501
            f'<select name="kind">{_options(kinds)}</select>'
            '<input name="action" required maxlength="10000" placeholder="what 措施内容">'
            '<input name="owner" required maxlength="64" placeholder="owner 责任人">'
            f'<select name="department">{_options(list(DEPARTMENTS))}</select>'
            '<input name="due_date" type="date" required>'
            '<button type="submit">Add measure 添加措施</button></form>'
        )
    return (
        '<section class="card" id="capa"><h2>纠正与预防措施 / Measures</h2>'
        f"{summary}{table}{form}</section>"
    )


def _cause(t: Mapping[str, Any], can_work: bool) -> str:
    c = t.get("cause_analysis") or {}
    whys = "".join(f"<li>{esc(w)}</li>" for w in c.get("five_why", []))
    bones = "".join(
        f"<div><dt>{esc(BRANCHES.get(b, b))}</dt><dd>{esc('; '.join(v))}</dd></div>"
        for b, v in (c.get("fishbone") or {}).items()
    )
    shown = (
        f'<ol class="whys">{whys}</ol><dl class="facts">{bones}</dl>'
        f"<p>{esc(c.get('summary') or '')}</p>"
        if c
        else '<p class="note">No cause analysis yet.</p>'
    )
    form = ""
    if can_work:
        fields = "".join(
            f'<input name="fishbone_{b}" placeholder="{esc(label)}" maxlength="2000">'
            for b, label in BRANCHES.items()
        )
        form = (
            f'<form method="post" action="/tickets/{quote(t["id"])}/cause" class="stack">'
            '<textarea name="five_why" rows="5" placeholder="5-Why: one answer a line, each the'
            ' cause of the one before"></textarea>'
            f'{fields}<input name="summary" placeholder="summary 结论" maxlength="10000">'
            '<button type="submit">Record the cause 记录原因</button></form>'
        )
    head = '<section class="card" id="cause"><h2>原因分析 / Cause analysis</h2>'
    return f"{head}{shown}{form}</section>"


def _check(t: Mapping[str, Any]) -> str:
    fix = t.get("fix") or {}
    if t["status"] != "verifying" or fix.get("devices"):
        return ""
    return (
        '<section class="card" id="check"><h2>验证 / Verification</h2>'
        "<p>No units' data can judge this fix: the quality engineer's check decides.</p>"
        f'<form method="post" action="/tickets/{quote(t["id"])}/verification" class="inline">'
        f'<select name="result">{_options(RESULTS)}</select>'
        '<input name="note" maxlength="10000" placeholder="note">'
        '<button type="submit">Record the check 记录验证</button></form></section>'
    )


def _callback(t: Mapping[str, Any], can_call: bool) -> str:
    done = (t.get("evidence") or {}).get("callbacks") or []
    rows = "".join(
        f"<li>{esc(c.get('at', ''))[:16]} · {esc(c.get('customer'))}: score {c.get('score')}</li>"
        for c in done
    )
    if not (done or t["status"] == "callback" or t.get("source") == "feedback"):
        return ""
    due = ""
    if t["status"] == "callback":
        due = f'<p class="note">Callback due 回访期限 {when(t["due_at"])}.</p>'
    form = ""
    if can_call and t["status"] != "closed":
        form = (
            f'<form method="post" action="/tickets/{quote(t["id"])}/followups" class="inline">'
            '<input name="customer" required maxlength="200" placeholder="customer 客户">'
            '<select name="score">'
            '<option value="5">5 满意 satisfied</option>'
            '<option value="4">4 基本满意 basically satisfied</option>'
            '<option value="3">3</option><option value="2">2 不满意 dissatisfied</option>'
            '<option value="1">1</option></select>'
            '<input name="note" required maxlength="10000" placeholder="what they said 客户原话">'
            '<button type="submit">Record the callback 记录回访</button></form>'
        )
    listed = f'<ul id="callbacks">{rows}</ul>' if rows else ""
    return (
        f'<section class="card" id="callback"><h2>回访 / Callback</h2>{due}{listed}'
        '<p class="note">A score of 3 or lower re-dispatches the ticket to its department.</p>'
        f"{form}</section>"
    )


def loop_sections(t: Mapping[str, Any], user: Principal) -> str:
    """The ticket's measures, cause, check and callback, with the forms ``user`` may use."""
    can_work, can_call = user.can("engineer"), user.can("service")
    return _check(t) + _callback(t, can_call) + _measures(t, can_work) + _cause(t, can_work)


# --- routes ------------------------------------------------------------------------------------
_REFUSALS: tuple[tuple[type[Exception], int], ...] = (
    (TicketNotFound, 404),
    (IllegalTransition, 409),
    (TicketConflict, 409),
    (InvalidFix, 422),
    (InvalidFeedback, 422),
    (ValueError, 422),
)


def _due(form: Mapping[str, str]) -> datetime:
    """A measure's due date: the end of that day in China Standard Time (the pages run no
    script, so the browser's zone is not known; the procedures' deadlines are local days)."""
    day = datetime.strptime(form.get("due_date", ""), "%Y-%m-%d")
    return datetime.fromisoformat(f"{day:%Y-%m-%d}T23:59:59+08:00")


def loop_router(service: TicketService) -> APIRouter:
    """The forms of :func:`loop_sections` over ``service``."""
    router = APIRouter(include_in_schema=False)
    User = Annotated[Principal, Depends(auth.cookie_user(service))]

    async def record(
        request: Request, user: Principal, ticket_id: str, role: str,
        work: Callable[[dict[str, str]], object],
    ) -> Response:  # fmt: skip
        back = f"/tickets/{quote(ticket_id)}"
        form = await posted(request, user, role, back)
        if isinstance(form, Response):
            return form
        try:
            await run_in_threadpool(work, form)
        except tuple(e for e, _ in _REFUSALS) as exc:
            code = next(c for e, c in _REFUSALS if isinstance(exc, e))
            return problem(user, "Not recorded / 未记录", str(exc), code, back)
        return RedirectResponse(back, status_code=303)

    @router.post("/tickets/{ticket_id}/measures")
    async def add_measure(ticket_id: str, request: Request, user: User) -> Response:
        return await record(request, user, ticket_id, "engineer", lambda f: service.add_measure(
            ticket_id, term=f.get("term", ""), kind=f.get("kind", ""),
            action=f.get("action", "").strip() or _missing("action"),
            owner=f.get("owner", "").strip() or _missing("owner"),
            department=f.get("department", ""), due_at=_due(f), actor=user.name,
        ))  # fmt: skip

    @router.post("/tickets/{ticket_id}/measures/{measure_id}")
    async def move_measure(
        ticket_id: str, measure_id: int, request: Request, user: User
    ) -> Response:  # noqa: E501
        return await record(request, user, ticket_id, "engineer", lambda f: service.update_measure(
            ticket_id, measure_id, status=f.get("status", ""),
            record=f.get("record") or None, actor=user.name,
        ))  # fmt: skip

    @router.post("/tickets/{ticket_id}/cause")
    async def cause(ticket_id: str, request: Request, user: User) -> Response:
        return await record(request, user, ticket_id, "engineer", lambda f: service.set_cause(
            ticket_id, five_why=f.get("five_why", "").splitlines(),
            fishbone={b: [f[f"fishbone_{b}"]] for b in FISHBONE if f.get(f"fishbone_{b}")},
            summary=f.get("summary") or None, actor=user.name,
        ))  # fmt: skip

    @router.post("/tickets/{ticket_id}/verification")
    async def check(ticket_id: str, request: Request, user: User) -> Response:
        return await record(request, user, ticket_id, "engineer", lambda f: service.check_fix(
            ticket_id, result=f.get("result", ""), note=f.get("note") or None, actor=user.name,
        ))  # fmt: skip

    @router.post("/tickets/{ticket_id}/followups")
    async def callback(ticket_id: str, request: Request, user: User) -> Response:
        return await record(request, user, ticket_id, "service", lambda f: service.follow_up(
            ticket_id, f.get("note", "").strip() or _missing("note"),
            customer=f.get("customer", "").strip() or _missing("customer"),
            actor=user.name, score=_score(f.get("score", "")),
        ))  # fmt: skip

    return router


def _missing(field: str) -> str:
    raise InvalidFix(f"{field} is empty", field=field)


def _score(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise InvalidFix("score must be 1 to 5", field="score")
    return int(text)
