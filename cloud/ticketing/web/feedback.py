"""People's feedback on the pages: customer-service staff register a complaint, see at once what
the classifier and the unit's telemetry made of it, and correct the classification.

Routes (:func:`feedback_router`, role ``service`` or higher, forms from other sites refused as
the login form's are): ``GET /feedback/new``, ``POST /feedback`` (checked by the API's own
:class:`FeedbackCreate`, filed by :meth:`TicketService.file_feedback`, then its ticket is shown)
and ``POST /tickets/{id}/classification`` (a person's correction). The time received is a
``datetime-local`` field plus an explicit UTC offset, default ``+08:00``: the pages run no script
(their Content-Security-Policy forbids it), so the browser's time zone cannot be read, and most
complaints are taken in China Standard Time.

The rest renders a ticket's feedback (:func:`feedback_sections`), its source in the list
(:func:`source_badge`) and the chart of the unit a complaint names (:func:`feedback_chart`).
"""

# No ``from __future__ import annotations``: FastAPI reads the route functions' annotations.
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from cloud.feedback.extract import DEMANDS
from cloud.feedback.labelled import CHANNELS
from cloud.feedback.sources import MAX_TEXT
from cloud.store.readback import InfluxTarget
from cloud.ticketing.api.schemas import ClassificationCorrect, FeedbackCreate
from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.errors import InvalidFeedback, TicketConflict, TicketNotFound
from cloud.ticketing.service import TicketService
from cloud.ticketing.tokens import Principal
from cloud.ticketing.web import auth
from cloud.ticketing.web.evidence import EvidenceChart, chart_for_ticket
from cloud.ticketing.web.layout import esc, html, page, severity_badge, when
from contract.errors import QloopError
from contract.faults import FAULTS, FEEDBACK_CATEGORIES

ROLE = "service"  # the least role that may file feedback and correct its classification
MAX_FORM_BYTES = 256 * 1024  # MAX_TEXT Chinese characters percent-encoded, and the other fields
DEFAULT_OFFSET = "+08:00"
CHANNEL_LABELS = {
    "hotline": "热线", "online": "在线客服", "email": "邮件", "ecommerce": "电商",
    "store": "门店", "dealer": "经销商", "platform": "投诉平台", "internal": "内部",
    "partner": "合作方", "survey": "回访问卷",
}  # fmt: skip
DEMAND_LABELS = {
    "repair": "维修", "replace": "换货", "refund": "退货退款", "compensation": "赔偿",
    "suggestion": "建议", "other": "其他",
}  # fmt: skip
CATEGORY_LABELS = {
    "functional": "功能", "performance": "性能", "workmanship": "工艺", "material": "材料",
    "service": "服务", "safety": "安全",
}  # fmt: skip
SEVERITY_LABELS = {"I": "I general 一般", "II": "II serious 严重", "III": "III urgent 紧急"}
VERDICT_LABELS = {"confirms": "数据证实", "recovered": "已恢复", "normal": "数据正常"}
TRIAGE = '<span class="badge triage">needs triage / 待人工确认</span>'
#: Evidence keys rendered here; the batch statistics leave them out.
EVIDENCE_KEYS = frozenset({"complaints", "unit", "extracted", "telemetry"})
#: The form's fields in order: name, bilingual label, input type, hint, extra attributes.
_FORM_LAYOUT = (
    ("customer_name", "客户 / Customer", "text", "", ' maxlength="200"'),
    ("contact", "联系方式 / Contact", "text", "phone or e-mail", ' maxlength="200"'),
    ("model", "型号 / Model", "text", "", ' maxlength="64"'),
    ("serial", "序列号 / Serial number", "text", "", ' maxlength="128"'),
    ("purchase_date", "购买日期 / Purchase date", "date", "", ""),
    ("received_at", "受理时间 / Time received", "datetime-local", "empty: now", ""),
    ("utc_offset", "时区 / UTC offset", "text", "China +08:00", ' list="offsets" size="6"'),
    ("channel", "渠道 / Channel", "select", "", " required"),
    ("demand", "客户诉求 / What the customer wants", "select", "", ""),
    ("text", "客户原话 / The customer's own words", "textarea", "verbatim", " required"),
)
FORM_FIELDS = tuple(f[0] for f in _FORM_LAYOUT)
_CHOICES = {
    "channel": ({c: f"{c} {CHANNEL_LABELS[c]}" for c in CHANNELS}, "— choose —"),
    "demand": ({d: f"{d} {DEMAND_LABELS[d]}" for d in DEMANDS}, "— not said —"),
}
_OFFSET = re.compile(r"[+-](?:0\d|1[0-4]):[0-5]\d")
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?")
#: The schema's error locations as the form's field names.
_FIELD_OF_LOC = {("customer", "name"): "customer_name", ("customer", "contact"): "contact"}


