"""A ticket's feedback on the pages: the complaints in the customers' own words, the
classification with its confidence, the unit, what was read from the words, the telemetry
verdict, a person's correction form (:func:`feedback_sections`); a ticket's source in the list
(:func:`source_badge`); and the chart of the unit a complaint names (:func:`feedback_chart`).
"""

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cloud.store.readback import InfluxTarget
from cloud.ticketing.corroboration import WATCHED
from cloud.ticketing.web import i18n
from cloud.ticketing.web.evidence import EvidenceChart, chart_for_ticket
from cloud.ticketing.web.i18n import name, names, tr
from cloud.ticketing.web.layout import esc, named, select_options, severity_badge, when
from contract.faults import FAULTS, FEEDBACK_CATEGORIES

#: Evidence keys rendered here; the batch statistics leave them out.
EVIDENCE_KEYS = frozenset({"complaints", "unit", "extracted", "telemetry"})


def triage_badge() -> str:
    return f'<span class="badge triage">{esc(tr("needs triage"))}</span>'


# --- a ticket's feedback ------------------------------------------------------------------------
def from_complaint(t: Mapping[str, Any]) -> bool:
    """Whether ``t`` was opened by one complaint (not a batch ticket that complaints opened)."""
    return t.get("source") == "feedback" and t["scope"] != "batch"


def source_badge(t: Mapping[str, Any], *, compact: bool = False) -> str:
    """``telemetry``, or ``feedback · hotline`` (``compact``: ``hotline``) and a triage badge
    when a person must confirm the classification."""
    if t.get("source") != "feedback":
        return f'<span class="badge src-telemetry">{esc(name("source", "telemetry"))}</span>'
    channel = named("channel", t["channel"]) if t.get("channel") else esc(tr("complaints"))
    text = channel if compact else f"{esc(name('source', 'feedback'))} · {channel}"
    mark = ""
    if (t.get("classification") or {}).get("needs_triage"):
        short = f' <span class="badge triage">{esc(tr("triage"))}</span>'
        mark = short if compact else f" {triage_badge()}"
    title = esc(tr("from feedback"))
    return f'<span class="badge src-feedback" title="{title}">{text}</span>{mark}'


def notice(query: Mapping[str, str], t: Mapping[str, Any]) -> str:
    """What became of the form just sent (``?filed=…`` or ``?corrected=1``), as a banner."""
    n = query.get("n", "")
    filed = query.get("filed") or ""
    text = None
    if filed == "opened":
        text = tr("Registered as this new ticket, classified automatically.")
    elif filed == "repeat":
        number = n if n.isdigit() else t["repeats"]
        text = tr("Merged into this open ticket as repeat #{n}.", n=number)
    elif filed == "duplicate":
        text = tr("This complaint had been registered before: nothing new was recorded.")
    if query.get("corrected") == "1":
        text = tr("Classification corrected.")
    return f'<div class="notice" id="filed" role="status">{esc(text)}</div>' if text else ""


def verdict_sentence(v: Mapping[str, Any]) -> str:
    """What the unit's telemetry says (``corroboration.Verdict``): in English the API's own
    sentence, in Chinese the same said from the verdict's fields."""
    if not i18n.current().zh:
        return str(v.get("text", ""))
    status, fault, since = v.get("status"), str(v.get("fault")), v.get("since")
    what, watched = name("fault", fault), WATCHED.get(fault)
    baseline, current = v.get("baseline"), v.get("current")
    if status == "confirms" and watched and baseline is not None and current is not None:
        return tr(
            "telemetry confirms: {quantity} {moved} from {baseline} to {current} {unit} since "
            "{since}",
            quantity=tr(watched[0]), moved=tr("fell") if current < baseline else tr("rose"),
            baseline=f"{baseline:.1f}", current=f"{current:.1f}", unit=watched[1], since=since,
        )  # fmt: skip
    if status == "confirms":
        return tr("telemetry confirms: {what} reported since {since}", what=what, since=since)
    if status == "recovered" and v.get("onset"):
        return tr(
            "telemetry showed {what} from {onset}; back at baseline since {since}",
            what=what, onset=v["onset"], since=since,
        )  # fmt: skip
    if status == "normal" and v.get("days") is not None:
        return tr(
            "telemetry normal for {what} since {since} ({days} days of data): check installation "
            "or usage", what=what, since=since, days=f"{v['days']:.0f}",
        )  # fmt: skip
    if status == "no_data" and v.get("days") is not None:
        return tr("too little telemetry to judge {what} (under a day)", what=what)
    if status == "no_data":
        return tr("no telemetry: the unit has never reported")
    return str(v.get("text", ""))


