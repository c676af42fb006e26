"""The ticket list page: its filters (a fixed vocabulary where there is one), the rows and the
pager; the route that serves it is in :mod:`~cloud.ticketing.web.pages`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from cloud.ticketing.api.schemas import (
    Channel,
    Scope,
    Severity,
    Source,
)
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.web import (
    feedback_view,
)
from cloud.ticketing.web.i18n import name, tr
from cloud.ticketing.web.layout import (
    esc,
    named,
    select_options,
    severity_badge,
    status_badge,
    when,
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


def due(t: Mapping[str, Any]) -> str:
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
        f"<td>{when(t['detected_at'])}</td><td>{due(t)}</td></tr>"
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