class FormInvalid(QloopError, ValueError):
    """A complaint form that cannot be filed; ``errors`` maps a field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


def labelled(value: str | None, labels: Mapping[str, str]) -> str:
    """A vocabulary value with its Chinese label beside it, as HTML: ``hotline 热线``."""
    return esc(value) + (f" {esc(labels[value])}" if value in labels else "")


# --- reading the complaint form -----------------------------------------------------------------
async def read_form(request: Request) -> dict[str, str] | str:
    """The URL-encoded form of ``request`` (each field's first value), or why it is refused."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return "the form must be sent URL-encoded"
    too_big = f"the form is over {MAX_FORM_BYTES // 1024} KiB"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return too_big
    try:  # strict: a customer's words are refused rather than garbled
        text = body.decode("ascii")
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=32, errors="strict")
    except ValueError:  # raw bytes, %-escapes that are not UTF-8, far more fields than ours
        return "the form could not be read (not URL-encoded UTF-8)"
    return {k: v[0] for k, v in fields.items()}


def _received_at(form: Mapping[str, str], errors: dict[str, str]) -> str | None:
    """The received time as ISO 8601 with its offset, None for "now"; faults go to ``errors``."""
    local = form.get("received_at", "").strip()
    offset = form.get("utc_offset", "").strip() or DEFAULT_OFFSET
    if not _OFFSET.fullmatch(offset):
        errors["utc_offset"] = f"write the offset from UTC as +08:00 or -05:00, not {offset!r}"
    if local and not _LOCAL_TIME.fullmatch(local):
        errors["received_at"] = f"use the date and time picker (2024-05-10T14:30), not {local!r}"
    return local + offset if local and not errors else None


def complaint_from_form(form: Mapping[str, str]) -> FeedbackIn:
    """The complaint a form describes, checked by the API's :class:`FeedbackCreate`; raises
    :class:`FormInvalid` naming each wrong field. The customer's words are kept verbatim."""
    errors: dict[str, str] = {}
    one = {k: form.get(k, "").strip() or None for k in FORM_FIELDS}
    customer = {"name": one["customer_name"], "contact": one["contact"]}
    body = {k: one[k] for k in ("channel", "model", "serial", "purchase_date", "demand")}
    text = form.get("text", "").replace("\r\n", "\n")  # a form sends a textarea's lines as CRLF
    body |= {"text": text, "received_at": _received_at(form, errors)}
    body["customer"] = customer if any(customer.values()) else None
    try:
        valid = FeedbackCreate.model_validate(body)
    except ValidationError as exc:
        for e in exc.errors():
            loc = tuple(str(part) for part in e["loc"])
            field = _FIELD_OF_LOC.get(loc[:2], loc[0] if loc else "form")
            message = {
                "enum": f"choose the {field} from the list",
                "string_too_short": "write down what the customer said",
            }.get(e["type"], e["msg"])
            errors.setdefault(field, message)
    if errors:
        raise FormInvalid(errors)
    return FeedbackIn(
        channel=valid.channel.value,
        text=valid.text,
        received_at=valid.received_at,
        customer_name=one["customer_name"],
        contact=one["contact"],
        model=valid.model,
        serial=valid.serial,
        purchase_date=valid.purchase_date,
        demand=None if valid.demand is None else valid.demand.value,
    )


# --- the complaint form -------------------------------------------------------------------------
def _options(values: Mapping[str, str], current: str, blank: str | None = None) -> str:
    first = f'<option value="">{esc(blank)}</option>' if blank is not None else ""
    return first + "".join(
        f'<option value="{esc(v)}"{" selected" if v == current else ""}>{esc(text)}</option>'
        for v, text in values.items()
    )