def _verdict(t: Mapping[str, Any]) -> str:
    verdict = t["evidence"].get("telemetry") or {}
    status = str(verdict.get("status", "none"))
    if verdict:
        text = f"<b>{esc(name('verdict', status))}</b> {esc(verdict_sentence(verdict))}"
    elif t["device"] is None:
        text = esc(tr("no telemetry to check: the complaint names no registered unit"))
    else:
        watched = named("fault", t["fault"]) if t["fault"] else named("category", t["category"])
        text = tr("no telemetry verdict: no detector watches {what}", what=watched)
    attrs = f'class="verdict v-{esc(status)}" id="telemetry-verdict" data-status="{esc(status)}"'
    return f"<p {attrs}>{text}</p>"


def _dl(rows: list[tuple[str, str]], ident: str) -> str:
    items = "".join(f"<div><dt>{esc(k)}</dt><dd>{v}</dd></div>" for k, v in rows)
    return f'<dl class="facts one" id="{ident}">{items}</dl>'


def _classification(c: Mapping[str, Any]) -> str:
    confidence = c.get("confidence")
    departments = c.get("departments") or [c.get("department")]
    rows = [
        (tr("category"), named("category", c.get("category"))),
        (tr("fault"), named("fault", c.get("fault"))),
        (tr("severity"), severity_badge(str(c.get("severity")))),
        (tr("confidence"), "—" if confidence is None else f"{confidence:.0%}"),
        (tr("priority"), named("priority", c.get("priority"))),
        (tr("departments"), ", ".join(named("department", d) for d in departments)),
    ]
    labels = {"rule": tr("rule"), "corrected_by": tr("corrected by")}
    rows += [(labels[k], esc(c[k])) for k in ("rule", "corrected_by") if c.get(k)]
    triage = ""
    if c.get("needs_triage"):
        unsure = esc(tr("the classifier is unsure: confirm or correct it."))
        triage = f'<p id="needs-triage">{triage_badge()} {unsure}</p>'
    return triage + _dl(rows, "classification")


def _unit(unit: Mapping[str, Any], read: Mapping[str, Any]) -> str:
    labels = {
        "device": tr("device"), "serial": tr("serial"), "model": tr("model"),
        "batch": tr("batch"), "demand": tr("demand"),
    }  # fmt: skip
    rows = [
        (labels[k], esc(unit[k])) for k in ("device", "serial", "model", "batch") if unit.get(k)
    ]
    if unit.get("matched") is False:
        unmatched = esc(tr("serial matches no unit"))
        rows.append((tr("match"), f'<span class="badge unmatched">{unmatched}</span>'))
    if unit.get("model_given"):
        rows.append((tr("model given"), esc(unit["model_given"])))
    temps = ", ".join(
        f"{x['value_c']:g} °C" + (f" ({esc(x['kind'])})" if x.get("kind") else "")
        for x in read.get("temperatures", [])
    )
    found = [
        (tr("temperatures"), temps or "—"),
        (tr("error codes"), esc(", ".join(read.get("error_codes", []))) or "—"),
        (tr("dates"), esc(", ".join(read.get("dates", []))) or "—"),
    ]
    found += [(labels[k], esc(read[k])) for k in ("model", "serial") if read.get(k)]
    if read.get("demand"):
        found.append((labels["demand"], named("demand", read["demand"])))
    none = f'<p class="note" id="unit">{esc(tr("The complaint names no unit."))}</p>'
    out = f"<h3>{esc(tr('Unit'))}</h3>{_dl(rows, 'unit') if rows else none}"
    return out + f"<h3>{esc(tr('Read from the words'))}</h3>{_dl(found, 'extracted')}"


def _complaint(c: Mapping[str, Any]) -> str:
    parts = [named("channel", c.get("channel")), when(c.get("received_at"))]
    parts += [esc(c[k]) for k in ("customer", "contact") if c.get(k)]
    if c.get("demand"):
        parts.append(tr("wants {demand}", demand=named("demand", c["demand"])))
    labels = {"serial": tr("serial"), "model": tr("model"), "purchase_date": tr("purchased")}
    parts += [f"{labels[k]} {esc(c[k])}" for k in labels if c.get(k)]
    return (
        f'<li class="complaint"><div class="meta">{" · ".join(parts)}</div>'
        f'<blockquote class="words">{esc(c.get("text"))}</blockquote></li>'
    )


