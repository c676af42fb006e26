"""How alike two complaint texts are: for "the same unit said the same thing on another channel".

Jaccard similarity of the character trigram sets of the normalised texts (NFKC, lower case,
punctuation and spaces dropped). It needs no model, treats Chinese and English alike, and is
insensitive to the punctuation and spacing that differ between a hotline agent's typing and the
customer's own review.
"""

from __future__ import annotations

import re

from cloud.feedback.extract import normalise

_NOISE = re.compile(r"[\W_]+", re.UNICODE)


def shingles(text: str, n: int = 3) -> frozenset[str]:
    """The character ``n``-grams of ``text`` after normalising (the whole text if shorter)."""
    flat = _NOISE.sub("", normalise(text).lower())
    if len(flat) <= n:
        return frozenset({flat}) if flat else frozenset()
    return frozenset(flat[i : i + n] for i in range(len(flat) - n + 1))


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' trigrams, 0..1.

    >>> similarity("空调不制冷，出风口18℃！", "空调不制冷 出风口 18°C") > 0.5
    True
    >>> similarity("空调不制冷", "遥控器坏了")
    0.0
    """
    x, y = shingles(a), shingles(b)
    if not x or not y:
        return 0.0
    return len(x & y) / len(x | y)