def _control(name: str, kind: str, value: str, extra: str) -> str:
    if kind == "select":
        choices, blank = _CHOICES[name]
        options = _options(choices, value, blank)
        return f'<select id="{name}" name="{name}"{extra}>{options}</select>'
    if kind == "textarea":
        tag = f'<textarea id="{name}" name="{name}" rows="6" maxlength="{MAX_TEXT}"{extra}>'
        return f"{tag}{esc(value)}</textarea>"
    return f'<input id="{name}" name="{name}" type="{kind}" value="{esc(value)}"{extra}>'


def complaint_form(values: Mapping[str, str], errors: Mapping[str, str] | None = None) -> str:
    """The form, showing ``values`` and each error beside its field."""
    errors = errors or {}
    fields = []
    for name, label, kind, hint, extra in _FORM_LAYOUT:
        value = values.get(name, "") or (DEFAULT_OFFSET if name == "utc_offset" else "")
        note = f'<span class="hint">{esc(hint)}</span>' if hint else ""
        if name in errors:
            note += f'<span class="field-error" id="err-{name}">{esc(errors[name])}</span>'
        cls = "field" + (" invalid" if name in errors else "") + (" wide" * (kind == "textarea"))
        fields.append(
            f'<div class="{cls}" data-field="{name}"><label for="{name}">{label}</label>'
            f"{_control(name, kind, value, extra)}{note}</div>"
        )
    others = " ".join(f"{k}: {v}" for k, v in errors.items() if k not in FORM_FIELDS)
    alert = (
        f'<div class="error" role="alert">Please correct the fields / 请更正。{esc(others)}</div>'
    )
    alert = alert if errors else ""
    offsets = "".join(f'<option value="{o}">' for o in ("+08:00", "+00:00", "+09:00", "+07:00"))
    return (
        "<h1>New complaint / 登记投诉</h1>"
        '<p class="sub">Register a complaint as the quality procedure lists it: it is classified '
        "at once and checked against the unit's telemetry.</p>"
        f'{alert}<form class="card complaint" method="post" action="/feedback"'
        f' accept-charset="utf-8">{"".join(fields)}<datalist id="offsets">{offsets}</datalist>'
        '<button class="primary" id="file-complaint" type="submit">Register / 登记</button></form>'
    )  # fmt: skip


def forbidden_page(user: Principal) -> Response:
    """403: the signed-in person's role may not file or correct feedback."""
    why = (
        f"Registering complaints and correcting their classification needs the role {ROLE} "
        f"(customer-service staff) or higher; you are signed in as {user.name} with the role "
        f"{user.role}. Ask an administrator for a token with that role."
    )
    return _problem(user, "Not allowed / 无权限", why, 403, "/tickets")


def _problem(user: Principal, title: str, message: str, status: int, back: str) -> Response:
    body = f'<h1>{esc(title)}</h1><div class="error" role="alert">{esc(message)}</div>'
    body += f'<p class="sub"><a href="{esc(back)}">Back</a></p>'
    return html(page(title, body, user=user), status)


# --- a ticket's feedback ------------------------------------------------------------------------
def from_complaint(t: Mapping[str, Any]) -> bool:
    """Whether ``t`` was opened by one complaint (not a batch ticket that complaints opened)."""
    return t.get("source") == "feedback" and t["scope"] != "batch"


def source_badge(t: Mapping[str, Any], *, compact: bool = False) -> str:
    """``telemetry``, or ``feedback · hotline 热线`` (``compact``: ``hotline 热线``) and a triage
    badge when a person must confirm the classification."""
    if t.get("source") != "feedback":
        return '<span class="badge src-telemetry">telemetry</span>'
    channel = labelled(t["channel"], CHANNEL_LABELS) if t.get("channel") else "complaints"
    text = channel if compact else f"feedback · {channel}"
    mark = ""
    if (t.get("classification") or {}).get("needs_triage"):
        mark = ' <span class="badge triage">triage</span>' if compact else f" {TRIAGE}"
    return f'<span class="badge src-feedback" title="from feedback">{text}</span>{mark}'


