"""Ranked search over short Chinese and English texts: BM25 with weighted fields.

**Tokens** (:func:`tokens`). The text is NFKC-normalised (``normalise``: full-width letters and
digits become half-width) and lower-cased. A run of Chinese characters gives its characters and
its overlapping character bigrams (``制冷下降`` → ``制 冷 下 降 制冷 冷下 下降``); runs of other
letters and digits are words, with a short English stop list, one-letter words dropped and a
light English suffix strip (``leaking``, ``leaked``, ``leaks`` → ``leak``; ``replaced`` and
``replace`` → ``replac``).

Characters and bigrams rather than jieba's words: they need no dictionary (jieba's is 350 000
words, about 0.8 s and 55 MB to load in each process that searches) and never depend on how a
dictionary cuts a term of the trade (``压缩机``, ``蒸发器``, ``电控板``). The bigrams reward texts
that say the same phrase; the characters let ``不冷`` meet ``制冷`` and ``漏水`` meet ``滴水``; the
spurious bigrams across word boundaries (``冷下``) are rare elsewhere, so they mostly add to the
score of texts that say the same thing. Measured on the shipped complaint corpus (757 texts,
502 of them Chinese): each text the query over the others, how often the best match has its
fault (its category when it has none), over all texts and over the Chinese ones:

==========================================  ======  =====
tokens for Chinese                          all     zh
==========================================  ======  =====
characters and bigrams (chosen)             0.820   0.835
bigrams alone                               0.785   0.779
jieba's words (dictionary only, no HMM)     0.798   0.793
jieba ``cut_for_search``                    0.806   0.807
characters alone                            0.832   0.853
==========================================  ======  =====

Characters alone match the topic best but lose the phrase: ``机`` is in 压缩机, 室内机 and 机身
alike, so a person searching ``压缩机`` would get a text with 压, 缩 and 机 scattered in it ranked
as high as one that says it. A whole complaint as the query takes about 0.5 ms over those texts.
The English suffix strip makes little difference there (0.792 on the 255 English texts, 0.808
without: four texts); it stays for people's queries, which often use another form than the
records (``replace capacitor`` for "capacitor replaced").

**Ranking** (:class:`Index`). BM25F (Robertson, Zaragoza and Taylor 2004, "Simple BM25 extension
to multiple weighted fields"): a term's frequency in a document is the weighted sum over its
fields, each field's count normalised by that field's length against the field's average
(``b``); the sum is then saturated once (``k1``), so a term said in two fields counts more than in
one, but not twice as much. IDF is the non-negative ``ln(1 + (N - df + 0.5) / (df + 0.5))``.
Query terms count once each: the query is often a whole complaint, whose repeated words are
emphasis rather than topic.

The index is pure and small: documents in, ranked ids out; no I/O, no clock; it pickles.
"""

from __future__ import annotations

import functools
import heapq
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping

from cloud.feedback.extract import normalise

Tokenizer = Callable[[str], list[str]]

_STOP = """a an and are as at be been but by can do does for from had has have he her his i if in
is it its me my no not of on or our she so than that the their them there they this to too us was
we were what when which who will with you your"""
STOP_WORDS = frozenset(_STOP.split())
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(rf"[{_HAN}]+|[^\W_{_HAN}]+")
_IS_HAN = re.compile(rf"[{_HAN}]")


@functools.lru_cache(maxsize=16_384)
def _stem(word: str) -> str:
    """A light English suffix strip (a few of Porter's rules), so inflected forms meet.

    >>> [_stem(w) for w in ("leaking", "leaked", "leaks", "leak")]
    ['leak', 'leak', 'leak', 'leak']
    >>> [_stem(w) for w in ("replace", "replaced", "replacing", "dripping", "drips", "batteries")]
    ['replac', 'replac', 'replac', 'drip', 'drip', 'battery']
    >>> [_stem(w) for w in ("glass", "gas", "filled", "noises", "noise")]
    ['glass', 'gas', 'fill', 'nois', 'nois']
    """
    if not word.isascii() or not word.isalpha():
        return word
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if word[-1] == word[-2] and word[-1] not in "aeiouslz":  # dripp → drip
                word = word[:-1]
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def tokens(text: str) -> list[str]:
    """The search terms of ``text``: Chinese characters and their bigrams, English words
    (stemmed), numbers.

    >>> tokens("空调不制冷")
    ['空', '调', '不', '制', '冷', '空调', '调不', '不制', '制冷']
    >>> tokens("The unit is LEAKING water, error E4!")
    ['unit', 'leak', 'water', 'error', 'e4']
    >>> tokens("ＫＦＲ-35GW 噪音大，风 cooling_decline")
    ['kfr', '35gw', '噪', '音', '大', '噪音', '音大', '风', 'cool', 'declin']
    """
    out: list[str] = []
    for run in _RUN.findall(normalise(text).lower()):
        if _IS_HAN.match(run):
            out += run  # its characters, then its bigrams
            out += (run[i : i + 2] for i in range(len(run) - 1))
        elif len(run) > 1 and run not in STOP_WORDS:
            out.append(_stem(run))
    return out


