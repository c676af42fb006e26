"""HTML building blocks of the pages: escaping, the page shell with its stylesheet, value formats.

Pages are built from Python strings rather than a template engine: they are few and small, and
every value from the database goes through :func:`esc` (or a formatter built on it) on the way in.
The responses carry a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape

from fastapi.responses import HTMLResponse

from cloud.ticketing.tokens import Principal

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
"""


def esc(value: object) -> str:
    """Text for HTML (element content and quoted attributes); None is shown as a dash."""
    return "—" if value is None else escape(str(value), quote=True)


def when(iso: str | None) -> str:
    """An ISO-8601 UTC time as ``<time>`` reading ``2024-05-17 08:00 UTC``."""
    if not iso:
        return "—"
    at = datetime.fromisoformat(iso)  # a complaint keeps the offset it was received with
    text = (at.astimezone(UTC) if at.tzinfo else at).strftime("%Y-%m-%d %H:%M UTC")
    return f'<time datetime="{esc(iso)}">{text}</time>'


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


def severity_badge(severity: str) -> str:
    cls = severity if severity in ("I", "II", "III") else "I"
    return f'<span class="badge sev-{cls}" title="severity">{esc(severity)}</span>'


def status_badge(status: str) -> str:
    cls = status if status in ("open", "reopened", "closed") else "other"
    return f'<span class="badge st-{cls}">{esc(status)}</span>'


def page(title: str, body: str, *, user: Principal | None) -> str:
    """A whole HTML document: the top bar (with sign-out when signed in) around ``body``."""
    who = file_link = ""
    if user is not None and user.can("service"):  # customer service files complaints
        file_link = '<a id="new-complaint" href="/feedback/new">New complaint / 登记投诉</a>'
    if user is not None:
        who = (
            f'<div class="who"><span>{esc(user.name)} · {esc(user.role)}</span>'
            '<form method="post" action="/logout"><button type="submit">Sign out</button></form>'
            "</div>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · qloop</title><style>{CSS}</style></head><body>"
        '<header class="top"><a class="brand" href="/dashboard">qloop</a>'
        '<nav><a id="dashboard" href="/dashboard">Dashboard / 看板</a>'
        f'<a href="/tickets">Tickets</a>{file_link}'
        '<a id="monthly-report" href="/reports/monthly">Monthly report / 月报</a></nav>'
        f"{who}</header><main>{body}</main></body></html>"
    )


def html(content: str, status_code: int = 200) -> HTMLResponse:
    """An HTML response with the pages' security headers."""
    return HTMLResponse(content, status_code=status_code, headers=SECURITY_HEADERS)