def notice(query: Mapping[str, str], t: Mapping[str, Any]) -> str:
    """What became of the form just sent (``?filed=…`` or ``?corrected=1``), as a banner."""
    n = query.get("n", "")
    text = {
        "opened": "Registered as this new ticket, classified automatically / 投诉已登记。",
        "repeat": f"Merged into this open ticket as repeat #{n if n.isdigit() else t['repeats']}"
        " / 已作为重复投诉合并。",
        "duplicate": "This complaint had been registered before: nothing new was recorded.",
    }.get(query.get("filed") or "")
    if query.get("corrected") == "1":
        text = "Classification corrected / 分类已更正。"
    return f'<div class="notice" id="filed" role="status">{esc(text)}</div>' if text else ""


def _verdict(t: Mapping[str, Any]) -> str:
    verdict = t["evidence"].get("telemetry") or {}
    status = str(verdict.get("status", "none"))
    if verdict:
        text = f"<b>{esc(VERDICT_LABELS.get(status, '无数据'))}</b> {esc(verdict.get('text'))}"
    elif t["device"] is None:
        text = "no telemetry to check: the complaint names no registered unit"
    else:
        text = f"no telemetry verdict: no detector watches {esc(t['fault'] or t['category'])}"
    attrs = f'class="verdict v-{esc(status)}" id="telemetry-verdict" data-status="{esc(status)}"'
    return f"<p {attrs}>{text}</p>"


def _dl(rows: list[tuple[str, str]], ident: str) -> str:
    items = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in rows)
    return f'<dl class="facts one" id="{ident}">{items}</dl>'


def _classification(c: Mapping[str, Any]) -> str:
    confidence = c.get("confidence")
    rows = [
        ("category 类别", labelled(c.get("category"), CATEGORY_LABELS)),
        ("fault 故障", esc(c.get("fault"))),
        ("severity 严重度", severity_badge(str(c.get("severity")))),
        ("confidence 置信度", "—" if confidence is None else f"{confidence:.0%}"),
        ("priority", esc(c.get("priority"))),
        ("departments", esc(", ".join(c.get("departments") or [c.get("department", "—")]))),
    ]
    rows += [(k.replace("_", " "), esc(c[k])) for k in ("rule", "corrected_by") if c.get(k)]
    triage = ""
    if c.get("needs_triage"):
        triage = (
            f'<p id="needs-triage">{TRIAGE} the classifier is unsure: confirm or correct it.</p>'
        )
    return triage + _dl(rows, "classification")


def _unit(unit: Mapping[str, Any], read: Mapping[str, Any]) -> str:
    rows = [(k, esc(unit[k])) for k in ("device", "serial", "model", "batch") if unit.get(k)]
    if unit.get("matched") is False:
        rows.append(
            ("match", '<span class="badge unmatched">serial matches no unit / 未匹配</span>')
        )
    if unit.get("model_given"):
        rows.append(("model given", esc(unit["model_given"])))
    temps = ", ".join(
        f"{x['value_c']:g} °C" + (f" ({esc(x['kind'])})" if x.get("kind") else "")
        for x in read.get("temperatures", [])
    )
    listed = {
        k.replace("_", " "): esc(", ".join(read.get(k, []))) for k in ("error_codes", "dates")
    }
    found = [(k, v or "—") for k, v in {"temperatures": temps, **listed}.items()]
    found += [(k, esc(read[k])) for k in ("model", "serial", "demand") if read.get(k)]
    none = '<p class="note" id="unit">The complaint names no unit.</p>'
    out = f"<h3>Unit / 机组</h3>{_dl(rows, 'unit') if rows else none}"
    return out + f"<h3>Read from the words / 文本提取</h3>{_dl(found, 'extracted')}"


def _complaint(c: Mapping[str, Any]) -> str:
    parts = [labelled(c.get("channel"), CHANNEL_LABELS), when(c.get("received_at"))]
    parts += [esc(c[k]) for k in ("customer", "contact") if c.get(k)]
    parts += ["wants " + labelled(c["demand"], DEMAND_LABELS)] if c.get("demand") else []
    parts += [f"{k} {esc(c[k])}" for k in ("serial", "model", "purchase_date") if c.get(k)]
    return (
        f'<li class="complaint"><div class="meta">{" · ".join(parts)}</div>'
        f'<blockquote class="words">{esc(c.get("text"))}</blockquote></li>'
    )


