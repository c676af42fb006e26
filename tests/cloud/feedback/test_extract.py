"""Extraction of key fields from complaint texts (cloud/feedback/extract.py)."""

from __future__ import annotations

from datetime import date

import pytest

from cloud.feedback.extract import Temperature, extract, extract_demand, extract_error_codes

PROCEDURE_EXAMPLE = "空调使用1个月后，制冷效果明显下降，出风口温度18℃(设定16℃)，噪音比初期增大。"


def test_the_procedures_example():
    e = extract(PROCEDURE_EXAMPLE)
    assert e.temperatures == (Temperature(18.0, "supply"), Temperature(16.0, "setpoint"))
    assert (e.model, e.serial, e.dates, e.error_codes, e.demand) == (None, None, (), (), None)


def test_full_width_text_reads_like_half_width():
    e = extract(
        "型号ＫＦＲ－３５ＧＷ／ＢＰ３，ＳＮ－０００１２３，出风口温度１８℃（设定１６℃），故障码Ｅ４，要求换货"
    )
    assert e.model == "KFR-35GW/BP3"
    assert e.serial == "SN-000123"
    assert (e.supply_c, e.setpoint_c) == (18.0, 16.0)
    assert e.error_codes == ("E4",)
    assert e.demand == "replace"


def test_english_email():
    e = extract(
        "Dear support, our KFR-26GW/BP3 (serial no. SN2405170042) bought on 15 March 2024 "
        "blows supply air at 18 °C with the setpoint at 16. The display shows error code F1. "
        "We would like a refund."
    )
    assert e.model == "KFR-26GW/BP3"
    assert e.serial == "SN2405170042"
    assert e.dates == (date(2024, 3, 15),)
    assert (e.supply_c, e.setpoint_c) == (18.0, 16.0)
    assert e.error_codes == ("F1",)
    assert e.demand == "refund"


def test_hotline_transcript_with_dates_and_degrees():
    e = extract(
        "客户来电反映：2024年6月3日安装的KFR-35GW，设定16度，出风口实测19度左右，室温28度，"
        "客户要求上门维修。"
    )
    assert e.model == "KFR-35GW"
    assert e.dates == (date(2024, 6, 3),)
    assert [(t.value_c, t.kind) for t in e.temperatures] == [
        (16.0, "setpoint"),
        (19.0, "supply"),
        (28.0, "room"),
    ]
    assert e.demand == "repair"


def test_no_match_gives_empty_fields():
    e = extract("东西还行，就是售后太差。 Nothing to see here, 3 units, 45 dB, 2.5 kW.")
    assert (e.model, e.serial, e.dates, e.temperatures, e.error_codes, e.demand) == (
        None,
        None,
        (),
        (),
        (),
        None,
    )


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("故障码E4", ("E4",)),
        ("内机显示F1，外机不转", ("F1",)),
        ("一直报E1，后来又闪P4", ("E1", "P4")),
        ("KFR-26GW/BP3 的 BP3 不是故障码", ()),
        ("error code h6", ("H6",)),
    ],
)
def test_error_codes(text, codes):
    assert extract_error_codes(text) == codes


@pytest.mark.parametrize(
    ("text", "demand"),
    [
        ("要求上门维修", "repair"),
        ("修了三次没好，要求换货", "replace"),
        ("我要退款", "refund"),
        ("要求赔偿损失", "compensation"),
        ("建议增加静音模式", "suggestion"),
        ("Please replace the unit", "replace"),
        ("I demand compensation for the damaged floor", "compensation"),
        ("制冷效果下降", None),
    ],
)
def test_demand(text, demand):
    assert extract_demand(text) == demand


def test_impossible_dates_and_absurd_temperatures_are_skipped():
    e = extract("2024-02-30 报修，温度显示 200 度")
    assert e.dates == ()
    assert e.temperatures == ()
