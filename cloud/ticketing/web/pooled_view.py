"""A batch ticket's evidence from the pooled tests (``cloud/anomaly/pooled.py``,
``cloud/anomaly/peers.py``), as a quality engineer reads it: which test opened the ticket, and
what the pooled test found.

A batch ticket can be opened by any of three batch tests: the *alarm count* test (units past
their own alarm threshold, ``cloud/ticketing/policy.py``), the *pooled shift* test (units of one
batch drifting together, each possibly still below its own threshold) or the *peer level* test
(units of one batch short of their model's other batches from the start: ``"kind": "peers"``).
The ticket's evidence says which (``opened_by``) and, for the pooled tests, holds its numbers
(``pooled``). Shown raw, those are a Python dict and a long English sentence; here they become
one plain sentence in the viewer's language and a labelled table. The units the pooled test
named are in the units table already ("drifting", "short of its peers"), so their values are
not repeated here.

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
    "reference_short": "reference units short by as much",
    "reference_level": "reference level (other batches' median)",
    "batch_level": "the batch's median level",
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
HIDDEN = {"shifts", "test", "fault", "kind"}
#: the peer level test's labels where they differ from the shift test's
PEER_LABELS = {
    "statistic": "units short of the model's other batches",
    "level": "shortfall a unit must reach (fraction of the reference)",
}


def opened_by(evidence: Mapping[str, Any]) -> str | None:
    """``"pooled"``, ``"peers"`` or ``"alarms"``: which batch test opened the ticket (None: not
    a batch test's ticket, or one opened before tickets said)."""
    test = evidence.get("opened_by")
    if not test:
        return None
    pooled = evidence.get("pooled") or {}
    if test != pooled.get("test"):
        return "alarms"
    return "peers" if pooled.get("kind") == "peers" else "pooled"


def opened_by_row(evidence: Mapping[str, Any]) -> str:
    """The "opened by" line of the batch statistics, the test's full description on hover."""
    which = opened_by(evidence)
    if which is None:
        return ""
    label = tr(
        {
            "pooled": "pooled shift test: units of the batch drifting together",
            "peers": "peer level test: units of the batch short of the model's other batches",
        }.get(which, "alarm count test: units past their own alarm threshold")
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
    peers = pooled.get("kind") == "peers"
    if peers:
        sentence = tr(
            "{k} of {n} units of this batch learned a level {level} or more short of their"
            " model's other batches at like conditions, against {x} of {r} units of those"
            " batches: p adjusted {p} (α {alpha}).",
            k=number(pooled.get("statistic")),
            n=number(pooled.get("units")),
            level=_percent(pooled.get("level")),
            x=number(pooled.get("reference_short")),
            r=number(pooled.get("reference_units")),
            p=_p(pooled.get("p_adjusted")),
            alpha=number(pooled.get("alpha")),
        )
    else:
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
    labels = {**LABELS, **PEER_LABELS} if peers else LABELS
    keys = [k for k in labels if k in pooled]
    keys += [k for k in pooled if k not in labels and k not in HIDDEN]
    rows = "".join(
        f"<div><dt>{esc(tr(labels[k]) if k in labels else k)}</dt>"
        f'<dd data-pooled="{esc(k)}">{_value(k, pooled[k])}</dd></div>'
        for k in keys
    )
    title = tr("Peer level test") if peers else tr("Pooled shift test")
    return (
        f'<div id="pooled"><h3>{esc(title)}</h3>'
        f'<p class="note">{esc(sentence)}</p>'
        f'<dl class="facts one">{rows}</dl></div>'
    )


def _percent(value: object) -> str:
    return f"{100 * value:g} %" if isinstance(value, int | float) else number(value)


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