def correction_form(t: Mapping[str, Any]) -> str:
    """Category, fault and severity selects; the faults are the vocabulary's, by category."""
    c = t.get("classification") or {}
    categories = {k: f"{k} {CATEGORY_LABELS.get(k, '')}" for k in FEEDBACK_CATEGORIES}
    groups = ""
    for cat in FEEDBACK_CATEGORIES:
        if faults := {f: f for f, of in FAULTS.items() if of == cat}:
            options = _options(faults, c.get("fault") or "")
            groups += f'<optgroup label="{esc(categories[cat])}">{options}</optgroup>'
    none = "" if c.get("fault") else " selected"
    category = _options(categories, c.get("category", ""))
    severity = _options(SEVERITY_LABELS, str(c.get("severity", "")))
    return (
        f'<form class="filters correct" method="post"'
        f' action="/tickets/{esc(t["id"])}/classification">'
        f'<label>类别 / Category<select name="category">{category}</select></label>'
        f'<label>故障 / Fault<select name="fault">'
        f'<option value=""{none}>no fault of the vocabulary / 无</option>{groups}</select></label>'
        f'<label>严重度 / Severity<select name="severity">{severity}</select></label>'
        '<label>说明 / Note<input name="note" maxlength="2000"></label>'
        '<button class="primary" id="correct" type="submit">Correct / 更正</button></form>'
    )


def _children(entries: list[Mapping[str, Any]]) -> str:
    channels = Counter(str(e.get("channel")) for e in entries)
    counts = ", ".join(f"{labelled(ch, CHANNEL_LABELS)} {n}" for ch, n in channels.most_common())
    tickets = dict.fromkeys(str(e["ticket"]) for e in entries)
    links = ", ".join(f'<a href="/tickets/{esc(x)}">{esc(x)}</a>' for x in tickets)
    plural = "s" if len(entries) != 1 else ""
    return (
        '<section class="card" id="complaints"><h2>Customer complaints / 客户投诉</h2>'
        f"<p>{len(entries)} complaint{plural} from channels: {counts}</p>"
        f'<p class="note">Their tickets: {links}</p></section>'
    )


def feedback_sections(t: Mapping[str, Any], *, can_correct: bool) -> str:
    """The parts of a ticket page about people's feedback (nothing for a ticket without any):
    the complaints, classification, unit and telemetry verdict of a ticket from feedback (or the
    complaints of a telemetry ticket customers repeated), and a batch ticket's complaint tickets."""
    evidence = t["evidence"]
    words = [c for c in evidence.get("complaints") or [] if "text" in c]
    children = [c for c in evidence.get("complaints") or [] if "text" not in c and "ticket" in c]
    out = _children(children) if children else ""
    feedback = from_complaint(t)
    if not (feedback or words):
        return out
    links = []
    if t.get("parent"):
        parent = esc(t["parent"])
        links.append(f'joined batch ticket <a id="parent" href="/tickets/{parent}">{parent}</a>')
    links.append(f'<span id="repeats">repeat complaints / 重复投诉: {t.get("repeats", 0)}</span>')
    body = f'<p class="note">{" · ".join(links)}</p>'
    if feedback:
        c, unit, read = t.get("classification"), evidence.get("unit"), evidence.get("extracted")
        left = f"<div><h3>Classification / 分类</h3>{_classification(c or {})}</div>"
        right = f"<div>{_unit(unit or {}, read or {})}</div>"
        body = f'{_verdict(t)}{body}<div class="grid2">{left}{right}</div>'
    listed = "".join(_complaint(x) for x in words)
    body += f'<h3>Complaints ({len(words)}) / 投诉记录</h3><ol class="complaints">{listed}</ol>'
    if feedback and can_correct and t.get("classification"):
        body += f"<h3>Correct the classification / 更正分类</h3>{correction_form(t)}"
    head = '<section class="card" id="feedback"><h2>Customer feedback / 客户反馈</h2>'
    return f"{out}{head}{body}</section>"


