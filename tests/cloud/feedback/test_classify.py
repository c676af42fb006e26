"""The feedback classifier's contract, its safety rules and its held-out floors."""

from __future__ import annotations

import pickle

import pytest

from cloud.feedback.classify import Classification, FeedbackClassifier, safety_rule
from cloud.feedback.evaluate import evaluate, retrain, score
from cloud.feedback.labelled import CATEGORIES, CHANNELS, LabelledText, load_corpus

PROCEDURE_EXAMPLE = "空调使用1个月后，制冷效果明显下降，出风口温度18℃(设定16℃)，噪音比初期增大。"


@pytest.fixture(scope="module")
def train() -> tuple[LabelledText, ...]:
    return load_corpus("train")


@pytest.fixture(scope="module")
def test_split() -> tuple[LabelledText, ...]:
    return load_corpus("test")


@pytest.fixture(scope="module")
def model(train) -> FeedbackClassifier:
    return FeedbackClassifier(random_state=0).fit(train)


def test_the_corpus_covers_every_category_and_channel(train, test_split):
    corpus = load_corpus()
    assert len(corpus) >= 300
    assert len(test_split) * 4 >= len(corpus)
    for part in (train, test_split):
        assert {e.category for e in part} == set(CATEGORIES)
        assert {e.channel for e in part} == set(CHANNELS)
        assert {e.lang for e in part} == {"zh", "en"}
    assert not {e.text for e in train} & {e.text for e in test_split}
    example = next(e for e in corpus if e.text == PROCEDURE_EXAMPLE)
    assert (example.category, example.fault, example.severity) == (
        "performance",
        "cooling_decline",
        "II",
    )


DANGER = [
    "插头漏电",
    "内机冒烟了",
    "有焦味",
    "电源线烧焦",
    "外机起火",
    "家里着火了",
    "插座发烫",
    "压缩机爆炸",
    "面板掉落",
    "差点砸到人",
    "漏氟",
    "冷媒泄漏",
    "I got an electric shock",
    "smoke from the vents",
    "a burning smell",
    "it caught fire",
    "sparks from the plug",
    "the breaker trips whenever it starts",
]


@pytest.mark.parametrize("text", DANGER)
def test_danger_is_always_safety_iii_urgent(model, train, text):
    """Even a model taught the opposite by corrections cannot out-vote the rules."""
    taught_wrong = FeedbackClassifier(random_state=0).fit(
        train, [LabelledText(text, "service", None, "I")] * 5
    )
    for m in (model, taught_wrong):
        c = m.predict(f"客户反映：{text}，其余正常。")
        assert (c.category, c.severity, c.priority, c.department) == (
            "safety",
            "III",
            "urgent",
            "Quality",
        )
        assert c.rule is not None and not c.needs_triage and c.confidence == 1.0


def test_a_tripping_breaker_is_overcurrent():
    assert safety_rule("一开机就跳闸") == ("跳闸", "overcurrent")


def test_the_procedures_example(model):
    c = model.predict(PROCEDURE_EXAMPLE)
    assert (c.category, c.fault, c.severity, c.priority) == (
        "performance",
        "cooling_decline",
        "II",
        "normal",
    )
    assert c.departments == ("R&D", "Production") and c.department == "R&D"


@pytest.mark.parametrize(
    "text",
    ["", "   ", "好", "asdfgh", "空调" * 5000, "１２３４５", "😡😡😡", PROCEDURE_EXAMPLE],
)
def test_the_contract_holds_on_any_text(model, text):
    c = model.predict(text)
    assert isinstance(c, Classification)
    assert c.category in CATEGORIES
    assert 0.0 <= c.confidence <= 1.0
    assert c.severity in ("I", "II", "III") and c.priority in ("urgent", "normal", "low")
    assert c.department == c.departments[0]
    assert c.needs_triage == (c.rule is None and c.confidence < model.triage_below)
    assert set(c.as_contract()) == {
        "category",
        "fault",
        "severity",
        "department",
        "confidence",
        "needs_triage",
    }


def test_needs_triage_follows_the_threshold(train, test_split):
    texts = [e.text for e in test_split]
    always = FeedbackClassifier(triage_below=1.01).fit(train).predict_many(texts)
    never = FeedbackClassifier(triage_below=0.0).fit(train).predict_many(texts)
    assert all(c.needs_triage == (c.rule is None) for c in always)
    assert not any(c.needs_triage for c in never)


def test_deterministic_for_a_fixed_random_state(train, test_split, model):
    texts = [e.text for e in test_split]
    again = FeedbackClassifier(random_state=0).fit(train)
    assert again.predict_many(texts) == model.predict_many(texts)


def test_survives_pickling(model, test_split):
    texts = [e.text for e in test_split]
    assert pickle.loads(pickle.dumps(model)).predict_many(texts) == model.predict_many(texts)


def test_predict_before_fit_is_refused():
    with pytest.raises(RuntimeError):
        FeedbackClassifier().predict("噪音大")


def test_held_out_floors(train, test_split):
    """Floors on the test split, which no setting was chosen on (see BENCHMARKS.md)."""
    e = evaluate(train, test_split, random_state=0)
    assert e.accuracy >= 0.8
    assert e.accuracy_not_triaged >= 0.9
    assert e.triage_share <= 0.4
    assert e.safety_recall == 1.0
    assert e.fault_accuracy >= 0.75
    assert sum(map(sum, e.confusion)) == len(test_split)


def test_retraining_on_corrections_changes_a_prediction(model, train, test_split):
    text = "室内机面板上的二维码贴纸印歪了"
    before = model.predict(text).category
    corrected = "service" if before != "service" else "material"
    result = retrain(model, train, [LabelledText(text, corrected)] * 2, test_split)
    assert result.model.predict(text).category == corrected
    assert model.predict(text).category == before  # the old model is untouched
    assert result.accuracy_before == score(model, test_split).accuracy
    assert 0.0 <= result.accuracy_after <= 1.0
