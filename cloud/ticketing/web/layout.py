"""HTML building blocks of the pages: escaping, the page shell with its stylesheet, value formats.

Pages are built from Python strings rather than a template engine: they are few and small, and
every value from the database goes through :func:`esc` (or a formatter built on it) on the way in.
The responses carry a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse

from cloud.ticketing.tokens import Principal
from cloud.ticketing.web import i18n
from cloud.ticketing.web.i18n import name, tr

#: No script, nothing from elsewhere; inline styles only (the stylesheet below, SVG attributes).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # ticket data is not for shared caches or the back button
}

CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
 background:#f6f8fa}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
header.top{display:flex;align-items:center;gap:24px;padding:10px 24px;background:#24292f;color:#fff}
header.top .brand{font-weight:700;font-size:16px;color:#fff}
header.top nav a{color:#d0d7de;margin-right:16px}
header.top .who{margin-left:auto;color:#d0d7de;display:flex;gap:12px;align-items:center}
header.top form{margin:0}
header.top button{background:none;border:1px solid #57606a;color:#d0d7de;border-radius:6px;
 padding:3px 10px;cursor:pointer}
main{max-width:1240px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:22px;margin:4px 0 4px}h2{font-size:16px;margin:0 0 12px}
.sub{color:#57606a;margin:0 0 16px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px;margin:0 0 16px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:7px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{font-size:12px;color:#57606a;font-weight:600;background:#f6f8fa;white-space:nowrap}
td time,td.nowrap{white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.overdue td:first-child{box-shadow:inset 3px 0 #cf222e}
.overdue-due{color:#cf222e;font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;
 border:1px solid transparent;white-space:nowrap}
.sev-III{background:#ffebe9;color:#a40e26;border-color:#ffcecb}
.sev-II{background:#fff1e5;color:#953800;border-color:#ffd8b5}
.sev-I{background:#f6f8fa;color:#57606a;border-color:#d0d7de}
.st-open,.st-reopened{background:#dafbe1;color:#116329}
.st-closed{background:#f6f8fa;color:#57606a}
.st-other{background:#ddf4ff;color:#0550ae}
.pr-urgent{color:#a40e26;font-weight:600}
.late{background:#cf222e;color:#fff}
form.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#57606a;gap:3px}
input,select{font:inherit;padding:5px 8px;border:1px solid #d0d7de;border-radius:6px;
 background:#fff;min-width:120px}
button.primary,a.button{font:inherit;background:#1f883d;color:#fff;border:1px solid #1a7f37;
 border-radius:6px;padding:5px 14px;cursor:pointer}
a.button{background:#f6f8fa;color:#24292f;border-color:#d0d7de;display:inline-block}
.error{background:#ffebe9;border:1px solid #ffcecb;color:#82071e;padding:10px 12px;
 border-radius:6px;margin:0 0 16px}
.empty{color:#57606a;padding:24px;text-align:center}
.pager{display:flex;gap:8px;margin-top:12px}
dl.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:6px 24px;
 margin:0}
dl.facts div{display:flex;justify-content:space-between;gap:12px;border-bottom:1px solid #eaeef2;
 padding:4px 0}
dt{color:#57606a}dd{margin:0;font-weight:500;text-align:right}
.chips span{display:inline-block;background:#f6f8fa;border:1px solid #eaeef2;border-radius:4px;
 padding:0 6px;margin:0 4px 2px 0;font-size:12px;font-variant-numeric:tabular-nums}
.chart-wrap{overflow-x:auto}.chart{max-width:100%;height:auto}
.note{color:#57606a;font-size:13px;margin:8px 0 0}
ol.timeline{list-style:none;margin:0;padding:0 0 0 14px;border-left:2px solid #d0d7de}
ol.timeline li{position:relative;padding:0 0 12px 10px}
ol.timeline li::before{content:"";position:absolute;left:-21px;top:5px;width:10px;height:10px;
 border-radius:50%;background:#fff;border:2px solid #0969da}
ol.timeline .meta{color:#57606a;font-size:12px}
.login{max-width:380px;margin:80px auto}
.login input{width:100%;margin:6px 0 12px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px}.table-wrap{padding:0;overflow-x:auto}
@media (max-width:900px){.grid2{grid-template-columns:1fr}}
h3{font-size:14px;margin:14px 0 6px}dl.facts.one{grid-template-columns:1fr}
.src-feedback{background:#fbefff;color:#6639ba}.src-telemetry{background:#f6f8fa;color:#57606a}
.triage{background:#fff8c5;color:#7d4e00;border-color:#d4a72c}
.unmatched{background:#ffebe9;color:#a40e26}
.notice{background:#dafbe1;border:1px solid #aceebb;color:#116329;padding:10px 12px;
 border-radius:6px;margin:0 0 16px}
.verdict{font-size:15px;padding:10px 12px;border-radius:6px;margin:0 0 12px;
 border-left:4px solid #57606a;background:#f6f8fa}
.v-confirms{border-color:#cf222e;background:#ffebe9}.v-recovered{border-color:#0969da}
.v-normal{border-color:#1a7f37;background:#dafbe1}
ol.complaints{margin:0;padding-left:20px}ol.complaints .meta{color:#57606a;font-size:12px}
blockquote.words{margin:4px 0 12px;padding:8px 12px;border-left:3px solid #d0d7de;
 background:#f6f8fa;white-space:pre-wrap;overflow-wrap:anywhere}
form.complaint{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
form.complaint .field{display:flex;flex-direction:column;gap:3px}
form.complaint .wide,form.complaint button{grid-column:1/-1}
form.complaint label{font-size:12px;color:#57606a}form.complaint textarea{font:inherit;padding:6px}
.hint{font-size:12px;color:#57606a}.field-error{font-size:12px;color:#cf222e;font-weight:600}
.field.invalid input,.field.invalid select,.field.invalid textarea{border-color:#cf222e}
td.miss b{color:#cf222e}td.met b{color:#1a7f37}.alerting{border-left:4px solid #cf222e}
ul.alerts{margin:0;padding-left:20px}
header.top .langs a,header.top .langs b{color:#d0d7de;margin:0}
footer.foot{max-width:1240px;margin:0 auto;padding:0 24px 32px;color:#57606a;font-size:12px}
footer.foot select{min-width:0;padding:2px 4px;font-size:12px}
footer.foot button{font-size:12px;padding:2px 8px}
"""


