"""Units that announced another identity, on the dashboard: each held change (``identity.py``)
with what the unit had and what it announced, and for engineers the form that accepts or
rejects it (``POST /devices/changes/{id}``, the same service call as the API's)."""

# No ``from __future__ import annotations``: FastAPI reads the route functions' annotations.
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from cloud.ticketing.errors import TicketConflict
from cloud.ticketing.identity import ChangeNotFound
from cloud.ticketing.service import TicketService
from cloud.ticketing.tokens import Principal
from cloud.ticketing.web import auth
from cloud.ticketing.web.forms import posted, problem
from cloud.ticketing.web.i18n import tr
from cloud.ticketing.web.layout import esc, when

ROLE = "engineer"
BACK = "/dashboard#identity-changes"


def _identity(i: Mapping[str, Any]) -> str:
    return f"{esc(i.get('model'))} · {esc(i.get('batch'))}" + (
        f" ({esc(i['product'])})" if i.get("product") else ""
    )


def changes_section(changes: list[Mapping[str, Any]], user: Principal) -> str:
    """The pending changes (nothing when there are none)."""
    if not changes:
        return ""
    rows = []
    for c in changes:
        at = c["announced_at"]
        at = at.isoformat() if isinstance(at, datetime) else at
        form = ""
        if user.can(ROLE):
            form = (
                f'<form method="post" action="/devices/changes/{int(c["id"])}" class="inline">'
                f'<input name="note" maxlength="2000" placeholder="{esc(tr("note"))}">'
                f'<button name="decision" value="accept" type="submit">{esc(tr("Accept"))}'
                f'</button><button name="decision" value="reject" type="submit">'
                f"{esc(tr('Reject'))}</button></form>"
            )
        rows.append(
            f'<tr data-change="{int(c["id"])}"><td>{esc(c["device"])}</td>'
            f"<td>{_identity(c['previous'])}</td><td><b>{_identity(c['announced'])}</b></td>"
            f"<td>{when(at)}</td><td>{form}</td></tr>"
        )
    heads = (tr("unit"), tr("had"), tr("announced"), tr("when"), "")
    head = "".join(f"<th>{esc(h)}</th>" for h in heads)
    why = tr(
        "A birth message announced another model or batch than the unit had. Until a person "
        "accepts it, the unit's faults count for the batch it had."
    )
    return (
        '<section class="card alerting" id="identity-changes">'
        f"<h2>{esc(tr('Units announcing another identity'))} ({len(changes)})</h2>"
        f'<p class="sub">{esc(why)}</p><div class="table-wrap"><table><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def identity_router(service: TicketService) -> APIRouter:
    """``POST /devices/changes/{id}``: the dashboard's accept and reject buttons."""
    router = APIRouter(include_in_schema=False)
    User = Annotated[Principal, Depends(auth.cookie_user(service))]

    @router.post("/devices/changes/{change_id}")
    async def decide(change_id: int, request: Request, user: User) -> Response:
        form = await posted(request, user, ROLE, BACK)
        if isinstance(form, Response):
            return form
        decision = form.get("decision", "")
        if decision not in ("accept", "reject"):
            return problem(user, tr("Not recorded"), tr("choose accept or reject"), 422, BACK)
        try:
            await run_in_threadpool(
                service.decide_identity_change, change_id, decision, actor=user.name,
                note=form.get("note") or None,
            )  # fmt: skip
        except ChangeNotFound as exc:
            return problem(user, tr("Not found"), str(exc), 404, BACK)
        except TicketConflict as exc:
            return problem(user, tr("Not recorded"), str(exc), 409, BACK)
        return RedirectResponse(BACK, status_code=303)

    return router
