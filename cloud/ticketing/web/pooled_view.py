"""A batch ticket's evidence from the pooled shift test (``cloud/anomaly/pooled.py``), as a
quality engineer reads it: which test opened the ticket, and what the pooled test found.

A batch ticket can be opened by either batch test: the *alarm count* test (units past their own
alarm threshold, ``cloud/ticketing/policy.py``) or the *pooled shift* test (units of one batch
drifting together, each possibly still below its own threshold). The ticket's evidence says which
(``opened_by``) and, for the pooled test, holds its numbers (``pooled``). Shown raw, those are a
Python dict and a long English sentence; here they become one plain sentence in the viewer's
language and a labelled table. The units the pooled test named are in the units table already
("drifting"), so their shifts are not repeated here.

Pure: the ticket's evidence in, HTML out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud.anomaly.pooled import REFERENCES
from cloud.ticketing.web.i18n import tr
from cloud.ticketing.web.layout import esc, number, when_ts

#: the pooled evidence's keys with their labels, in the order shown (others follow as they are)
LABELS = {
    "statistic": "units beyond the level now",
    "units": "units in the batch",
    "level": "level (robust σ of the fleet's shifts)",
    "span_h": "span of each unit's shift (h)",
    "reference": "reference",
    "reference_units": "reference units",
    "reference_beyond": "reference units beyond the level (weighted)",
    "reference_exposure_days": "reference exposure (unit-days)",
    "reference_exposure_looks": "reference exposure (independent looks)",
    "p_value": "p-value",
    "p_adjusted": "p-value, adjusted",
    "alpha": "significance level α",
    "correction": "multiple-test correction",
    "ts": "round (event time)",
}
#: not shown in the table: the shifts are in the units table, the test is named in the sentence
HIDDEN = {"shifts", "test", "fault"}


def opened_by(evidence: Mapping[str, Any]) -> str | None:
    """``"pooled"`` or ``"alarms"``: which batch test opened the ticket (None: not a batch
    test's ticket, or one opened before tickets said)."""
    test = evidence.get("opened_by")
    if not test:
        return None
    pooled = evidence.get("pooled") or {}
    return "pooled" if test == pooled.get("test") else "alarms"


def opened_by_row(evidence: Mapping[str, Any]) -> str:
    """The "opened by" line of the batch statistics, the test's full description on hover."""
    which = opened_by(evidence)
    if which is None:
        return ""
    label = (
        tr("pooled shift test: units of the batch drifting together")
        if which == "pooled"
        else tr("alarm count test: units past their own alarm threshold")
    )
    title = esc(evidence["opened_by"])
    return (
        f"<div><dt>{esc(tr('opened by'))}</dt>"
        f'<dd data-stat="opened_by" data-test="{which}" title="{title}">{esc(label)}</dd></div>'
    )


def pooled_section(evidence: Mapping[str, Any]) -> str:
    """The pooled test's latest evidence: a sentence, then its numbers; empty without any."""
    pooled = evidence.get("pooled")
    if not isinstance(pooled, Mapping):
        return ""
    sentence = tr(
        "{k} of {n} units of this batch have drifted beyond {level} robust σ of the fleet's"
        " shifts, against {x} beyond it over {e} unit-days of {r} reference units:"
        " p adjusted {p} (α {alpha}).",
        k=number(pooled.get("statistic")),
        n=number(pooled.get("units")),
        level=number(pooled.get("level")),
        x=number(pooled.get("reference_beyond")),
        e=number(pooled.get("reference_exposure_days")),
        r=number(pooled.get("reference_units")),
        p=_p(pooled.get("p_adjusted")),
        alpha=number(pooled.get("alpha")),
    )
    keys = [k for k in LABELS if k in pooled]
    keys += [k for k in pooled if k not in LABELS and k not in HIDDEN]
    rows = "".join(
        f"<div><dt>{esc(tr(LABELS[k]) if k in LABELS else k)}</dt>"
        f'<dd data-pooled="{esc(k)}">{_value(k, pooled[k])}</dd></div>'
        for k in keys
    )
    return (
        f'<div id="pooled"><h3>{esc(tr("Pooled shift test"))}</h3>'
        f'<p class="note">{esc(sentence)}</p>'
        f'<dl class="facts one">{rows}</dl></div>'
    )


def _p(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else number(value)


def _value(key: str, value: object) -> str:
    if key == "reference" and value in REFERENCES:  # what the batch was compared with
        return esc(tr(REFERENCES[str(value)]))
    if key == "ts" and isinstance(value, int | float):
        return when_ts(float(value))
    if key.startswith("p_"):
        return esc(_p(value))
    if isinstance(value, str):
        return esc(tr(value))
    if isinstance(value, Mapping):  # a field added later: readable, not a Python repr
        return ", ".join(f"{esc(k)} {number(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(number(v) for v in value)
    return number(value)
