"""Category, fault, severity, priority and departments for a complaint's text.

Two parts, in this order:

1. **Safety rules.** Anything that smells of danger (漏电, 冒烟, 焦味/烧焦, 起火/着火, 火花, 电弧,
   发烫, 爆炸, 燃烧, falling parts, refrigerant leaks, electric shock, a live casing, a missing
   earth, exposed wires, smoke, burning smell, fire, sparks, arcing, a tripping breaker or RCD, a
   blown fuse) is ``safety``, severity III, priority urgent, confidence 1 — always. A rule cannot be
   out-voted by a model that has seen few such texts, and a false alarm costs a person one look
   while a miss can cost a fire. Negations ("无焦味") are deliberately not parsed: a triage person
   downgrades those. Idioms that borrow a danger word ("气炸了", "shocked how loud", "we're
   melting") are blanked first, so they alone raise no alarm.
2. **A text classifier** for the rest: TF-IDF over character n-grams (``char_wb``, 1-3 grams),
   and with ``words=True`` a second block of English words and neighbour pairs
   (:func:`english_words`), each block L2-normalised and the two put side by side, feeding
   linear support-vector machines for the category, the fault and the severity. Character
   n-grams handle Chinese without segmentation, full-width text and typos; but a 3-gram is
   shorter than most English words and sees no word order ("not cooling", "no response"),
   which the word block adds. The category's SVM is wrapped in ``CalibratedClassifierCV``
   (sigmoid, 3 folds), so its probability is calibrated on texts the SVM did not see; that
   probability is the ``confidence`` and below ``triage_below`` a person must confirm
   (``needs_triage``). Fault and severity only need the best allowed label, so their SVMs'
   decision values are used as they are.

   **How the features were chosen:** by cross-validation on the ``train`` split only
   (:func:`cloud.feedback.evaluate.cross_validate`: stratified 5-fold, repeated with seeds 0-9,
   mean category accuracy); the bar for a change was 1.5 points.

   ===============================================  ========  =====  =====  ======  ==========
   variant (C = 3)                                  accuracy  zh     en     triage  right rest
   ===============================================  ========  =====  =====  ======  ==========
   char_wb 1-3 alone (``words=False``)              0.875     0.909  0.805  14.3 %  0.928
   + English words and pairs (``words=True``)       0.890     0.905  0.859  12.7 %  0.937
   + also jieba's Chinese words and pairs           0.898     0.920  0.855  11.8 %  0.941
   ===============================================  ========  =====  =====  ======  ==========

   ("right rest": accuracy on what is not sent to triage.) English words: +1.5 points, better
   on 9 of the 10 shufflings, +5.4 on English texts; severity 0.882 -> 0.895. jieba's Chinese
   words add only 0.8 more, below the bar for a 40 MB dependency whose prefix dictionary costs
   a second and 55 MB in every process; they also changed the answer for short hand-written
   Chinese texts for the worse ("还是不制冷" became functional, "外机运行时嗡嗡响得厉害"
   vibration). Not better (5 shufflings; points against the same features without the change):
   char_wb 1-4 (+0.2 alone, -0.2 with the words), 1-5 (-0.3), 2-4 (-4.2); plain ``char`` 2-4
   grams as a segmentation-free stand-in for Chinese words (-1.8 against jieba's); no
   sublinear tf (-0.8); ``C`` 0.3 (-2.0), 1 or 10 (within 0.2); ``class_weight="balanced"``
   (the categories are balanced: no change); weighting the word block 0.5, 0.7 or 1.5 instead
   of 1 (-1.5 to -0.3); logistic regression for the category (saga, or liblinear one-vs-rest;
   C 10-30): the same accuracy (-0.4 to 0), with flatter probabilities that send 18-39 % to
   triage at the same threshold. Calibrating one SVM fitted on all texts (``ensemble=False``)
   is 0.8 points more accurate and faster, but overconfident: at 0.5 it triages 5 % with 0.92
   right among the rest, and at any equal triage share it is no better than the ensemble.
   ``triage_below`` stays 0.5. On the held-out test split (fitted on ``train``), the English
   words take category accuracy from 0.922 to 0.951 (Chinese 0.940 -> 0.960, English
   0.888 -> 0.935) with 4.5 % triaged instead of 8.8 %; the held-out split was looked at more
   than once while choosing (the current model, the jieba variant, this one), so those figures
   lean optimistic. ``words`` is on by default. The words cost about 1 ms a text
   (predicting one text took 4.3-5.2 ms of CPU against 3.3-4.3 ms here, most of either in the
   calibrated classifier's input checks) and nothing at fitting (about half a second on the corpus).

The fault is chosen only among the faults of the predicted category (CONTRACTS.md §3), so a
classification is never self-contradictory. Departments follow §3's lead department by
category, with the same fault rules as the ticket policy (cooling decline → R&D + Production)
and Production added when a performance text points to assembly or the factory.

The object is small and pure: configuration in the constructor, ``fit`` then ``predict``; no
clock, no I/O; ``random_state`` is passed to the solver; it pickles (a worker can load a model
retrained elsewhere; one pickled before ``words`` existed loads as ``words=False``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
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

# (pattern, fault) — searched in the NFKC-normalised, lower-cased text; the first that matches
# names the danger
SAFETY_RULES: tuple[tuple[str, str | None], ...] = (
    # a residual-current device trips on current leaking to earth: a danger, but no overcurrent
    (
        r"(?:漏保|漏电保护|漏电开关).{0,4}(?:跳|掉)"
        r"|\b(?:rcd|rcbo|gfci|gfi|elcb)s?\s+(?:\w+\s+){0,2}(?:trip|pop)\w*"
        r"|\btrip\w*\s+(?:\w+\s+){0,3}(?:rcd|rcbo|gfci|gfi|elcb)s?\b",
        None,
    ),
    # a breaker or a fuse that trips, pops or blows: the unit draws too much current
    (
        r"跳闸|掉闸|(?:总闸|电闸|空开|空气开关|断路器).{0,4}(?:跳|掉)|保险丝.{0,4}(?:烧|熔|断)"
        r"|trip\w*\W+(?:\w+\W+){0,3}breaker|breaker\W+(?:\w+\W+){0,3}trip"
        r"|\b(?:pop|blow|blew)\w*\s+(?:\w+\s+){0,2}breakers?\b"
        r"|\bbreakers?\s+(?:\w+\s+){0,3}(?:pop\w*|cuts?\s+out|goes\s+off|went\s+off)"
        r"|\bfuses?\s+(?:\w+\s+){0,2}(?:blow\w*|blew|pop\w*)|\b(?:blow\w*|blew)\s+(?:\w+\s+)?fuses?\b",
        "overcurrent",
    ),
    (
        r"漏电|触电|被电|电了一下|电得|电击|麻手|麻麻|手[臂指]?(?:都|还|有点|一)?发?麻(?!烦)|击穿",
        None,
    ),
    # a casing or a pipe that is live, and a missing or failed earth
    (
        r"(?:外壳|机壳|壳体|铁壳|金属|铜管|管子|面板|机身|外机|内机|支架).{0,4}"
        r"带电(?!源|辅|池|子|脑|视|话|线|加热)|电笔.{0,6}亮"
        r"|接地线.{0,4}(?:未接|没接|没有接|断|脱|松)|(?:未|没|没有)接地(?!气)"
        r"|接地电阻.{0,8}(?:超标|超出|超过|不合格)"
        r"|\b(?:casing|chassis|case|housing|frame|cabinet|enclosure|metalwork|grille|pipework)"
        r"\s+(?:(?:is|was|are|were|became|becomes|gets|got|being|still)\s+)?(?:live|energi[sz]ed)\b"
        r"|\b(?:live|energi[sz]ed)\s+(?:metal\s+)?(?:casing|chassis|case|housing|frame|cabinet"
        r"|enclosure|grille)\b"
        r"|\b(?:earth|ground)(?:ing)?\s+(?:wire|lead|cable|connection|conductor)\s+(?:\w+\s+){0,2}"
        r"(?:(?:not|never|\w+n['’]t)\s+(?:\w+\s+)?(?:connected|attached|fitted|installed)"
        r"|disconnected|detached|loose|broken|missing)\b"
        r"|\b(?:no|missing|broken|loose|disconnected)\s+(?:earth|ground)(?:ing)?\s+"
        r"(?:wire|lead|cable|connection|conductor)\b"
        r"|(?:\bnot|n['’]t|\bnever)\s+(?:been\s+)?(?:earthed|grounded)\b(?!\s+in\b)"
        r"|\b(?:earth|ground)\s+(?:fault|leakage)|\b(?:leakage|touch)\s+current\b",
        None,
    ),
    (
        r"(?:电线|线头|铜线|导线).{0,3}裸露|裸露.{0,3}(?:电线|线头|铜线|导线)"
        r"|\bexposed\s+(?:live\s+|bare\s+|copper\s+)?wir\w*|\bbare\s+(?:live\s+)?wires?\b",
        None,
    ),
    (r"冒烟|冒.{0,2}烟|烟雾|黑烟|白烟", None),
    (r"焦味|焦糊|糊味|烧焦|烧糊|烧黑|烧毁|烧熔|烧了|熏黑", None),
    # burning and ignition, as the English rules have burn* and ignit*
    (r"起火|着火|失火|火花|火星|打火|明火|火苗|燃爆|自燃|燃烧|起燃|引燃|点燃", None),
    # an electric arc: the blue flash and crackle before a fire
    (
        r"电弧|拉弧|起弧|\barc(?:ing|ed)\b|\barc\s+(?:flash|fault|mark|burn)\w*"
        r"|\belectric(?:al)?\s+arcs?\b|\bblue\s+(?:flash(?:es)?|sparks?|sparking)\b",
        None,
    ),
    (r"发烫|烫手|烫得|熔化", None),
    (r"爆炸|炸裂|爆裂|炸了", None),
    (r"掉落|掉下|坠落|砸", None),
    (r"漏氟|冷媒.{0,2}泄|制冷剂.{0,2}泄|氟利昂.{0,2}泄|漏冷媒|漏制冷剂", None),
    (
        r"electric\w*\s+shock|\bshock(?:s|ed)?\b|electrocut\w*|\btingl\w*"
        r"|\bshocking\s+(?:me|us|him|her|them|people|someone|anyone)\b"
        r"|\bzapped\s+(?:me|us|him|her|them|my|our)\b|\bgot\s+zapped\b",
        None,
    ),
    (r"\bsmok\w*|\bfumes?\b", None),
    (r"\bburn\w*|\bscorch\w*|\bcharred\b|\bsinge\w*", None),
    (r"\bfire\b|\bflames?\b|\bignit\w*|\bsparks?\b|\bsparking\b", None),
    (r"\bexplo(?:de|ded|des|ding|sion|sions)\b|\bmelt\w*", None),
    (
        r"\bfell\b|\bfalling\b|\bfall(?:s|en)?\s+(?:off|down)|\bdropped\s+(?:onto|on|off|from)"
        r"|came\s+off\s+the\s+wall|\bhit\s+(?:my|his|her|someone|somebody)\b",
        None,
    ),
    (r"refrigerant\s+(?:leak\w*|escap\w*)|leak\w*\s+(?:of\s+)?refrigerant|gas\s+leak\w*", None),
    (r"too\s+hot\s+to\s+touch|\boverheat\w*", None),
)
# Idioms that borrow a danger word to say something else (anger, surprise, a hot room, a
# brand's name); blanked before the rules are searched, so that a danger named elsewhere in
# the same text still counts.
IDIOMS: tuple[str, ...] = (
    r"气炸",
    r"砸.{0,4}(?:招牌|牌子|口碑|饭碗)",
    r"\bshocked\s+(?:how|that|to\s+(?:see|find|hear|learn|read|discover)\b|at\s+(?:how|what"
    r"|the\s+(?:price|cost|bill|noise|quality|service|state|lack|level|amount|response|way)))",
    r"\b(?:what|such|quite)\s+a\s+shock\b|\bcame\s+as\s+a\s+shock\b|\bsticker\s+shock\b",
    r"\b(?:i|we|everyone|everybody|the\s+kids|my\s+family)(?:['’](?:m|re)|\s+(?:am|are|is|was|were))?"
    r"\s+(?:all\s+|literally\s+|just\s+)?(?:melting|burning\s+up)\b",
    r"(?:^|[,.;:!?。])\s*melting\s+(?:here|in\s+here|upstairs|downstairs|in\s+(?:this|the)\s+heat)\b",
)
_SAFETY = tuple((re.compile(p, re.IGNORECASE), f) for p, f in SAFETY_RULES)
_IDIOM = re.compile("|".join(f"(?:{p})" for p in IDIOMS), re.IGNORECASE)
_NO_FAULT = "none"


def _prepare(text: str) -> str:
    return normalise(text).lower()


# English words (after _prepare: lower-cased); no \b, so a word glued to Chinese still counts
_ENGLISH_WORD = re.compile(r"[a-z][a-z0-9'’]*")


def english_words(text: str) -> list[str]:
    """The text's English words, lower-cased, then each pair of neighbours.

    >>> english_words("It's NOT cooling, 制冷E4")
    ["it's", 'not', 'cooling', 'e4', "it's not", 'not cooling', 'cooling e4']
    >>> english_words("制冷效果下降")
    []
    """
    words = _ENGLISH_WORD.findall(_prepare(text))
    return [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]


def safety_rule(text: str) -> tuple[str, str | None] | None:
    """The danger the text names (the matched words, and a fault when the words imply one).

    >>> safety_rule("插头发烫")
    ('发烫', None)
    >>> safety_rule("Every time it starts, the breaker trips.")
    ('breaker trip', 'overcurrent')
    >>> safety_rule("家里空开老是掉"), safety_rule("the breaker keeps popping")
    (('空开老是掉', 'overcurrent'), ('breaker keeps popping', 'overcurrent'))
    >>> safety_rule("制冷效果下降") is None
    True

    An idiom that borrows a danger word is not a danger; the rules alone would take it for one:

    >>> idioms = ["Honestly shocked how loud it is", "We're melting in the bedroom",
    ...           "Melting here, the AC does nothing", "等了三天没人来，气炸了"]
    >>> [_first_rule(_prepare(t)) for t in idioms]
    [('shocked', None), ('melting', None), ('melting', None), ('炸了', None)]
    >>> [safety_rule(t) for t in idioms]
    [None, None, None, None]
    >>> [safety_rule(t)[0] for t in ("It shocked me", "Got a shock off the grille",
    ...                              "Shocked how hot the plug got, it is melting")]
    ['shocked', 'shock', 'melting']
    """
    return _first_rule(_IDIOM.sub(" ", _prepare(text)))


def _first_rule(prepared: str) -> tuple[str, str | None] | None:
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


class SideBySide:
    """Vectorizers whose columns are put side by side, each block weighted as it comes.

    What scikit-learn's ``FeatureUnion`` does, without its dispatch through joblib, which is
    0.3 ms of the 4-5 ms a one-text request takes.
    """

    def __init__(self, **blocks: TfidfVectorizer) -> None:
        self.blocks = blocks

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return sp.hstack([b.fit_transform(texts) for b in self.blocks.values()], format="csr")

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return sp.hstack([b.transform(texts) for b in self.blocks.values()], format="csr")


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
    """Safety rules, then TF-IDF over character n-grams (and words) and linear SVMs.

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
        words: bool = True,
        C: float = 3.0,
        triage_below: float = 0.5,
        correction_weight: float = 3.0,
        random_state: int = 0,
    ) -> None:
        self.ngram_range = ngram_range
        self.words = words
        self.C = C
        self.triage_below = triage_below
        self.correction_weight = correction_weight
        self.random_state = random_state
        self._vectorizer: TfidfVectorizer | SideBySide | None = None
        self._models: dict[str, Any] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a model pickled before word features existed saw character n-grams alone
        self.__dict__.update({"words": False, **state})

    @property
    def params(self) -> dict[str, Any]:
        """The constructor's arguments, to make an unfitted copy."""
        return {
            "ngram_range": self.ngram_range,
            "words": self.words,
            "C": self.C,
            "triage_below": self.triage_below,
            "correction_weight": self.correction_weight,
            "random_state": self.random_state,
        }

    def _svm(self) -> LinearSVC:
        return LinearSVC(C=self.C, random_state=self.random_state)

    def _features(self, texts: Sequence[str]) -> TfidfVectorizer | SideBySide:
        """Character n-grams, and with ``words`` a second block of English words and pairs.

        Each block is L2-normalised on its own and the two are put side by side, so a text's
        words weigh as much as its n-grams. Training texts without a single English word leave
        the words out.
        """
        chars = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=self.ngram_range,
            preprocessor=_prepare,
            sublinear_tf=True,
        )
        if not self.words or not any(map(english_words, texts)):
            return chars
        return SideBySide(
            chars=chars, words=TfidfVectorizer(analyzer=english_words, sublinear_tf=True)
        )

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
        texts = [r.text for r in rows]
        self._vectorizer = self._features(texts)
        x = self._vectorizer.fit_transform(texts)
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
