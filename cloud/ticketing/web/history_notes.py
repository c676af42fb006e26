"""A ticket's history (处理记录) in the viewer's language: the notes the system wrote, read back.

The history is stored as written, in English, and its hash chain (``chain.py``) and the API keep
it so; the pages translate it when they show it. Each note the system writes has a template here
(:data:`NOTES`): its English as the code writes it, with ``{fields}`` for the values put in and
``[...]`` round a part the code writes only sometimes. The Chinese of a template is its entry in
``zh_cn.MESSAGES`` (keyed by the English template, as every sentence of the pages is), written
with the same fields and brackets.

:func:`translate` matches a note against the templates of its history ``action`` and writes the
Chinese with the values put back: vocabulary values (channel, department, stage, status, fault,
…) by their names, times in the viewer's zone, what a person typed (a remark, a complaint's text,
a measure's action and owner, a cause) exactly as typed. A note no template knows — a person's
own remark on a transition, a comment, a follow-up — is shown as it is.

>>> from cloud.ticketing.web.i18n import for_lang, use
>>> with use(for_lang("zh-CN")):
...     translate("joined batch ticket PF202611001", action="joined")
'已关联批次工单 PF202611001'
>>> translate("joined batch ticket PF202611001", action="joined")  # English: as stored
'joined batch ticket PF202611001'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cloud.ticketing.policy import TEST_BACKGROUND, TEST_BEYOND_BACKGROUND, TEST_CONDITIONAL
from cloud.ticketing.web.i18n import clock, current, name, tr
from contract.faults import FAULTS

Render = Callable[[str], str]
POOLED_WHO = "the pooled shift test"  # who reported a regression found by the pooled test
PEERS_WHO = "the peer level test"  # ... or by the peer level test


def _as_is(value: str) -> str:
    return value


def _named(kind: str) -> Render:
    return lambda value: name(kind, value)


def _listed(value: str) -> str:
    return "、".join(value.split(", "))


def _iso(value: str) -> str:
    return clock(datetime.fromisoformat(value))


def _utc_minute(value: str) -> str:
    return clock(datetime.strptime(value, "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC))


def _epoch(value: str) -> str:
    return clock(datetime.fromtimestamp(float(value), UTC))


def _problem(value: str) -> str:
    return name("fault" if value in FAULTS else "category", value)


def _failures(value: str) -> str:
    """The failed units of a verification, ``"; "``-separated, each with its reason."""
    return "；".join(_translate(item, REASONS) for item in value.split("; "))


@dataclass(frozen=True, slots=True)
class Field:
    """A value in a note: what it looks like (a regex) and how it is shown."""

    pattern: str
    render: Render = _as_is


TYPED = Field(r".*?")  # what a person typed: shown as typed
_INT = Field(r"\d+")
_NUMBER = Field(r"[-+.\deE]+|inf|nan")
_ISO = Field(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)", _iso)
_WORD = r"[\w&-]+"
FIELDS: dict[str, Field] = {
    # ids and counts, as they are
    "ticket": Field(r"[A-Z]{2}\d+"),
    "tickets": Field(r"[A-Z]{2}\d+(?:, [A-Z]{2}\d+)*", _listed),
    "devices": Field(r"[^,\s]+(?:, [^,\s]+)*", _listed),
    "device": Field(r"\S+"),
    **dict.fromkeys(("affected", "units", "count", "cleared", "failed", "measure"), _INT),
    **dict.fromkeys(("repeats", "score", "statistic"), _INT),
    **dict.fromkeys(("p", "level", "percent", "days", "hours", "confidence"), _NUMBER),
    # vocabulary, by its names
    "channel": Field(_WORD, _named("channel")),
    "department": Field(_WORD, _named("department")),
    "stage": Field(_WORD, _named("stage")),
    "was": Field(_WORD, _named("measure_status")),
    "status": Field(_WORD, _named("measure_status")),
    "severity_was": Field(r"I{1,3}|—", _named("severity")),
    "severity": Field(r"I{1,3}|—", _named("severity")),
    "priority_was": Field(_WORD, _named("priority")),
    "priority": Field(_WORD, _named("priority")),
    "category_was": Field(r"\w+|—", _named("category")),
    "category": Field(r"\w+|—", _named("category")),
    "fault_was": Field(r"\w+|—", _named("fault")),
    "fault": Field(r"\w+|—", _named("fault")),
    "problem": Field(r"\w+", _problem),  # a fault, or the category of a problem without one
    "term": Field(r"short|long", _named("term")),
    "kind": Field(_WORD, _named("kind")),
    "key": Field(r"unit|customer|batch", _named("repeat_key")),
    "result": Field(
        r"effective|not effective|needs work", lambda v: name("result", v.replace(" ", "_"))
    ),
    # times, in the viewer's zone
    "at": _ISO,
    "verified": Field(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", _utc_minute),
    "epoch": Field(r"\d+", _epoch),
    # the batch tests, by their names
    "batch_test": Field(
        "|".join(re.escape(t) for t in (TEST_CONDITIONAL, TEST_BACKGROUND, TEST_BEYOND_BACKGROUND)),
        lambda v: tr(v),
    ),
    "pooled_test": Field(
        r"(?:pooled shift|peer levels)\b.*?",
        lambda v: tr(PEERS_WHO if v.startswith("peer") else POOLED_WHO),
    ),
    "who": Field(r".+?", lambda v: tr(v) if v in (POOLED_WHO, PEERS_WHO) else v),  # a unit, a test
    "failures": Field(r".+", _failures),
    # what people typed
    **dict.fromkeys(("text", "task", "owner", "record", "remark", "root"), TYPED),
    **dict.fromkeys(("description", "head", "actor", "matched"), TYPED),
}


@dataclass(frozen=True, slots=True)
class Note:
    """One note the system writes: the history ``actions`` it is written under (empty: any)
    and its English template."""

    actions: frozenset[str]
    english: str


def _note(english: str, *actions: str) -> Note:
    return Note(frozenset(actions), english)


NOTES: tuple[Note, ...] = (
    # opened by the data, or by people's feedback (opening.py, complaint_batches.py, complaints.py)
    _note("{batch_test}", "opened"),
    _note("{pooled_test}: p_adjusted={p}", "opened"),
    _note("{affected} of {units} units complained about {problem}: p_adjusted={p}", "opened"),
    _note("{channel}: {category}[ / {fault}][ (confidence {confidence}: needs triage)]", "opened"),
    # the data moves it on (decisions.py, opening.py)
    _note(
        "pooled shift test: {statistic} of {units} units beyond {level} robust sigma,"
        " p_adjusted={p}",
        "updated",
    ),
    _note(
        "peer level test: {statistic} of {units} units short of the model's other batches by"
        " {percent}% or more, p_adjusted={p}",
        "updated",
    ),
    _note("{affected} affected of {units}", "updated"),
    _note(
        "severity {severity_was}→{severity}, priority {priority_was}→{priority}",
        "severity_raised",
    ),
    _note("fault indicator back at baseline: {devices}", "recovered"),
    _note("absorbed {tickets}", "absorbed"),
    _note("merged into {ticket}", "merged"),
    _note(
        "regression: {who} reported {fault} at {at} (event time), after the fix verified on"
        " {verified}",
        "regression",
    ),
    # the fix and its verdicts (actions.py, verification.py, verdicts.py, closing.py)
    _note("fix on {count} unit(s) from {at}: {description}", "fix"),
    _note("fix, to be checked by the quality engineer (no units' data): {description}", "fix"),
    _note("verified: {cleared}/{units} units back at baseline", "verified"),
    _note("not verified: {failed}/{units} units failed: {failures}", "verification_failed"),
    _note("checked by {actor}: {result}[: {remark}]", "verified", "checked"),
    _note(
        "the fix of batch ticket {ticket} is verified: call the customer back", "parent_verified"
    ),
    _note("the customer scored {score}: closed", "satisfied"),
    _note(
        "re-dispatched to {department}: the customer scored {score} (3 or lower): {remark}",
        "redispatched",
    ),
    # deadlines (overdue.py, capa.py)
    _note("{stage} overdue: was due {at}", "overdue"),
    _note("{stage} due soon: {at}", "due_soon"),
    _note("measure #{measure} ({department}, {owner}) overdue: due {at}", "measure_overdue"),
    _note("measure #{measure} ({department}, {owner}) due soon: due {at}", "measure_due_soon"),
    # measures and the cause (capa.py)
    _note(
        "measure #{measure} ({term}-term {kind}): {task} — {owner}, {department}, due {at}",
        "measure",
    ),
    _note("measure #{measure}: {was} → {status}[: {record}]", "measure"),
    _note("cause analysis: {root}", "cause_analysis"),
    # people's feedback (joining.py, complaints.py, alerts.py)
    _note("joined batch ticket {ticket}", "joined"),
    _note("complaint {ticket} via {channel} ({count} so far)", "complaint"),
    _note("repeat #{repeats} via {channel}: {text}", "repeat"),
    _note(
        "repeated complaint by {key} {matched}: {count} within {days} days; {department}"
        " alerted[ ({head})]",
        "repeat_alert",
    ),
    _note(
        "classification {category_was}/{fault_was}/{severity_was} →"
        " {category}/{fault}/{severity}[: {remark}]",
        "reclassified",
    ),
)

#: why a unit failed a verification (``verification.judge_unit``), inside a failed verdict's note
REASONS: tuple[Note, ...] = (
    _note("{device} reported the fault at {epoch}"),
    _note("{device} no clear within {hours} h of data after the fix"),
)

_PART = re.compile(r"\{(\w+)\}|\[|\]")
_FIELD = re.compile(r"\{(\w+)\}")


def pattern(english: str) -> re.Pattern[str]:
    """The regex that matches the notes written from the template ``english``.

    >>> pattern("merged into {ticket}").fullmatch("merged into PF202611001")["ticket"]
    'PF202611001'
    """
    out, at = [], 0
    for m in _PART.finditer(english):
        out.append(re.escape(english[at : m.start()]))
        if m[1]:
            out.append(f"(?P<{m[1]}>{FIELDS[m[1]].pattern})")
        else:
            out.append("(?:" if m[0] == "[" else ")?")
        at = m.end()
    out.append(re.escape(english[at:]))
    return re.compile("".join(out), re.DOTALL)


def _fill(template: str, values: dict[str, str | None]) -> str:
    """``template`` with its fields rendered from ``values``; a ``[...]`` part whose fields were
    not in the note is left out."""

    def field(m: re.Match[str]) -> str:
        return FIELDS[m[1]].render(values[m[1]] or "")

    def piece(m: re.Match[str]) -> str:  # one pass: what a value holds is never read again
        if m[1] is not None:
            return field(m)
        inside = m[2]
        if any(values.get(f) is None for f in _FIELD.findall(inside)):
            return ""
        return _FIELD.sub(field, inside)

    return re.sub(r"\{(\w+)\}|\[([^\[\]]*)\]", piece, template)


_COMPILED: dict[Note, re.Pattern[str]] = {n: pattern(n.english) for n in (*NOTES, *REASONS)}


def match(note: str, action: str | None = None, notes: Iterable[Note] = NOTES) -> Note | None:
    """The template ``note`` was written from (among those of ``action``), or None."""
    for n in notes:
        written_then = action is None or not n.actions or action in n.actions
        if written_then and _COMPILED[n].fullmatch(note):
            return n
    return None


def _translate(note: str, notes: Iterable[Note], action: str | None = None) -> str:
    found = match(note, action, notes)
    if found is None:
        return note
    values = _COMPILED[found].fullmatch(note).groupdict()  # type: ignore[union-attr]
    try:
        return _fill(tr(found.english), values)
    except (ValueError, OverflowError):  # a value that only looks like one (a time past 9999)
        return note


def translate(note: str, *, action: str | None = None) -> str:
    """``note`` in the viewer's language: unchanged in English, or when no template of the
    entry's ``action`` (any template when None) wrote it; else its Chinese, values put in."""
    if not current().zh:
        return note
    return _translate(note, NOTES, action)
