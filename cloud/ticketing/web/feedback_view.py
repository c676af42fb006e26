"""A ticket's feedback on the pages: the complaints in the customers' own words, the
classification with its confidence, the unit, what was read from the words, the telemetry
verdict, a person's correction form (:func:`feedback_sections`); a ticket's source in the list
(:func:`source_badge`); the chart of the unit a complaint names (:func:`feedback_chart`); and the
bilingual labels the complaint form shares.
"""

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cloud.store.readback import InfluxTarget
from cloud.ticketing.web.evidence import EvidenceChart, chart_for_ticket
from cloud.ticketing.web.layout import esc, severity_badge, when
from contract.faults import FAULTS, FEEDBACK_CATEGORIES

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


def labelled(value: str | None, labels: Mapping[str, str]) -> str:
    """A vocabulary value with its Chinese label beside it, as HTML: ``hotline 热线``."""
    return esc(value) + (f" {esc(labels[value])}" if value in labels else "")


def select_options(values: Mapping[str, str], current: str, blank: str | None = None) -> str:
    first = f'<option value="">{esc(blank)}</option>' if blank is not None else ""
    return first + "".join(
        f'<option value="{esc(v)}"{" selected" if v == current else ""}>{esc(text)}</option>'
        for v, text in values.items()
    )


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
            options = select_options(faults, c.get("fault") or "")
            groups += f'<optgroup label="{esc(categories[cat])}">{options}</optgroup>'
    none = "" if c.get("fault") else " selected"
    category = select_options(categories, c.get("category", ""))
    severity = select_options(SEVERITY_LABELS, str(c.get("severity", "")))
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