def correction_form(t: Mapping[str, Any]) -> str:
    """Category, fault and severity selects; the faults are the vocabulary's, by category."""
    c = t.get("classification") or {}
    categories = names("category", FEEDBACK_CATEGORIES)
    groups = ""
    for cat in FEEDBACK_CATEGORIES:
        if faults := names("fault", (f for f, of in FAULTS.items() if of == cat)):
            options = select_options(faults, c.get("fault") or "")
            groups += f'<optgroup label="{esc(categories[cat])}">{options}</optgroup>'
    none = "" if c.get("fault") else " selected"
    category = select_options(categories, c.get("category", ""))
    severity = select_options(names("severity", ("I", "II", "III")), str(c.get("severity", "")))
    return (
        f'<form class="filters correct" method="post"'
        f' action="/tickets/{esc(t["id"])}/classification">'
        f'<label>{esc(tr("Category"))}<select name="category">{category}</select></label>'
        f'<label>{esc(tr("Fault"))}<select name="fault"><option value=""{none}>'
        f"{esc(tr('no fault of the vocabulary'))}</option>{groups}</select></label>"
        f'<label>{esc(tr("Severity"))}<select name="severity">{severity}</select></label>'
        f'<label>{esc(tr("Note"))}<input name="note" maxlength="2000"></label>'
        f'<button class="primary" id="correct" type="submit">{esc(tr("Correct"))}</button></form>'
    )


def _children(entries: list[Mapping[str, Any]]) -> str:
    channels = Counter(str(e.get("channel")) for e in entries)
    counts = ", ".join(f"{named('channel', ch)} {n}" for ch, n in channels.most_common())
    tickets = dict.fromkeys(str(e["ticket"]) for e in entries)
    links = ", ".join(f'<a href="/tickets/{esc(x)}">{esc(x)}</a>' for x in tickets)
    return (
        f'<section class="card" id="complaints"><h2>{esc(tr("Customer complaints"))}</h2>'
        f"<p>{tr('{n} complaint(s) from channels: {counts}', n=len(entries), counts=counts)}</p>"
        f'<p class="note">{tr("Their tickets: {links}", links=links)}</p></section>'
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
        link = f'<a id="parent" href="/tickets/{parent}">{parent}</a>'
        links.append(tr("joined batch ticket {link}", link=link))
    repeats = tr("repeat complaints: {n}", n=t.get("repeats", 0))
    links.append(f'<span id="repeats">{esc(repeats)}</span>')
    body = f'<p class="note">{" · ".join(links)}</p>'
    if feedback:
        c, unit, read = t.get("classification"), evidence.get("unit"), evidence.get("extracted")
        left = f"<div><h3>{esc(tr('Classification'))}</h3>{_classification(c or {})}</div>"
        right = f"<div>{_unit(unit or {}, read or {})}</div>"
        body = f'{_verdict(t)}{body}<div class="grid2">{left}{right}</div>'
    listed = "".join(_complaint(x) for x in words)
    heading = esc(tr("Complaints ({n})", n=len(words)))
    body += f'<h3>{heading}</h3><ol class="complaints">{listed}</ol>'
    if feedback and can_correct and t.get("classification"):
        body += f"<h3>{esc(tr('Correct the classification'))}</h3>{correction_form(t)}"
    head = f'<section class="card" id="feedback"><h2>{esc(tr("Customer feedback"))}</h2>'
    return f"{out}{head}{body}</section>"


def feedback_chart(
    t: Mapping[str, Any], journal: str | None, influx: InfluxTarget | None
) -> EvidenceChart:
    """The chart of a ticket without a fault (none), or of the unit a complaint's ticket names,
    for its fault: from the onset the data shows (when it confirms or recovered) to the
    complaint, else around the complaint."""
    if t["fault"] is None:
        category = name("category", t["category"])
        return EvidenceChart(
            None, tr("no fault of the vocabulary: no signal shows {category}", category=category)
        )
    if t["device"] is None:
        return EvidenceChart(
            None, tr("the complaint names no registered unit, so no data to chart")
        )
    first = last = received = datetime.fromisoformat(t["detected_at"]).timestamp()
    verdict = t["evidence"].get("telemetry") or {}
    if verdict.get("since") and verdict.get("status") in ("confirms", "recovered"):
        since = datetime.fromisoformat(verdict["since"]).replace(tzinfo=UTC).timestamp()
        first, last = min(since, received), max(since, received)
    unit = {"device": t["device"], "onset_ts": first, "first_ts": first, "last_ts": last}
    subject = {**t, "evidence": {"devices": [unit]}}
    # no marker: the chart's only label is "first detection", and the verdict knows the day only
    return chart_for_ticket(subject, journal, influx=influx)
