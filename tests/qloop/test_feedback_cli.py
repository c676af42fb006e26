"""``qloop feedback import`` and ``qloop feedback retrain`` as an operator runs them: counts that
add up, bad rows reported by line while the rest goes in, a second import that files nothing,
and a retrained model the API can load."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from cloud.feedback.model import load_classifier
from cloud.ticketing.db import make_engine
from cloud.ticketing.models import Feedback, Ticket
from cloud.ticketing.service import TicketService
from qloop.cli import main
from qloop.feedback import run_retrain
from qloop.settings import Settings

TEXTS = (
    "空调不制冷，出风口温度18℃(设定16℃)",
    "外机噪音很大，晚上嗡嗡响",
    "安装师傅态度差，还乱收费",
    "The unit is not cooling at all since last week",
    "面板有划痕，外壳有凹陷",
)


def write_csv(path: Path, rows: int, every_bad: int) -> set[int]:
    """``rows`` complaints (some repeating a contact); the lines of the bad ones."""
    bad = set()
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["渠道", "反馈时间", "客户姓名", "电话", "型号", "问题描述"])
        for i in range(rows):
            line = i + 2
            when, text = f"2024-05-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}", TEXTS[i // 2 % 5]
            if i % every_bad == 3:
                when, bad = "上周三", bad | {line}
            elif i % every_bad == 5:
                text, bad = "  ", bad | {line}
            contact = f"138{i // 2:08d}"  # two rows per customer: the second repeats the first
            text = f"{text}（第{i}条）" if text.strip() else text
            w.writerow(["热线", when, f"客户{i}", contact, "KFR-35GW", text])
    return bad


def counts(db: str) -> tuple[int, int]:
    engine = make_engine(db)
    with engine.connect() as conn:
        tickets = conn.execute(select(func.count()).select_from(Ticket)).scalar()
        feedback = conn.execute(select(func.count()).select_from(Feedback)).scalar()
    engine.dispose()
    return tickets, feedback


def run(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:  # a one-line refusal
        code = e.code if isinstance(e.code, int) else 2
        return code, str(e.code)
    return code, capsys.readouterr().out


@pytest.mark.slow
def test_a_10000_row_export_with_bad_rows(tmp_path, capsys) -> None:
    export, db, report = tmp_path / "crm.csv", f"sqlite:///{tmp_path / 't.db'}", tmp_path / "r.json"
    bad = write_csv(export, 10_000, every_bad=997)
    code, out = run(capsys, "feedback", "import", str(export), "--db", db, "--json", str(report))
    summary = json.loads(report.read_text())
    assert code == 1  # some rows refused; the rest are in
    assert summary["rows"] == 10_000
    assert summary["opened"] + summary["repeats"] + len(summary["refused"]) == 10_000
    assert {e["line"] for e in summary["refused"]} == bad
    assert summary["repeats"] > 4_000  # the same customer, the same problem, again
    assert f"{summary['opened']:,} opened" in out
    tickets, feedback = counts(db)
    assert (tickets, feedback) == (summary["opened"], 10_000 - len(bad))
    code, out = run(capsys, "feedback", "import", str(export), "--db", db, "--json", str(report))
    again = json.loads(report.read_text())
    assert (again["opened"], again["repeats"], again["already_imported"]) == (
        0,
        0,
        10_000 - len(bad),
    )
    assert counts(db) == (tickets, feedback)


def test_an_xlsx_export_with_bad_rows(tmp_path, capsys) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["Channel", "Date", "Customer", "Phone", "Complaint", "Demand"])
    sheet.append(["京东", datetime(2024, 5, 2, 9, 0), "Wang", 13812345678, TEXTS[0], "维修"])
    sheet.append(["pigeon", datetime(2024, 5, 2, 9, 5), "Li", 13900000000, TEXTS[1], None])
    sheet.append(["门店", "not a date", "Zhao", 13700000000, TEXTS[2], None])
    sheet.append(["online", "2024-05-03 10:00", "Sun", 13600000000, None, None])
    sheet.append(["survey", "2024/05/04", "Qian", 13500000000, TEXTS[3], "refund"])
    export = tmp_path / "shop.xlsx"
    book.save(export)
    db = f"sqlite:///{tmp_path / 't.db'}"
    code, out = run(capsys, "feedback", "import", str(export), "--db", db, "--utc-offset", "+08:00")
    assert code == 1
    assert "5 rows: 2 opened, 0 merged as repeats, 0 already imported, 3 refused" in out
    assert "row 3:" in out and "row 4:" in out and "row 5:" in out
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(select(Feedback.channel, Feedback.received_at, Feedback.demand)).all()
    engine.dispose()
    assert sorted(r.channel for r in rows) == ["ecommerce", "survey"]
    first = next(r for r in rows if r.channel == "ecommerce")
    assert first.received_at == datetime(2024, 5, 2, 1, 0, tzinfo=UTC)  # 09:00 at +08:00
    assert first.demand == "repair"


def test_a_file_that_cannot_be_read_is_one_line(tmp_path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    code, message = run(capsys, "feedback", "import", str(tmp_path / "none.pdf"), "--db", db)
    assert code != 0 and "\n" not in message and "none.pdf" in message


def test_retrain_learns_the_corrections_and_the_api_can_load_it(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    engine = make_engine(db)
    svc = TicketService(engine, lambda: datetime(2026, 12, 1, tzinfo=UTC))
    from cloud.ticketing.complaints import FeedbackIn

    odd = ["客户说空调吹出来的风有股怪味", "出风有霉味", "一开机就一股臭味", "风里有异味"]
    for i, text in enumerate(odd):
        t = svc.file_feedback(FeedbackIn("hotline", text, contact=str(i))).ticket
        svc.correct_classification(
            t.id, actor="lead", category="material", fault=None, severity="II"
        )
    engine.dispose()
    model_file = tmp_path / "model.pkl"
    out = io.StringIO()
    settings = Settings(db=db, feedback_model=str(model_file))
    assert run_retrain(settings, out) == 0
    text = out.getvalue()
    assert "corrections: 4" in text and "before" in text and "after" in text
    model = load_classifier(model_file)
    assert model.predict("风里有异味").category == "material"


def test_the_monthly_report_for_scripts(tmp_path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    engine = make_engine(db)
    svc = TicketService(engine, lambda: datetime(2026, 11, 20, tzinfo=UTC))
    from cloud.ticketing.complaints import FeedbackIn

    svc.file_feedback(FeedbackIn("hotline", "空调不制冷，出风口不凉", contact="1"))
    engine.dispose()
    code, out = run(capsys, "report", "monthly", "--db", db)
    assert code == 0 and json.loads(out)["month"] == "2026-11" and json.loads(out)["tickets"] == 1
    pdf = tmp_path / "r.pdf"
    code, _ = run(capsys, "report", "monthly", "--db", db, "--month", "2026-11",
                  "--format", "pdf", "--output", str(pdf))  # fmt: skip
    assert code == 0 and pdf.read_bytes().startswith(b"%PDF")
    page = tmp_path / "r.html"
    for lang, heading in (("zh-CN", "问题类型占比"), ("en", "Problem types")):
        code, _ = run(capsys, "report", "monthly", "--db", db, "--format", "html", "--lang", lang,
                      "--output", str(page))  # fmt: skip
        html = page.read_text(encoding="utf-8")
        assert code == 0 and f'<html lang="{lang}">' in html and heading in html, lang
    code, message = run(capsys, "report", "monthly", "--db", db, "--month", "2026-13")
    assert code != 0 and "--month" in message and "\n" not in message
