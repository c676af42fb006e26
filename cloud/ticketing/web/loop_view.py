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
from cloud.ticketing.web import auth, i18n
from cloud.ticketing.web.forms import posted, problem
from cloud.ticketing.web.i18n import name, names, tr
from cloud.ticketing.web.layout import esc, named, select_options, when

RESULTS = ("effective", "not_effective", "needs_work")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _measures(t: Mapping[str, Any], can_work: bool) -> str:
    rows = []
    for m in t.get("measures") or []:
        late = f' <span class="badge overdue">{esc(tr("overdue"))}</span>' if m["overdue"] else ""
        move = ""
        if can_work and MOVES.get(m["status"]):
            moves = select_options(names("measure_status", sorted(MOVES[m["status"]])), None)
            move = (
                f'<form method="post" action="/tickets/{quote(t["id"])}/measures/{m["id"]}" '
                f'class="inline"><select name="status">{moves}</select>'
                f'<input name="record" placeholder="{esc(tr("completion record"))}"'
                ' maxlength="10000">'
                f'<button type="submit">{esc(tr("Move"))}</button></form>'
            )
        rows.append(
            f'<tr data-measure="{m["id"]}"><td>{named("term", m["term"])}</td>'
            f"<td>{named('kind', m['kind'])}</td>"
            f"<td>{esc(m['action'])}</td><td>{esc(m['owner'])}</td>"
            f"<td>{named('department', m['department'])}</td><td>{when(m['due_at'])}</td>"
            f"<td>{named('measure_status', m['status'])}{late}</td>"
            f"<td>{esc(m.get('record') or '')}</td><td>{move}</td></tr>"
        )
    figures = t.get("measure_figures") or {}
    summary = (
        f'<p class="note" id="measure-figures">{esc(tr("completion rate"))} '
        f"{_pct(figures.get('completion_rate'))} · {esc(tr('milestone delay rate'))} "
        f"{_pct(figures.get('delay_rate'))}</p>"
        if figures
        else f'<p class="note">{esc(tr("No measures yet."))}</p>'
    )
    heads = (
        tr("term"), tr("kind"), tr("measure"), tr("owner"), tr("department"), tr("due"),
        tr("status"), tr("record"), "",
    )  # fmt: skip
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in heads) + "</tr>"
    table = f'<table id="measures"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
    form = ""
    if can_work and t["status"] != "closed":
        kinds = sorted({k for ks in TERMS.values() for k in ks})
        departments = select_options(names("department", DEPARTMENTS), None)
        form = (
            f'<form method="post" action="/tickets/{quote(t["id"])}/measures" class="stack">'
            f'<select name="term">{select_options(names("term", TERMS), None)}</select>'
            f'<select name="kind">{select_options(names("kind", kinds), None)}</select>'
            f'<input name="action" required maxlength="10000" placeholder="{esc(tr("measure"))}">'
            f'<input name="owner" required maxlength="64" placeholder="{esc(tr("owner"))}">'
            f'<select name="department">{departments}</select>'
            '<input name="due_date" type="date" required>'
            f'<button type="submit">{esc(tr("Add measure"))}</button></form>'
        )
    return (
        f'<section class="card" id="capa"><h2>{esc(tr("Corrective and preventive measures"))}'
        f"</h2>{summary}{table}{form}</section>"
    )


def _cause(t: Mapping[str, Any], can_work: bool) -> str:
    c = t.get("cause_analysis") or {}
    whys = "".join(f"<li>{esc(w)}</li>" for w in c.get("five_why", []))
    bones = "".join(
        f"<div><dt>{named('branch', b)}</dt><dd>{esc('; '.join(v))}</dd></div>"
        for b, v in (c.get("fishbone") or {}).items()
    )
    shown = (
        f'<ol class="whys">{whys}</ol><dl class="facts">{bones}</dl>'
        f"<p>{esc(c.get('summary') or '')}</p>"
        if c
        else f'<p class="note">{esc(tr("No cause analysis yet."))}</p>'
    )
    form = ""
    if can_work:
        fields = "".join(
            f'<input name="fishbone_{b}" placeholder="{esc(name("branch", b))}" maxlength="2000">'
            for b in FISHBONE
        )
        why = tr("5-Why: one answer a line, each the cause of the one before")
        form = (
            f'<form method="post" action="/tickets/{quote(t["id"])}/cause" class="stack">'
            f'<textarea name="five_why" rows="5" placeholder="{esc(why)}"></textarea>'
            f'{fields}<input name="summary" placeholder="{esc(tr("summary"))}" maxlength="10000">'
            f'<button type="submit">{esc(tr("Record the cause"))}</button></form>'
        )
    head = f'<section class="card" id="cause"><h2>{esc(tr("Cause analysis"))}</h2>'
    return f"{head}{shown}{form}</section>"


def _check(t: Mapping[str, Any]) -> str:
    fix = t.get("fix") or {}
    if t["status"] != "verifying" or fix.get("devices"):
        return ""
    why = tr("No units' data can judge this fix: the quality engineer's check decides.")
    return (
        f'<section class="card" id="check"><h2>{esc(tr("Verification"))}</h2><p>{esc(why)}</p>'
        f'<form method="post" action="/tickets/{quote(t["id"])}/verification" class="inline">'
        f'<select name="result">{select_options(names("result", RESULTS), None)}</select>'
        f'<input name="note" maxlength="10000" placeholder="{esc(tr("note"))}">'
        f'<button type="submit">{esc(tr("Record the check"))}</button></form></section>'
    )


def _callback(t: Mapping[str, Any], can_call: bool) -> str:
    done = (t.get("evidence") or {}).get("callbacks") or []
    rows = "".join(
        f"<li>{when(c.get('at'))} · {esc(c.get('customer'))}: "
        f"{esc(tr('score {n}', n=c.get('score')))}</li>"
        for c in done
    )
    if not (done or t["status"] == "callback" or t.get("source") == "feedback"):
        return ""
    due = ""
    if t["status"] == "callback":
        due = f'<p class="note">{tr("Callback due {at}.", at=when(t["due_at"]))}</p>'
    form = ""
    if can_call and t["status"] != "closed":
        scores = {
            "5": f"5 {tr('satisfied')}", "4": f"4 {tr('basically satisfied')}", "3": "3",
            "2": f"2 {tr('dissatisfied')}", "1": "1",
        }  # fmt: skip
        form = (
            f'<form method="post" action="/tickets/{quote(t["id"])}/followups" class="inline">'
            f'<input name="customer" required maxlength="200" placeholder="{esc(tr("customer"))}">'
            f'<select name="score">{select_options(scores, None)}</select>'
            '<input name="note" required maxlength="10000"'
            f' placeholder="{esc(tr("what they said"))}">'
            f'<button type="submit">{esc(tr("Record the callback"))}</button></form>'
        )
    listed = f'<ul id="callbacks">{rows}</ul>' if rows else ""
    redispatch = tr("A score of 3 or lower re-dispatches the ticket to its department.")
    return (
        f'<section class="card" id="callback"><h2>{esc(tr("Callback"))}</h2>{due}{listed}'
        f'<p class="note">{esc(redispatch)}</p>{form}</section>'
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
    """A measure's due date: the end of that day in the viewer's time zone (the procedures'
    deadlines are local days)."""
    day = datetime.strptime(form.get("due_date", ""), "%Y-%m-%d")
    return day.replace(hour=23, minute=59, second=59, tzinfo=i18n.current().tz)


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
            return problem(user, tr("Not recorded"), str(exc), code, back)
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
