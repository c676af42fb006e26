"""How good the feedback classifier is, measured the honest way.

* :func:`cross_validate` chooses settings: k-fold over the ``train`` split only (stratified by
  category, shuffled with an injected ``random_state``). The test split plays no part in it.
* :func:`evaluate` fits on ``train`` and reports on ``test``: accuracy of the category (the
  procedure's "classification deviation" is 1 - accuracy), fault and severity accuracy, the
  confusion matrix over categories, the share sent to triage and the accuracy on the rest, and
  whether every safety text was caught.
* :func:`retrain` fits again on corpus + people's corrections and reports accuracy on the
  held-out texts before and after, which is what ``qloop feedback retrain`` prints.
* :func:`throughput` times classification with an injected clock.

What runs here is the production object (:class:`FeedbackClassifier`), not a copy of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from cloud.feedback.classify import FeedbackClassifier
from cloud.feedback.labelled import CATEGORIES, LabelledText


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Scores of one fitted classifier on one set of labelled texts."""

    n: int
    accuracy: float
    fault_accuracy: float
    severity_accuracy: float
    triage_share: float
    accuracy_not_triaged: float
    safety_recall: float
    confusion: tuple[tuple[int, ...], ...]  # rows: true category, columns: predicted, CATEGORIES
    misclassified: tuple[tuple[str, str, str], ...]  # (text, true, predicted)

    def confusion_table(self) -> str:
        """The confusion matrix as a Markdown table (rows true, columns predicted)."""
        head = "| true \\ predicted | " + " | ".join(CATEGORIES) + " |"
        rule = "| --- |" + " ---: |" * len(CATEGORIES)
        rows = [
            f"| {c} | " + " | ".join(str(v) for v in row) + " |"
            for c, row in zip(CATEGORIES, self.confusion, strict=True)
        ]
        return "\n".join([head, rule, *rows])


def score(model: FeedbackClassifier, examples: Sequence[LabelledText]) -> Evaluation:
    """Score a fitted model on labelled texts."""
    predicted = model.predict_many([e.text for e in examples])
    index = {c: i for i, c in enumerate(CATEGORIES)}
    confusion = np.zeros((len(CATEGORIES), len(CATEGORIES)), dtype=int)
    right = np.array([p.category == e.category for p, e in zip(predicted, examples, strict=True)])
    for p, e in zip(predicted, examples, strict=True):
        confusion[index[e.category], index[p.category]] += 1
    kept = np.array([not p.needs_triage for p in predicted])
    safety = [p.category == "safety" for p, e in zip(predicted, examples, strict=True)
              if e.category == "safety"]  # fmt: skip
    n = len(examples)
    return Evaluation(
        n=n,
        accuracy=float(right.mean()) if n else float("nan"),
        fault_accuracy=float(
            np.mean([p.fault == e.fault for p, e in zip(predicted, examples, strict=True)])
        ),
        severity_accuracy=float(
            np.mean([p.severity == e.severity for p, e in zip(predicted, examples, strict=True)])
        ),
        triage_share=float(1.0 - kept.mean()) if n else float("nan"),
        accuracy_not_triaged=float(right[kept].mean()) if kept.any() else float("nan"),
        safety_recall=float(np.mean(safety)) if safety else float("nan"),
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        misclassified=tuple(
            (e.text, e.category, p.category)
            for p, e in zip(predicted, examples, strict=True)
            if p.category != e.category
        ),
    )


def evaluate(
    train: Sequence[LabelledText],
    test: Sequence[LabelledText],
    **params: Any,
) -> Evaluation:
    """Fit a classifier with ``params`` on ``train`` and score it on ``test``."""
    return score(FeedbackClassifier(**params).fit(train), test)


def cross_validate(
    train: Sequence[LabelledText], *, folds: int = 5, random_state: int = 0, **params: Any
) -> Evaluation:
    """Out-of-fold scores over ``train`` alone: the way settings are chosen.

    Each text is predicted by the model fitted on the other folds; the scores pool all folds.
    """
    labels = [e.category for e in train]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    parts = []
    for fit_idx, held_idx in splitter.split(np.zeros(len(train)), labels):
        model = FeedbackClassifier(**params).fit([train[i] for i in fit_idx])
        parts.append(score(model, [train[i] for i in held_idx]))
    return _pool(parts)


def _pool(parts: Sequence[Evaluation]) -> Evaluation:
    n = sum(p.n for p in parts)

    def mean(attr: str) -> float:
        values = [(getattr(p, attr), p.n) for p in parts if not np.isnan(getattr(p, attr))]
        total = sum(w for _, w in values)
        return sum(v * w for v, w in values) / total if total else float("nan")

    kept = [(p.accuracy_not_triaged, p.n * (1 - p.triage_share)) for p in parts]
    kept_n = sum(w for _, w in kept if not np.isnan(_))
    confusion = np.sum([np.array(p.confusion) for p in parts], axis=0)
    return Evaluation(
        n=n,
        accuracy=mean("accuracy"),
        fault_accuracy=mean("fault_accuracy"),
        severity_accuracy=mean("severity_accuracy"),
        triage_share=mean("triage_share"),
        accuracy_not_triaged=(
            sum(v * w for v, w in kept if not np.isnan(v)) / kept_n if kept_n else float("nan")
        ),
        safety_recall=mean("safety_recall"),
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        misclassified=tuple(m for p in parts for m in p.misclassified),
    )


@dataclass(frozen=True, slots=True)
class Retrained:
    """A model refitted with people's corrections, and its held-out accuracy before and after."""

    model: FeedbackClassifier
    accuracy_before: float
    accuracy_after: float


def retrain(
    model: FeedbackClassifier,
    train: Sequence[LabelledText],
    corrections: Sequence[LabelledText],
    held_out: Sequence[LabelledText],
) -> Retrained:
    """Fit a copy of ``model`` on ``train`` + ``corrections``; ``model`` itself is unchanged."""
    new = FeedbackClassifier(**model.params).fit(train, corrections)
    return Retrained(new, score(model, held_out).accuracy, score(new, held_out).accuracy)


def throughput(
    work: Callable[[Sequence[str]], object],
    texts: Sequence[str],
    *,
    repeats: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Texts per second of ``work`` over ``texts``, the best of ``repeats`` timed runs."""
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        work(texts)
        best = min(best, clock() - start)
    return len(texts) / best if best > 0 else float("inf")
