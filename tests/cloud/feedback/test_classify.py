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


# Written for this test, apart from the corpus: ways people name a danger, worded as they are
# said rather than as the rules are written.
DANGER_PHRASINGS = [
    "插座后面有电弧，滋滋响",
    "开机时接线盒里拉弧",
    "插头一插进去就打火花",
    "遥控一开，电源那里起弧了",
    "摸到机壳带电，手一下子弹开了",
    "师傅说外壳带电，让我们先别用",
    "铜管带电，测了有90伏",
    "外机没有接地，怕出事",
    "接地线脱落了也没人管",
    "洗完澡摸了一下出风口，手都麻了",
    "一开制热家里空开就跳",
    "空气开关掉了三次",
    "漏保一开机就跳",
    "断路器老是跳，只能关掉空调",
    "用了十分钟保险丝烧了",
    "接线端子被引燃，一直在燃烧",
    "滤网靠近电加热的地方起燃了",
    "电线裸露在外面，孩子够得着",
    "I saw arcing inside the control box",
    "blue flash from the outlet when it switched on",
    "The metal casing is live, my tester lights up",
    "there's a live chassis on this unit",
    "the grille became energised after the storm",
    "installer never earthed it",
    "the ground wire was not connected at all",
    "the earth wire isn’t connected",
    "our RCD trips every time it defrosts",
    "GFCI keeps tripping when the compressor starts",
    "it pops the breaker every night",
    "the circuit breaker cuts out after a minute",
    "the breaker in the hallway trips when it starts",
    "the unit keeps blowing fuses",
    "exposed wires behind the panel",
    "It shocked me when I changed the filter",
    "got a shock from the mounting bracket",
    "the case zapped my daughter",
    "Shocked how hot the plug got, it is melting",
]
# Idioms that borrow a danger word, and harmless words a loose rule would take for danger.
NOT_DANGER = [
    "I was shocked how fast it broke",
    "Shocked at the price of the repair",
    "shocked that nobody called back",
    "Shocked to see the bill",
    "what a shock the installation fee was",
    "We're melting in the living room, it blows warm",
    "I’m melting, send someone",
    "Melting here. The AC does nothing.",
    "we are literally melting upstairs",
    "I'm burning up at night, AC useless",
    "看到账单我都气炸了",
    "客服态度差，把我气炸",
    "你们这是砸自己的招牌",
    "广告一点都不接地气",
    "面板带电源指示灯",
    "这台内机带电辅热",
    "手续麻烦，退货要等一周",
    "I explored every setting in the app",
    "blue flashing LED on the display",
    "the louvre swings in an arc",
    "I flipped the breaker off and on and now it cools",
    "popping sound near the breaker box",
    "the compressor is energized but there is no cooling",
]


@pytest.mark.parametrize("text", DANGER_PHRASINGS)
def test_danger_phrasings_are_caught_by_the_rules(text):
    assert safety_rule(text) is not None


@pytest.mark.parametrize("text", NOT_DANGER)
def test_idioms_are_not_danger(text):
    assert safety_rule(text) is None


def test_breaker_and_fuse_wording_is_overcurrent_and_an_rcd_is_not():
    for text in ("空开就掉", "空气开关跳了", "the breaker keeps popping", "fuse blew twice"):
        assert safety_rule(text)[1] == "overcurrent", text
    for text in ("漏保跳了", "the RCD trips"):  # current leaking to earth: no fault named
        assert safety_rule(text)[1] is None, text


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


def test_english_words_are_features_beside_the_character_ngrams(model, train):
    worded = FeedbackClassifier(words=True).fit(train)
    blocks = worded._vectorizer.blocks
    assert set(blocks) == {"chars", "words"}
    assert {"not start", "no response"} <= set(blocks["words"].vocabulary_)
    assert worded.params["words"] is True and model.params["words"] is True  # the default
    assert pickle.loads(pickle.dumps(worded)).predict_many([PROCEDURE_EXAMPLE, "no response"]) == (
        worded.predict_many([PROCEDURE_EXAMPLE, "no response"])
    )
    c = worded.predict(PROCEDURE_EXAMPLE)
    assert (c.category, c.fault, c.severity) == ("performance", "cooling_decline", "II")


def test_texts_without_english_words_leave_the_words_out():
    texts = [LabelledText(f"制冷 {n}", "performance") for n in range(3)]
    texts += [LabelledText(f"售后 {n}", "service") for n in range(3)]
    m = FeedbackClassifier(words=True).fit(texts)
    assert not hasattr(m._vectorizer, "blocks")
    assert m.predict("not cooling").category in ("performance", "service")


def test_a_model_pickled_before_word_features_loads_as_characters_only(train, test_split):
    texts = [e.text for e in test_split[:20]]
    model = FeedbackClassifier(words=False, random_state=0).fit(train)
    state = dict(model.__dict__)
    del state["words"]  # what an older qloop wrote
    loaded = FeedbackClassifier.__new__(FeedbackClassifier)
    loaded.__setstate__(state)
    assert loaded.params == model.params and loaded.words is False
    assert loaded.predict_many(texts) == model.predict_many(texts)


def test_held_out_floors_with_english_words(train, test_split):
    e = evaluate(train, test_split, random_state=0, words=True)
    assert e.accuracy >= 0.8 and e.accuracy_not_triaged >= 0.9 and e.triage_share <= 0.4
    assert e.safety_recall >= 0.95 and e.fault_accuracy >= 0.75


def test_predict_before_fit_is_refused():
    with pytest.raises(RuntimeError):
        FeedbackClassifier().predict("噪音大")


def test_held_out_floors(train, test_split):
    """Floors on the test split, which no setting was chosen on (see BENCHMARKS.md)."""
    e = evaluate(train, test_split, random_state=0)
    assert e.accuracy >= 0.8
    assert e.accuracy_not_triaged >= 0.9
    assert e.triage_share <= 0.4
    # The test split was written apart from the rules and the model: a text worded in a way
    # neither has seen can be missed, so 1.0 is not a fair promise. The rules' own promise is
    # test_danger_phrasings_are_caught_by_the_rules.
    assert e.safety_recall >= 0.95
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
