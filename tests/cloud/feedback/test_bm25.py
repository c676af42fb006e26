"""BM25 search: the tokens of Chinese, English and mixed text, and the ranking's sanity."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.feedback.bm25 import Index, tokens


# --- tokens --------------------------------------------------------------------------------------
def test_chinese_gives_characters_and_bigrams() -> None:
    assert tokens("漏水") == ["漏", "水", "漏水"]
    assert tokens("冷，热") == ["冷", "热"]  # one-character runs stay themselves
    assert tokens("外机异响") == ["外", "机", "异", "响", "外机", "机异", "异响"]


def test_english_gives_words_lower_cased_stemmed_without_stop_words() -> None:
    assert tokens("The unit was LEAKING and it leaks") == ["unit", "leak", "leak"]
    assert tokens("Compressor replaced; capacitors checked") == [
        "compressor", "replac", "capacitor", "check",
    ]  # fmt: skip
    assert tokens("replace the capacitor") == ["replac", "capacitor"]
    assert tokens("a I x") == []  # stop words and single letters


def test_mixed_and_full_width_text() -> None:
    assert tokens("ＫＦＲ-35GW 报E4故障") == ["kfr", "35gw", "报", "e4", "故", "障", "故障"]
    assert tokens("空调noisy") == ["空", "调", "空调", "noisy"]
    assert tokens("出风口１８℃") == ["出", "风", "口", "出风", "风口", "18"]
    assert tokens("") == [] and tokens("，。!?  ") == []


@given(st.text())
def test_tokens_of_any_text(text: str) -> None:
    assert all(t and t == t.lower() for t in tokens(text))


# --- ranking -------------------------------------------------------------------------------------
DOCS = {
    "gas": "空调不制冷，出风口温度高，冷媒泄漏",
    "noise": "室内机噪音大，晚上有嗡嗡的异响",
    "drip": "The indoor unit drips water on the floor",
    "rude": "The installer was rude and overcharged us",
    "panel": "空调面板有划痕，外壳凹陷",
}


def _index(docs: dict[str, str] = DOCS) -> Index:
    index = Index({"text": 1.0})
    for doc_id, text in docs.items():
        index.add(doc_id, {"text": text})
    return index


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("制冷效果差", "gas"),
        ("噪音很大", "noise"),
        ("water dripping from the unit", "drip"),
        ("overcharged by the installer", "rude"),
        ("面板划伤", "panel"),
    ],
)
def test_the_exact_topic_ranks_first(query: str, expected: str) -> None:
    hits = _index().search(query)
    assert hits[0][0] == expected
    assert all(score > 0 for _, score in hits)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_a_rare_term_outweighs_a_common_one() -> None:
    docs = {f"common{i}": "空调 制冷 问题" for i in range(8)}
    docs |= {"a": "空调 制冷 问题 压缩机", "b": "空调 电容 问题"}
    index = _index(docs)
    assert index.idf("电容") > index.idf("空调") > 0
    # "b" shares only the rare term, the others only common ones: the rare one wins
    assert index.search("电容 制冷", k=1)[0][0] == "b"
    assert index.search("压缩机", k=1)[0][0] == "a"


def test_longer_text_counts_each_term_less() -> None:
    index = _index({"short": "漏水", "long": "漏水 " + "外观 包装 说明书 遥控器 " * 5})
    (first, s1), (_, s2) = index.search("漏水")
    assert first == "short" and s1 > s2


def test_field_weights_rank_a_term_in_the_heavier_field_first() -> None:
    index = Index({"problem": 1.0, "measures": 0.3})
    index.add("said", {"problem": "压缩机异响"})
    index.add("done", {"problem": "外观划痕", "measures": "更换压缩机"})
    assert [d for d, _ in index.search("压缩机")] == ["said", "done"]
    # a term in two fields counts more than in one, saturated: not twice
    both = Index({"problem": 1.0, "measures": 1.0})
    both.add("one", {"problem": "电容"})
    both.add("two", {"problem": "电容", "measures": "电容"})
    both.add("none", {"problem": "外观"})
    scores = dict(both.search("电容"))
    assert scores["one"] < scores["two"] < 2 * scores["one"]


def test_search_edges() -> None:
    assert Index({"t": 1.0}).search("漏水") == []  # empty index
    index = _index()
    assert index.search("遥控器") == [] and index.search("") == []
    assert len(index.search("空调", k=1)) == 1 and index.search("空调", k=0) == []
    assert len(index) == len(DOCS) and "gas" in index and "nope" not in index
    assert math.isclose(index.idf("never"), math.log(1 + (len(DOCS) + 0.5) / 0.5))


def test_bad_documents_and_weights_are_refused() -> None:
    index = _index()
    with pytest.raises(ValueError, match="already"):
        index.add("gas", {"text": "x"})
    with pytest.raises(ValueError, match="unknown fields"):
        index.add("new", {"title": "x"})
    for weights in ({}, {"t": 0.0}):
        with pytest.raises(ValueError, match="weight"):
            Index(weights)


def test_the_index_pickles() -> None:
    index = _index()
    again = pickle.loads(pickle.dumps(index))
    assert again.search("噪音") == index.search("噪音")