class Index:
    """BM25F over documents of named fields, each field weighted (see the module).

    ``weights`` names the fields and their weights; ``k1`` saturates a term's frequency, ``b``
    is how much a field's length normalises it.

    >>> index = Index({"problem": 1.0, "cause": 0.5})
    >>> index.add("A", {"problem": "空调不制冷，出风口温度高", "cause": "冷媒泄漏"})
    >>> index.add("B", {"problem": "室内机噪音大，有异响", "cause": "风扇叶片松动"})
    >>> index.add("C", {"problem": "Not cooling, warm air from the vents", "cause": "gas leak"})
    >>> [doc for doc, _ in index.search("制冷效果差")]
    ['A']
    >>> [doc for doc, _ in index.search("refrigerant leaking, no cooling")]
    ['C']
    >>> index.search("遥控器") == []
    True
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        k1: float = 1.2,
        b: float = 0.75,
        tokenize: Tokenizer = tokens,
    ) -> None:
        if not weights or any(w <= 0 for w in weights.values()):
            raise ValueError("weights: name at least one field, each with a weight above 0")
        self.weights = dict(weights)
        self.k1 = k1
        self.b = b
        self.tokenize = tokenize
        self._fields = tuple(self.weights)
        self._ids: list[str] = []
        self._known: set[str] = set()
        self._lengths: list[tuple[int, ...]] = []  # per document, per field
        self._totals = [0] * len(self._fields)
        self._postings: dict[str, dict[int, tuple[int, ...]]] = {}  # term → doc → counts
        self._impacts: dict[str, list[tuple[int, float]]] = {}  # see _impact
        self._shapes: dict[tuple[int, ...], tuple[int, ...]] = {}  # one copy of each (1, 0, 0)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._known

    def add(self, doc_id: str, fields: Mapping[str, str]) -> None:
        """Index a document's fields' texts (a field left out is empty); ids are unique."""
        if doc_id in self._known:
            raise ValueError(f"document {doc_id!r} is already in the index")
        unknown = set(fields) - set(self._fields)
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; the index has {self._fields}")
        doc = len(self._ids)
        counts = [Counter(self.tokenize(fields.get(name) or "")) for name in self._fields]
        for term in set().union(*counts):
            shape = tuple(c[term] for c in counts)
            self._postings.setdefault(term, {})[doc] = self._shapes.setdefault(shape, shape)
        lengths = tuple(c.total() for c in counts)
        self._totals = [total + n for total, n in zip(self._totals, lengths, strict=True)]
        self._ids.append(doc_id)
        self._known.add(doc_id)
        self._lengths.append(lengths)
        self._impacts.clear()  # the average lengths moved

    def idf(self, term: str) -> float:
        """How rare ``term`` is: ``ln(1 + (N - df + 0.5) / (df + 0.5))``, 0 for N = 0."""
        n, df = len(self._ids), len(self._postings.get(term, ()))
        return math.log(1 + (n - df + 0.5) / (df + 0.5)) if n else 0.0

    def _impact(self, term: str) -> list[tuple[int, float]]:
        """``(doc, saturated tf)`` of the documents with ``term``: worked out on the term's first
        search after the last addition (the average field lengths change with each)."""
        impact = self._impacts.get(term)
        if impact is None:
            n, b, k1 = len(self._ids), self.b, self.k1
            norms = [
                (self.weights[name], total / n)
                for name, total in zip(self._fields, self._totals, strict=True)
            ]
            impact = []
            for doc, counts in self._postings.get(term, {}).items():
                tf = sum(
                    w * c / (1 - b + b * length / avg)
                    for (w, avg), c, length in zip(norms, counts, self._lengths[doc], strict=True)
                    if c
                )
                impact.append((doc, tf * (k1 + 1) / (tf + k1)))
            self._impacts[term] = impact
        return impact

    def search(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` best documents for ``query`` with their scores, best first; only documents
        sharing a term with it (ties in the order they were added)."""
        if k < 1 or not self._ids:
            return []
        scores: defaultdict[int, float] = defaultdict(float)
        for term in dict.fromkeys(self.tokenize(query)):
            if term in self._postings:
                idf = self.idf(term)
                for doc, tf in self._impact(term):
                    scores[doc] += idf * tf
        best = heapq.nsmallest(k, scores.items(), key=lambda item: (-item[1], item[0]))
        return [(self._ids[doc], score) for doc, score in best]