def feedback_chart(
    t: Mapping[str, Any], journal: str | None, influx: InfluxTarget | None
) -> EvidenceChart:
    """The chart of a ticket without a fault (none), or of the unit a complaint's ticket names,
    for its fault: from the onset the data shows (when it confirms or recovered) to the
    complaint, else around the complaint."""
    if t["fault"] is None:
        return EvidenceChart(None, f"no fault of the vocabulary: no signal shows {t['category']}")
    if t["device"] is None:
        return EvidenceChart(None, "the complaint names no registered unit, so no data to chart")
    first = last = received = datetime.fromisoformat(t["detected_at"]).timestamp()
    verdict = t["evidence"].get("telemetry") or {}
    if verdict.get("since") and verdict.get("status") in ("confirms", "recovered"):
        since = datetime.fromisoformat(verdict["since"]).replace(tzinfo=UTC).timestamp()
        first, last = min(since, received), max(since, received)
    unit = {"device": t["device"], "onset_ts": first, "first_ts": first, "last_ts": last}
    subject = {**t, "evidence": {"devices": [unit]}}
    # no marker: the chart's only label is "first detection", and the verdict knows the day only
    return chart_for_ticket(subject, journal, influx=influx)


# --- routes -------------------------------------------------------------------------------------
def feedback_router(service: TicketService) -> APIRouter:
    """The complaint form and the classification correction over ``service``."""
    router = APIRouter(include_in_schema=False)
    User = Annotated[Principal, Depends(auth.cookie_user(service))]

    def form_page(user: Principal, values: dict, errors: dict | None, status: int) -> Response:
        return html(page("New complaint", complaint_form(values, errors), user=user), status)

    async def posted(request: Request, user: Principal, back: str) -> dict[str, str] | Response:
        """The posted form, or the page refusing it (role, another site, unreadable)."""
        if not user.can(ROLE):
            return forbidden_page(user)
        if not auth.same_origin(request):
            return _problem(user, "Refused", "cross-site form refused", 403, back)
        form = await read_form(request)
        if isinstance(form, str):
            return _problem(user, "Cannot read the form", form, 400, back)
        return form

    @router.get("/feedback/new")
    def new_complaint(user: User) -> Response:
        return form_page(user, {}, None, 200) if user.can(ROLE) else forbidden_page(user)

    @router.post("/feedback")
    async def file_complaint(request: Request, user: User) -> Response:
        form = await posted(request, user, "/feedback/new")
        if isinstance(form, Response):
            return form
        values = {k: form.get(k, "") for k in FORM_FIELDS}
        try:
            complaint = complaint_from_form(form)
            filed = await run_in_threadpool(service.file_feedback, complaint, actor=user.name)
        except FormInvalid as exc:
            return form_page(user, values, exc.errors, 422)
        except InvalidFeedback as exc:  # what only the service checks (e.g. blank words)
            return form_page(user, values, {exc.field: str(exc)}, 422)
        t = filed.ticket
        query = f"filed={filed.outcome}" + (f"&n={t.repeats}" if filed.outcome == "repeat" else "")
        return RedirectResponse(f"/tickets/{quote(t.id)}?{query}", status_code=303)

    @router.post("/tickets/{ticket_id}/classification")
    async def correct(ticket_id: str, request: Request, user: User) -> Response:
        back = f"/tickets/{quote(ticket_id)}"
        form = await posted(request, user, back)
        if isinstance(form, Response):
            return form
        fields = ("category", "fault", "severity", "note")
        try:
            body = ClassificationCorrect.model_validate({k: form.get(k) or None for k in fields})
            await run_in_threadpool(
                service.correct_classification,
                ticket_id,
                actor=user.name,
                category=body.category.value,
                fault=body.fault,
                severity=body.severity.value,
                note=body.note,
            )
        except ValidationError as exc:
            message = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            return _problem(user, "Not corrected", message, 422, back)
        except InvalidFeedback as exc:
            return _problem(user, "Not corrected", str(exc), 422, back)
        except TicketNotFound:
            return _problem(user, "Not found", f"no ticket {ticket_id}", 404, "/tickets")
        except TicketConflict as exc:
            return _problem(user, "Not corrected", str(exc), 409, back)
        return RedirectResponse(f"{back}?corrected=1", status_code=303)

    return router