def esc(value: object) -> str:
    """Text for HTML (element content and quoted attributes); None is shown as a dash."""
    return "—" if value is None else escape(str(value), quote=True)


def when(iso: str | None) -> str:
    """An ISO-8601 time as ``<time>`` in the viewer's zone: ``2024-05-17 16:00 CST``."""
    if not iso:
        return "—"
    at = datetime.fromisoformat(iso)  # a complaint keeps the offset it was received with
    return f'<time datetime="{esc(iso)}">{esc(i18n.clock(at))}</time>'


def when_ts(ts: float | None) -> str:
    """A Unix time (event time in evidence) like :func:`when`."""
    if ts is None or not math.isfinite(ts):
        return "—"
    return when(datetime.fromtimestamp(ts, UTC).isoformat())


def number(value: object) -> str:
    """Evidence numbers with four significant digits; p-values keep their exponent."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return esc(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isinf(value):  # e.g. a rate ratio when no other batch has the fault
        return "∞" if value > 0 else "−∞"
    if math.isnan(value):
        return "—"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:.4g}"


def select_options(values: Mapping[str, str], current: str | None, blank: str | None = None) -> str:
    """A select's options (value → what it reads), ``current`` selected, and first a blank
    choice reading ``blank`` when given."""
    first = f'<option value="">{esc(blank)}</option>' if blank is not None else ""
    return first + "".join(
        f'<option value="{esc(v)}"{" selected" if v == current else ""}>{esc(text)}</option>'
        for v, text in values.items()
    )


def severity_badge(severity: str) -> str:
    """The grade (I, II, III), its name as the badge's tooltip."""
    cls = severity if severity in ("I", "II", "III") else "I"
    title = esc(f"{tr('severity')} {name('severity', severity)}")
    return f'<span class="badge sev-{cls}" title="{title}">{esc(severity)}</span>'


