"""Reading feedback exports: CSV (UTF-8 and GBK), .xlsx, .eml and mbox, with exact rows."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from openpyxl import Workbook

from cloud.feedback.sources import (
    FeedbackRecord,
    RowError,
    SourceError,
    count_rows,
    parse_mapping,
    read_feedback,
)

CST = timezone(timedelta(hours=8))


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _b64(text: str, encoding: str) -> str:
    return base64.b64encode(text.encode(encoding)).decode("ascii")


def test_gbk_csv_with_chinese_headers_reads_every_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "crm.csv",
        "时间,客户姓名,电话,型号,序列号,购买日期,问题描述,诉求,渠道\n"
        "2024-05-10 14:30,张三,13800138000,KFR-35GW,SN0001,2024-03-15,"
        "空调不制冷，出风口２８℃,维修,热线\n"
        "2024年5月11日 9:05,李四,,KFR-26GW,,,  噪音很大  晚上睡不着 ,我要换货,京东\n",
        "gbk",
    )
    rows = list(read_feedback(path, default_tz=CST))
    assert rows == [
        FeedbackRecord(
            channel="hotline",
            text="空调不制冷，出风口２８℃",  # verbatim: full-width kept
            line=2,
            source="crm.csv",
            received_at=datetime(2024, 5, 10, 14, 30, tzinfo=CST),
            customer_name="张三",
            contact="13800138000",
            model="KFR-35GW",
            serial="SN0001",
            purchase_date=date(2024, 3, 15),
            demand="repair",
        ),
        FeedbackRecord(
            channel="ecommerce",
            text="噪音很大  晚上睡不着",
            line=3,
            source="crm.csv",
            received_at=datetime(2024, 5, 11, 9, 5, tzinfo=CST),
            customer_name="李四",
            model="KFR-26GW",
            demand="replace",
        ),
    ]
    assert rows[0].as_body() == {
        "channel": "hotline",
        "received_at": "2024-05-10T14:30:00+08:00",
        "text": "空调不制冷，出风口２８℃",
        "customer": {"name": "张三", "contact": "13800138000"},
        "model": "KFR-35GW",
        "serial": "SN0001",
        "purchase_date": "2024-03-15",
        "demand": "repair",
    }


def test_semicolon_csv_with_bom_and_the_channel_argument(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "shop.csv",
        "\ufeffDate;Name;Phone;Review;Demand\n"
        "2024-05-10T14:30:00+08:00;Ann Lee;ann@example.com;Fan rattles, loudly;refund\n"
        "45422.5;Bo;;Remote broken;please send a technician\n",
    )
    rows = list(read_feedback(path, channel="电商"))
    assert [(r.line, r.channel, r.text, r.demand) for r in rows] == [
        (2, "ecommerce", "Fan rattles, loudly", "refund"),
        (3, "ecommerce", "Remote broken", "repair"),
    ]
    assert rows[0].received_at == datetime(2024, 5, 10, 14, 30, tzinfo=CST)
    assert rows[1].received_at == datetime(2024, 5, 10, 12, 0, tzinfo=UTC)  # Excel serial, UTC


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_csv_lines_are_where_each_row_starts(tmp_path: Path, newline: str) -> None:
    lines = [
        "text,date,channel",
        '"first line',
        'second line",2024-05-10,hotline',
        "next,2024/05/11,hotline",
        "",
        '"a ""quoted"" word",yesterday,hotline',
        "spoken,2024-05-12,微信",
        ",2024-05-12,hotline",
        "old,1999-12-31,hotline",
        "bad month,2024-13-01,hotline",
    ]
    path = _write(tmp_path / "multi.csv", newline.join(lines) + newline)
    rows = list(read_feedback(path))
    assert [(r.line, r.text) for r in rows if isinstance(r, FeedbackRecord)] == [
        (2, f"first line{newline}second line"),
        (4, "next"),
    ]
    errors = [r for r in rows if isinstance(r, RowError)]
    assert [e.reason for e in errors] == [
        "row 6: received_at (date) 'yesterday' is not a date (use YYYY-MM-DD or ISO 8601)",
        "row 7: channel '微信' is not one of hotline, online, email, ecommerce, store, dealer, "
        "platform, internal, partner, survey",
        "row 8: no text",
        "row 9: received_at (date) '1999-12-31' is not between 2000 and 2100",
        "row 10: received_at (date) '2024-13-01' is not a date (use YYYY-MM-DD or ISO 8601)",
    ]
    assert errors[0].raw == 'a "quoted" word,yesterday,hotline'
    assert count_rows(path) == 7  # data rows, the blank line not counted


def test_long_text_is_a_row_error_with_a_short_excerpt(tmp_path: Path) -> None:
    path = _write(tmp_path / "long.csv", "content,channel\n" + "很" * 20_001 + ",hotline\n")
    (error,) = read_feedback(path)
    assert error == RowError(2, "row 2: text is 20,001 characters (at most 20,000)", "很" * 200)


def test_demand_words_map_and_an_unknown_wish_is_other(tmp_path: Path) -> None:
    demands = ["修", "退款", "更换", "赔偿", "建议", "Refund", "希望尽快处理", ""]
    body = "".join(f"坏了,{d}\n" for d in demands)
    path = _write(tmp_path / "d.csv", "内容,诉求\n" + body)
    got = [r.demand for r in read_feedback(path, channel="hotline")]
    assert got == ["repair", "refund", "replace", "compensation", "suggestion", "refund"] + [
        "other",
        None,
    ]


def test_mapping_names_columns_and_channel_can_be_ignored(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "m.csv", "备注,说明,手机号码,来源\n内部备注,门关不严,13700137000,APP\n"
    )
    mapping = parse_mapping("text=说明，contact=手机号码, channel=")
    (record,) = read_feedback(path, channel="online", mapping=mapping)
    assert (record.text, record.contact, record.channel) == ("门关不严", "13700137000", "online")
    (error,) = read_feedback(path, mapping={"text": "说明"})
    assert error.reason.startswith("row 2: channel (来源) 'APP' is not one of hotline")


def test_mapping_a_column_the_header_lacks_is_a_source_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", "时间,内容,电话\n2024-05-10,坏了,1\n")
    with pytest.raises(SourceError) as caught:
        read_feedback(path, channel="hotline", mapping={"text": "问题描述", "contact": "手机号"})
    assert str(caught.value) == (
        "m.csv: the mapping names columns the header lacks: text=问题描述, contact=手机号 "
        "(header: 时间, 内容, 电话)"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("text", "mapping: 'text' is not field=column"),
        ("=内容", "mapping: '=内容' is not field=column"),
        ("text=a,text=b", "mapping: text is mapped twice"),
        ("words=a", "mapping: unknown field 'words' (fields: channel, text, received_at, "),
    ],
)
def test_parse_mapping_refuses_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(SourceError, match="^" + message.replace("(", r"\(")):
        parse_mapping(spec)


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("a.xls", b"x", {}, "a.xls: cannot read .xls (save it as .xlsx); read .csv, .xlsx, .eml"),
        ("notes.txt", b"hello", {}, "notes.txt: cannot read .txt; read .csv"),
        ("bad.csv", b"text\n\xff\xff\n", {}, "bad.csv is neither UTF-8 nor GB18030 (GBK) text"),
        ("e.csv", b"", {}, "e.csv is empty"),
        ("n.csv", b"date,name\n", {"channel": "hotline"}, "n.csv: no text column; map one"),
        ("c.csv", b"text\nhi\n", {}, "c.csv: no channel column; pass a channel or map"),
        ("c.csv", b"text\nhi\n", {"channel": "fax"}, "channel 'fax' is not one of hotline"),
        ("x.xlsx", b"not a zip", {}, "x.xlsx is not a readable .xlsx workbook"),
        ("m.eml", b"Subject: x\n\nhi\n", {"mapping": {"text": "x"}}, "m.eml: a column mapping"),
    ],
)
def test_unreadable_files_raise_before_the_first_row(
    tmp_path: Path, name: str, content: bytes, kwargs: dict, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SourceError) as caught:
        read_feedback(tmp_path / name, **kwargs)  # not iterated: the call itself refuses
    assert str(caught.value).startswith(message)


def test_a_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="^missing.csv cannot be read: No such file"):
        read_feedback(tmp_path / "missing.csv")


def test_xlsx_rows_are_numbered_as_excel_shows_them(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["反馈时间", "客户", "手机", "型号", "购买日期", "内容", "渠道"])
    sheet.append([datetime(2024, 5, 10, 14, 30), "王五", 13812345678.0, "KFR-35GW"])
    sheet["E2"], sheet["F2"], sheet["G2"] = "2024-03-15", "制热效果差", "天猫"
    sheet.append([])  # row 3: empty, skipped
    sheet.append([None, None, None, None, None, "  ", "热线"])  # row 4
    sheet.append([45422.5, None, None, None, None, "漏水", "store"])  # row 5
    book.create_sheet("二月").append(["内容", "渠道"])
    path = tmp_path / "export.xlsx"
    book.save(path)

    rows = list(read_feedback(path, default_tz=CST))
    assert rows[0] == FeedbackRecord(
        channel="ecommerce",
        text="制热效果差",
        line=2,
        source="export.xlsx",
        received_at=datetime(2024, 5, 10, 14, 30, tzinfo=CST),
        customer_name="王五",
        contact="13812345678",
        model="KFR-35GW",
        purchase_date=date(2024, 3, 15),
    )
    assert rows[1] == RowError(4, "row 4: no text", "\t\t\t\t\t  \t热线")
    assert (rows[2].line, rows[2].received_at) == (5, datetime(2024, 5, 10, 12, tzinfo=CST))
    assert len(rows) == 3
    assert count_rows(path) == 4  # the sheet's size: the empty row counts
    assert list(read_feedback(path, sheet="二月", channel="store")) == []
    with pytest.raises(SourceError, match=r"has no sheet '三月' \(sheets: Sheet, 二月\)"):
        read_feedback(path, sheet="三月")


def _gbk_eml(date_header: str = "Fri, 10 May 2024 14:30:00 +0800") -> bytes:
    # 喆 is in GBK but not in GB2312: mail clients label such text GB2312 anyway.
    body = _b64("喆先生您好：\r\n买了两个月就坏了，要求退货。", "gbk")
    return (
        f"From: =?GBK?B?{_b64('张喆', 'gbk')}?= <zhang@example.cn>\r\n"
        f"To: service@example.com\r\n"
        f"Subject: =?GB2312?B?{_b64('空调不制冷', 'gb2312')}?=\r\n"
        f"Date: {date_header}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="gb2312"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{body}\r\n"
    ).encode("ascii")


def test_eml_with_a_gbk_body_and_encoded_words(tmp_path: Path) -> None:
    path = tmp_path / "complaint.eml"
    path.write_bytes(_gbk_eml())
    assert list(read_feedback(path)) == [
        FeedbackRecord(
            channel="email",
            text="空调不制冷\n喆先生您好：\n买了两个月就坏了，要求退货。",
            line=1,
            source="complaint.eml",
            received_at=datetime(2024, 5, 10, 14, 30, tzinfo=CST),
            customer_name="张喆",
            contact="zhang@example.cn",
        )
    ]
    assert count_rows(path) == 1


def test_eml_with_a_bad_date_is_a_row_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.eml"
    path.write_bytes(_gbk_eml("sometime last week"))
    (error,) = read_feedback(path, channel="platform")
    assert error.reason == (
        "message 1: received_at (Date header) 'sometime last week' is not a date "
        "(use YYYY-MM-DD or ISO 8601)"
    )
    assert error.raw.startswith("空调不制冷\n喆先生")


MBOX = """\
From ann@example.com Fri May 10 06:30:00 2024
From: Ann Lee <ann@example.com>
Subject: Noisy fan
Date: Fri, 10 May 2024 06:30:00 +0000
Content-Type: text/plain; charset=utf-8

