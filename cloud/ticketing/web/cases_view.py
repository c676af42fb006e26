"""Past cases on the pages: a ticket's similar past cases (:func:`similar_section`, on its page)
and the search over all of them (``GET /cases?q=``, :func:`cases_router`).

A case shows what an engineer needs to learn from it: how alike it is (the BM25 score), the
problem in the customers' words, the root cause, the measures with their status, and the fix
with whether it worked. The cases are the API's (:class:`CasePublic`), as on every page.
"""

# No ``from __future__ import annotations``: FastAPI reads the route functions' annotations.
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from cloud.ticketing.api.case_schemas import CasePublic
from cloud.ticketing.api.routes.cases import MAX_QUERY
from cloud.ticketing.cases import Case
from cloud.ticketing.service import TicketService
from cloud.ticketing.tokens import Principal
from cloud.ticketing.web import auth
from cloud.ticketing.web.i18n import tr
from cloud.ticketing.web.layout import esc, html, named, page

SEARCH_LIMIT = 20


def _public(cases: Iterable[Case]) -> list[dict[str, Any]]:
    return [CasePublic.model_validate(c).model_dump(mode="json") for c in cases]


def _worked(worked: bool) -> str:
    if worked:
        return f'<span class="badge st-open" data-worked="true">{esc(tr("worked"))}</span>'
    held = esc(tr("did not hold"))
    return f'<span class="badge unmatched" data-worked="false">{held}</span>'


def _measures(measures: list[Mapping[str, Any]]) -> str:
    if not measures:
        return '<span class="note">—</span>'
    items = "".join(
        f"<li><b>{named('kind', m['kind'])}</b> {esc(m['action'])} "
        f'<span class="note">({named("measure_status", m["status"])})</span></li>'
        for m in measures
    )
    return f'<ul class="measures" style="margin:0;padding-left:16px">{items}</ul>'


def _outcome(fix: Mapping[str, Any]) -> str:
    """A fix that did not work: ``failed``, ``withdrawn``, or verified but the problem came back."""
    if fix["outcome"] == "verified":
        return esc(tr("verified, came back"))
    return named("outcome", fix["outcome"])


def _fix(c: Mapping[str, Any]) -> str:
    fix = c["fix"]
    last = (
        f"{esc(fix['description'])} "
        if fix
        else f'<span class="note">{esc(tr("the batch fix"))}</span> '
    )
    earlier = [f for f in c["fixes"][:-1] if not f["worked"]]
    tried = ""
    if earlier:
        listed = "; ".join(f"{esc(f['description'])} ({_outcome(f)})" for f in earlier)
        tried = f'<div class="note">{tr("tried before: {listed}", listed=listed)}</div>'
    return f"{last}{_worked(c['worked'])}{tried}"


def _row(c: Mapping[str, Any]) -> str:
    problem = named("fault", c["fault"]) if c["fault"] else named("category", c["category"])
    what = " · ".join(x for x in (esc(c["model"]) if c["model"] else "", problem) if x)
    return (
        f'<tr class="case" data-id="{esc(c["id"])}">'
        f'<td class="nowrap"><a href="/tickets/{esc(c["id"])}">{esc(c["id"])}</a>'
        f'<div class="note">{what}</div></td>'
        f'<td class="num" data-score>{c["score"]:.2f}</td>'
        f'<td class="words">{esc(c["problem"])}</td><td>{esc(c["root_cause"])}</td>'
        f"<td>{_measures(c['measures'])}</td><td>{_fix(c)}</td></tr>"
    )


def cases_table(cases: list[Mapping[str, Any]], empty: str) -> str:
    """Cases (as the API gives them) in a table, or ``empty`` as a note."""
    if not cases:
        return f'<p class="note" id="no-cases">{esc(empty)}</p>'
    heads = (tr("case"), tr("score"), tr("problem"), tr("root cause"), tr("measures"), tr("fix"))
    head = "".join(
        f"<th{' class=num' if i == 1 else ''}>{esc(h)}</th>" for i, h in enumerate(heads)
    )
    rows = "".join(_row(c) for c in cases)
    return f'<table id="cases"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def similar_section(cases: Iterable[Case]) -> str:
    """The ticket page's section of its most similar past cases."""
    table = cases_table(_public(cases), tr("No solved case like this one yet."))
    return (
        f'<section class="card" id="similar-cases"><h2>{esc(tr("Similar past cases"))}</h2>'
        f'<p class="note">{esc(tr("Closed tickets whose problem was solved, most alike first."))} '
        f'<a href="/cases">{esc(tr("Search past cases"))}</a></p>'
        f'<div class="table-wrap">{table}</div></section>'
    )


def search_page(q: str, cases: list[Mapping[str, Any]], error: str | None = None) -> str:
    """The search form and, for a query, its cases."""
    alert = f'<div class="error" role="alert">{esc(error)}</div>' if error else ""
    form = (
        '<form class="filters card" method="get" action="/cases">'
        f'<label>{esc(tr("Words"))}<input name="q" value="{esc(q)}" maxlength="{MAX_QUERY}"'
        ' size="50" placeholder="不制冷 冷媒泄漏 / water leak drain pipe" autofocus></label>'
        f'<button class="primary" id="search" type="submit">{esc(tr("Search"))}</button></form>'
    )
    results = ""
    if q.strip() and not error:
        table = cases_table(cases, tr("No past case matches."))
        results = f'<div class="card table-wrap">{table}</div>'
    intro = tr(
        "Closed tickets whose problem was solved: search their problem, cause analysis and "
        "measures, in Chinese or English."
    )
    return f'<h1>{esc(tr("Past cases"))}</h1><p class="sub">{esc(intro)}</p>{alert}{form}{results}'


def cases_router(service: TicketService) -> APIRouter:
    """``GET /cases?q=``: the search page (signed in by cookie)."""
    router = APIRouter(include_in_schema=False)
    User = Annotated[Principal, Depends(auth.cookie_user(service))]

    @router.get("/cases")
    def cases(user: User, q: str = "") -> Response:
        if len(q) > MAX_QUERY:
            error = tr("at most {n} characters, please", n=MAX_QUERY)
            body = search_page(q[:MAX_QUERY], [], error)
            return html(page(tr("Past cases"), body, user=user), 422)
        found = service.search_cases(q, k=SEARCH_LIMIT) if q.strip() else []
        title = f"{tr('Past cases')}: {q}" if q.strip() else tr("Past cases")
        return html(page(title, search_page(q, _public(found)), user=user))

    return router
