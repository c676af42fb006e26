"""Labelled complaint texts: what the classifier learns from and is measured on.

The corpus that ships with the package (``corpus/complaints.jsonl``) was written by the project
for this purpose, one JSON object a line: ``text``, ``lang``, ``channel``, ``category``, ``fault``
(or null), ``severity`` and ``split``. Its ``test`` part is worded differently from its ``train``
part on purpose and is never used for fitting or for choosing settings. People's corrections are
the same shape (a :class:`LabelledText`), so the model retrains on corpus and corrections alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from contract.faults import FEEDBACK_CATEGORIES

CATEGORIES = FEEDBACK_CATEGORIES
SEVERITIES = ("I", "II", "III")
CHANNELS = (
    "hotline",
    "online",
    "email",
    "ecommerce",
    "store",
    "dealer",
    "platform",
    "internal",
    "partner",
    "survey",
)


@dataclass(frozen=True, slots=True)
class LabelledText:
    """A text with the classification a person gave it.

    >>> LabelledText("噪音很大", "workmanship", "noise_rise").severity
    'I'
    """

    text: str
    category: str
    fault: str | None = None
    severity: str = "I"
    channel: str | None = None
    lang: str | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}; one of {CATEGORIES}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}; one of {SEVERITIES}")


def parse_corpus(lines: Iterable[str]) -> tuple[LabelledText, ...]:
    """Labelled texts from JSON lines (blank lines skipped)."""
    out = []
    for line in lines:
        if line.strip():
            row = json.loads(line)
            out.append(
                LabelledText(
                    text=row["text"],
                    category=row["category"],
                    fault=row.get("fault"),
                    severity=row["severity"],
                    channel=row.get("channel"),
                    lang=row.get("lang"),
                    split=row.get("split"),
                )
            )
    return tuple(out)


def load_corpus(split: str | None = None) -> tuple[LabelledText, ...]:
    """The shipped corpus, or its ``train`` / ``test`` part.

    >>> len(load_corpus("test")) * 4 >= len(load_corpus())
    True
    """
    text = resources.files("cloud.feedback").joinpath("corpus/complaints.jsonl").read_text("utf-8")
    rows = parse_corpus(text.splitlines())
    return rows if split is None else tuple(r for r in rows if r.split == split)