The fan rattles at night.

From bo@example.com Sat May 11 10:00:00 2024
From: bo@example.com
Date: Sat, 11 May 2024 10:00:00 -0000
Content-Type: text/html; charset=utf-8

<html><head><style>p {color: red}</style></head>
<body><p>Water &amp; ice</p>
<div>dripping <b>inside</b></div><script>track()</script></body></html>
"""


@pytest.mark.parametrize("name", ["inbox.mbox", "Inbox"])
def test_mbox_messages_are_numbered(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / name, MBOX)
    assert list(read_feedback(path, default_tz=CST)) == [
        FeedbackRecord(
            channel="email",
            text="Noisy fan\nThe fan rattles at night.",
            line=1,
            source=name,
            received_at=datetime(2024, 5, 10, 6, 30, tzinfo=UTC),
            customer_name="Ann Lee",
            contact="ann@example.com",
        ),
        FeedbackRecord(
            channel="email",
            text="Water & ice\ndripping inside",
            line=2,
            source=name,
            received_at=datetime(2024, 5, 11, 10, 0, tzinfo=CST),  # -0000: zone unknown
            contact="bo@example.com",
        ),
    ]
    assert count_rows(path) == 2


def test_rows_stream(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.csv", "text\n" + "坏了\n" * 10_000)
    rows = read_feedback(path, channel="survey")
    assert next(rows).line == 2
    assert sum(1 for _ in rows) == 9_999
    assert count_rows(path) == 10_000
