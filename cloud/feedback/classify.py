"""Category, fault, severity, priority and departments for a complaint's text.

Two parts, in this order:

1. **Safety rules.** Anything that smells of danger (漏电, 冒烟, 焦味/烧焦, 起火/着火, 火花, 发烫,
   爆炸, falling parts, refrigerant leaks, electric shock, smoke, burning smell, fire, sparks, a
   tripping breaker) is ``safety``, severity III, priority urgent, confidence 1 — always. A rule
   cannot be out-voted by a model that has seen few such texts, and a false alarm costs a person
   one look while a miss can cost a fire. Negations ("无焦味") are deliberately not parsed: a
   triage person downgrades those.
2. **A text classifier** for the rest: TF-IDF over character n-grams (``char_wb``, 1-3 grams)
   feeding linear support-vector machines for the category, the fault and the severity.
   Character n-grams handle Chinese without word segmentation and English, full-width text and
   typos alike, so jieba is not used: it would add a dictionary download-free but 20 MB
   dependency and a second tokenisation whose gain on short complaints is small, while the
   n-grams already see 制冷/噪音/漏水 as features. The category's SVM is wrapped in
   ``CalibratedClassifierCV`` (sigmoid, 3 folds), so its probability is calibrated on texts the
   SVM did not see; that probability is the ``confidence`` and below ``triage_below`` a person
   must confirm (``needs_triage``). Fault and severity only need the best allowed label, so
   their SVMs' decision values are used as they are. A linear SVM fits in a fraction of the time
   multinomial logistic regression took on the same features (0.3-1.5 s against 5-8 s here)
   at similar cross-validated accuracy. The settings (n-gram range, ``C``, ``triage_below``)
   were chosen by 5-fold cross-validation on the ``train`` split only
   (:func:`cloud.feedback.evaluate.cross_validate`).

The fault is chosen only among the faults of the predicted category (CONTRACTS.md §3), so a
classification is never self-contradictory. Departments follow §3's lead department by
category, with the same fault rules as the ticket policy (cooling decline → R&D + Production)
and Production added when a performance text points to assembly or the factory.

The object is small and pure: configuration in the constructor, ``fit`` then ``predict``; no
clock, no I/O; ``random_state`` is passed to the solver; it pickles (a worker can load a model
retrained elsewhere).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from cloud.feedback.extract import normalise
from cloud.feedback.labelled import CATEGORIES, LabelledText
from contract.faults import FAULTS

LEAD_DEPARTMENT = {
    "functional": "R&D",
    "performance": "R&D",
    "workmanship": "Production",
    "material": "Purchasing",
    "service": "Service",
    "safety": "Quality",
}
# first matching wins: (fault, category) → departments, lead first (None matches anything)
ROUTES: tuple[tuple[str | None, str | None, tuple[str, ...]], ...] = (
    ("cooling_decline", None, ("R&D", "Production")),
    ("noise_rise", None, ("Production", "R&D")),
    ("vibration_rise", None, ("Production", "R&D")),
    ("overcurrent", None, ("Quality", "R&D")),
    (None, "safety", ("Quality", "R&D")),
    (None, "material", ("Purchasing", "Quality")),
)
PRIORITY = {"III": "urgent", "II": "normal", "I": "low"}
_ASSEMBLY = re.compile(
    r"装配|组装|出厂|产线|螺丝|紧固|焊接|充注|assembl\w*|factory|screw\w*|weld\w*|line \d",
    re.IGNORECASE,
)

# (pattern, fault) — searched in the NFKC-normalised, lower-cased text
SAFETY_RULES: tuple[tuple[str, str | None], ...] = (
    (
        r"跳闸|总闸.{0,4}跳|空开.{0,4}跳|trip\w*\W+(?:\w+\W+){0,3}breaker|breaker\W+(?:\w+\W+){0,2}trip",
        "overcurrent",
    ),  # noqa: E501
    (r"漏电|触电|被电|电了一下|电得|麻手|麻麻|击穿", None),
    (r"冒烟|冒.{0,2}烟|烟雾|黑烟|白烟", None),
    (r"焦味|焦糊|糊味|烧焦|烧糊|烧黑|烧毁|烧熔|烧了|熏黑", None),
    (r"起火|着火|失火|火花|火星|打火|明火|火苗|燃爆|自燃", None),
    (r"发烫|烫手|烫得|熔化", None),
    (r"爆炸|炸裂|爆裂|炸了", None),
    (r"掉落|掉下|坠落|砸", None),
    (r"漏氟|冷媒.{0,2}泄|制冷剂.{0,2}泄|氟利昂.{0,2}泄|漏冷媒|漏制冷剂", None),
    (r"electric\w*\s+shock|\bshock\w*|electrocut\w*|\btingl\w*", None),
    (r"\bsmok\w*|\bfumes?\b", None),
    (r"\bburn\w*|\bscorch\w*|\bcharred\b|\bsinge\w*", None),
    (r"\bfire\b|\bflames?\b|\bignit\w*|\bsparks?\b|\bsparking\b", None),
    (r"\bexplo\w*|\bmelt\w*", None),
    (
        r"\bfell\b|\bfalling\b|\bfall(?:s|en)?\s+(?:off|down)|\bdropped\s+(?:onto|on|off|from)"
        r"|came\s+off\s+the\s+wall|\bhit\s+(?:my|his|her|someone|somebody)\b",
        None,
    ),
    (r"refrigerant\s+(?:leak\w*|escap\w*)|leak\w*\s+(?:of\s+)?refrigerant|gas\s+leak\w*", None),
    (r"too\s+hot\s+to\s+touch|\boverheat\w*", None),
)
_SAFETY = tuple((re.compile(p, re.IGNORECASE), f) for p, f in SAFETY_RULES)
_NO_FAULT = "none"


def _prepare(text: str) -> str:
    return normalise(text).lower()


def safety_rule(text: str) -> tuple[str, str | None] | None:
    """The danger the text names (the matched words, and a fault when the words imply one).

    >>> safety_rule("插头发烫")
    ('发烫', None)
    >>> safety_rule("Every time it starts, the breaker trips.")
    ('breaker trip', 'overcurrent')
    >>> safety_rule("制冷效果下降") is None
    True
    """
    prepared = _prepare(text)
    for pattern, fault in _SAFETY:
        m = pattern.search(prepared)
        if m:
            return m.group(0), fault
    return None


def departments(category: str, fault: str | None, text: str = "") -> tuple[str, ...]:
    """Where a classification is routed, lead first.

    >>> departments("performance", "cooling_decline")
    ('R&D', 'Production')
    >>> departments("performance", None, "出厂充注量不足"), departments("service", None)
    (('R&D', 'Production'), ('Service',))
    """
    routed = (LEAD_DEPARTMENT[category],)
    for rule_fault, rule_category, depts in ROUTES:
        if (rule_fault is None or rule_fault == fault) and (
            rule_category is None or rule_category == category
        ):
            routed = depts
            break
    if category == "performance" and "Production" not in routed and _ASSEMBLY.search(text):
        routed = (*routed, "Production")
    return routed


@dataclass(frozen=True, slots=True)
class Classification:
    """The answer for one text (CONTRACTS.md §4.1's ``classification``, and a bit more)."""

    category: str
    fault: str | None
    severity: str
    priority: str
    department: str
    departments: tuple[str, ...]
    confidence: float
    needs_triage: bool
    rule: str | None = None  # the safety words that decided it, when a rule did

    def as_contract(self) -> dict[str, Any]:
        """The ``classification`` object a feedback ticket carries."""
        return {
            "category": self.category,
            "fault": self.fault,
            "severity": self.severity,
            "department": self.department,
            "confidence": round(self.confidence, 4),
            "needs_triage": self.needs_triage,
        }


class FeedbackClassifier:
    """Safety rules, then character n-gram TF-IDF and logistic regressions.

    >>> import pickle
    >>> from cloud.feedback.labelled import load_corpus
    >>> model = FeedbackClassifier(random_state=0).fit(load_corpus("train"))
    >>> c = model.predict("空调使用1个月后，制冷效果明显下降，出风口温度18℃(设定16℃)，"
    ...                   "噪音比初期增大。")
    >>> c.category, c.fault, c.severity, c.departments
    ('performance', 'cooling_decline', 'II', ('R&D', 'Production'))
    >>> s = model.predict("插头发烫")
    >>> s.category, s.severity, s.priority, s.confidence, s.needs_triage
    ('safety', 'III', 'urgent', 1.0, False)
    >>> pickle.loads(pickle.dumps(model)).predict("插头发烫") == s
    True
    """

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = (1, 3),
        C: float = 3.0,
        triage_below: float = 0.5,
        correction_weight: float = 3.0,
        random_state: int = 0,
    ) -> None:
        self.ngram_range = ngram_range
        self.C = C
        self.triage_below = triage_below
        self.correction_weight = correction_weight
        self.random_state = random_state
        self._vectorizer: TfidfVectorizer | None = None
        self._models: dict[str, Any] = {}

    @property
    def params(self) -> dict[str, Any]:
        """The constructor's arguments, to make an unfitted copy."""
        return {
            "ngram_range": self.ngram_range,
            "C": self.C,
            "triage_below": self.triage_below,
            "correction_weight": self.correction_weight,
            "random_state": self.random_state,
        }

    def _svm(self) -> LinearSVC:
        return LinearSVC(C=self.C, random_state=self.random_state)

    def fit(
        self,
        examples: Sequence[LabelledText],
        corrections: Sequence[LabelledText] = (),
    ) -> FeedbackClassifier:
        """Learn from labelled texts; people's ``corrections`` count ``correction_weight`` times."""
        rows = [*examples, *corrections]
        counts = {c: sum(r.category == c for r in rows) for c in {r.category for r in rows}}
        if len(counts) < 2 or min(counts.values()) < 3:
            raise ValueError(f"fit needs at least two categories of 3 texts each, got {counts}")
        weights = np.array([1.0] * len(examples) + [self.correction_weight] * len(corrections))
        self._vectorizer = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=self.ngram_range,
            preprocessor=_prepare,
            sublinear_tf=True,
        )
        x = self._vectorizer.fit_transform([r.text for r in rows])
        labels = {
            "category": [r.category for r in rows],
            "fault": [r.fault or _NO_FAULT for r in rows],
            "severity": [r.severity for r in rows],
        }
        self._models = {
            "category": CalibratedClassifierCV(self._svm(), cv=3).fit(
                x, labels["category"], sample_weight=weights
            )
        }
        for name in ("fault", "severity"):
            if len(set(labels[name])) > 1:
                self._models[name] = self._svm().fit(x, labels[name], sample_weight=weights)
        return self

    def _proba(self, name: str, x: Any) -> tuple[np.ndarray, np.ndarray]:
        model = self._models[name]
        if name == "category":
            return model.classes_, model.predict_proba(x)
        scores = model.decision_function(x)
        if scores.ndim == 1:  # two labels: one score, positive for classes_[1]
            scores = np.column_stack([-scores, scores])
        return model.classes_, scores

    def predict(self, text: str) -> Classification:
        """Classify one text."""
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[Classification]:
        """Classify many texts at once (one matrix product instead of one per text)."""
        if self._vectorizer is None:
            raise RuntimeError("FeedbackClassifier.predict before fit")
        x = self._vectorizer.transform(list(texts))
        classes, proba = self._proba("category", x)
        fault_classes, fault_proba = (
            self._proba("fault", x) if "fault" in self._models else (np.array([_NO_FAULT]), None)
        )
        sev_classes, sev_proba = (
            self._proba("severity", x) if "severity" in self._models else (np.array(["I"]), None)
        )
        out = []
        for i, text in enumerate(texts):
            hit = safety_rule(text)
            if hit is not None:
                words, fault = hit
                out.append(self._classification("safety", fault, "III", 1.0, text, words))
                continue
            j = int(np.argmax(proba[i]))
            category, confidence = str(classes[j]), float(proba[i, j])
            fault = self._fault(category, fault_classes, fault_proba, i)
            severity = "III" if category == "safety" else self._severity(sev_classes, sev_proba, i)
            out.append(self._classification(category, fault, severity, confidence, text))
        return out

    @staticmethod
    def _fault(category: str, classes: np.ndarray, proba: np.ndarray | None, i: int) -> str | None:
        if proba is None:
            return None
        allowed = [k for k, c in enumerate(classes) if c == _NO_FAULT or FAULTS.get(c) == category]
        best = max(allowed, key=lambda k: proba[i, k])
        return None if classes[best] == _NO_FAULT else str(classes[best])

    @staticmethod
    def _severity(classes: np.ndarray, proba: np.ndarray | None, i: int) -> str:
        if proba is None:
            return str(classes[0])
        allowed = [k for k, c in enumerate(classes) if c != "III"] or list(range(len(classes)))
        return str(classes[max(allowed, key=lambda k: proba[i, k])])

    def _classification(
        self,
        category: str,
        fault: str | None,
        severity: str,
        confidence: float,
        text: str,
        rule: str | None = None,
    ) -> Classification:
        routed = departments(category, fault, text)
        return Classification(
            category=category,
            fault=fault,
            severity=severity,
            priority="urgent" if category == "safety" else PRIORITY[severity],
            department=routed[0],
            departments=routed,
            confidence=confidence,
            needs_triage=rule is None and confidence < self.triage_below,
            rule=rule,
        )


__all__ = [
    "CATEGORIES",
    "Classification",
    "FeedbackClassifier",
    "departments",
    "safety_rule",
]