def status_badge(status: str) -> str:
    """The status by its name in the viewer's language (the value in ``data-status``)."""
    cls = status if status in ("open", "reopened", "closed") else "other"
    shown = esc(name("status", status))
    return f'<span class="badge st-{cls}" data-status="{esc(status)}">{shown}</span>'


def named(kind: str, value: str | None) -> str:
    """A vocabulary value as HTML, by its name in the viewer's language; the value itself is
    the tooltip where the two differ (people quote the value to the API and each other)."""
    shown = name(kind, value)
    if value is None or shown == value:
        return esc(shown)
    return f'<span title="{esc(value)}">{esc(shown)}</span>'


def _switch() -> str:
    """Links to the page in each language (the one shown is marked, not linked)."""
    here, now = i18n.current().here, i18n.current().lang
    links = []
    for lang in i18n.LANGS:
        label = esc(name("lang", lang))
        if lang == now:
            links.append(f'<b lang="{lang}" aria-current="true">{label}</b>')
        else:
            href = "/lang?" + urlencode({"to": lang, "next": here})
            links.append(f'<a id="lang-{lang}" lang="{lang}" hreflang="{lang}" href="{esc(href)}">'
                         f"{label}</a>")  # fmt: skip
    return f'<span class="langs" id="language">{" · ".join(links)}</span>'


def _zone_picker() -> str:
    """The footer's form choosing the time zone the pages show times in (no script needed)."""
    locale = i18n.current()
    zones = list(i18n.ZONES)
    if locale.zone_name not in zones:
        zones.insert(0, locale.zone_name)
    options = "".join(
        f'<option value="{esc(z)}"{" selected" if z == locale.zone_name else ""}>{esc(z)}</option>'
        for z in zones
    )
    return (
        '<footer class="foot"><form method="get" action="/lang" id="zone-form">'
        f'<input type="hidden" name="next" value="{esc(locale.here)}">'
        f'<label>{esc(tr("Times are shown in"))} <select name="tz" id="tz">{options}</select>'
        f'</label> <button type="submit">{esc(tr("Set"))}</button></form></footer>'
    )


def page(title: str, body: str, *, user: Principal | None) -> str:
    """A whole HTML document in the viewer's language: the top bar (with the language switch,
    and sign-out when signed in) around ``body``, the time zone picker below it."""
    who = file_link = ""
    if user is not None and user.can("service"):  # customer service files complaints
        file_link = f'<a id="new-complaint" href="/feedback/new">{esc(tr("New complaint"))}</a>'
    if user is not None:
        who = (
            f"<span>{esc(user.name)} · {esc(name('role', user.role))}</span>"
            f'<form method="post" action="/logout"><button type="submit">{esc(tr("Sign out"))}'
            "</button></form>"
        )
    return (
        f'<!doctype html><html lang="{i18n.current().lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · qloop</title><style>{CSS}</style></head><body>"
        '<header class="top"><a class="brand" href="/dashboard">qloop</a>'
        f'<nav><a id="dashboard" href="/dashboard">{esc(tr("Dashboard"))}</a>'
        f'<a id="tickets-link" href="/tickets">{esc(tr("Tickets"))}</a>{file_link}'
        f'<a id="monthly-report" href="/reports/monthly">{esc(tr("Monthly report"))}</a>'
        f'<a id="cases-link" href="/cases">{esc(tr("Past cases"))}</a></nav>'
        f'<div class="who">{_switch()}{who}</div></header>'
        f"<main>{body}</main>{_zone_picker()}</body></html>"
    )


def html(content: str, status_code: int = 200) -> HTMLResponse:
    """An HTML response with the pages' security headers."""
    return HTMLResponse(content, status_code=status_code, headers=SECURITY_HEADERS)
