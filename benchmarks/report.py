"""Monthly report generation (CONTRACTS.md §4.3) over a month of 10,000 tickets.

The store holds 12 months of tickets (10,000 in the measured month, fewer in the others, so the
12-month trends have something to count), each with a realistic history: opened, acknowledged,
resolved for most, overdue for some, a scored callback for feedback tickets, a re-dispatch for a
few, and measures on a share. Rows are inserted through the ORM in bulk: opening 100,000 tickets
through the service would take an hour and measure the service, not the report.

Same-run baselines, on the same database: one ``SELECT count(*)`` of the month's tickets (the
least any report must do) and reading the first page of the ticket list through the service
(what the API's default ``GET /api/v1/tickets`` does). The report's JSON, HTML and PDF renderings
are timed separately (the PDF embeds the CJK font).
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from benchmarks.common import Result, percentile
from cloud.ticketing.db import make_engine
from cloud.ticketing.models import Measure, Ticket, TicketHistory
from cloud.ticketing.reports import monthly_report
from cloud.ticketing.service import TicketService
from cloud.ticketing.web import font_cache
from cloud.ticketing.web.report import render
from cloud.ticketing.web.report_pdf import find_cjk_font

FAULTS = ("cooling_decline", "noise_rise", "vibration_rise", None, None)
CATEGORY = {
    "cooling_decline": "performance",
    "noise_rise": "workmanship",
    "vibration_rise": "workmanship",
}
DEPARTMENTS = ("R&D", "Production", "Purchasing", "Quality", "Service")
MONTH = datetime(2026, 5, 1, tzinfo=UTC)


def _history(tid: str, k: int, opened: datetime) -> list[dict]:
    rows = [("opened", None, "open", {}), ("transition", "open", "acknowledged", {})]
    if k % 4:
        rows.append(("transition", "in_progress", "resolved", {}))
    if k % 9 == 0:
        rows.append(("overdue", None, None, {"stage": "cause"}))
    if k % 3 == 0:
        rows.append(("followup", None, None, {"customer": "c", "score": 1 + k % 5}))
    if k % 25 == 0:
        rows.append(("redispatched", "callback", "reopened", {"score": 2}))
    return [
        {
            "ticket_id": tid,
            "seq": i + 1,
            "at": opened + timedelta(hours=3 * i + k % 5),
            "actor": "bench",
            "action": a,
            "from_status": f,
            "to_status": t,
            "note": None,
            "data": d,
            "prev_hash": "0" * 64,
            "hash": f"{k:060d}{i:04d}",
        }  # fmt: skip
        for i, (a, f, t, d) in enumerate(rows)
    ]


def fill(db_url: str, per_month: int) -> int:
    """Tickets over 12 months, ``per_month`` in the measured one; the number inserted."""
    engine = make_engine(db_url)
    n = 0
    with Session(engine) as s:
        for back in range(12):
            index = MONTH.year * 12 + MONTH.month - 1 - back
            start = MONTH.replace(year=index // 12, month=index % 12 + 1)
            count = per_month if back == 0 else per_month // 4
            tickets, history, measures = [], [], []
            for k in range(count):
                opened = start + timedelta(minutes=(k * 37) % (27 * 24 * 60))
                fault = FAULTS[k % len(FAULTS)]
                tid = f"PF{start:%Y%m}{k:05d}"
                dept = DEPARTMENTS[k % len(DEPARTMENTS)]
                tickets.append(
                    {
                        "id": tid,
                        "scope": "device",
                        "model": f"KFR-{26 + k % 3 * 9}GW",
                        "batch": f"B{k % 40:04d}",
                        "device": f"ac-{n + k:07d}",
                        "fault": fault,
                        "category": CATEGORY.get(fault or "", "service"),
                        "severity": "II",
                        "priority": "normal",
                        "department": dept,
                        "departments": [dept],
                        "status": ("open", "resolved", "closed")[k % 3],
                        "affected_devices": 1,
                        "batch_devices": 250,
                        "detected_at": opened,
                        "opened_at": opened,
                        "due_at": opened + timedelta(days=3),
                        "updated_at": opened,
                        "evidence": {},
                        "cycle": 0,
                        "cycle_at": opened,
                        "source": "feedback" if k % 2 else "telemetry",
                        "repeats": 0,
                    }  # fmt: skip
                )
                history += _history(tid, k, opened)
                if k % 5 == 0:
                    measures.append(
                        {
                            "ticket_id": tid,
                            "term": "short",
                            "kind": "repair",
                            "action": "x",
                            "owner": "o",
                            "department": dept,
                            "due_at": opened,
                            "status": ("done", "planned")[k % 2],
                            "created_at": opened,
                            "created_by": "bench",
                            "completed_at": None,
                            "record": None,
                        }  # fmt: skip
                    )
            s.execute(insert(Ticket), tickets)
            s.execute(insert(TicketHistory), history)
            if measures:
                s.execute(insert(Measure), measures)
            n += count
        s.commit()
    engine.dispose()
    return n


def _timed(work, repeats: int) -> list[float]:  # noqa: ANN001 - a no-argument callable
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work()
        out.append(time.perf_counter() - t0)
    return out


def bench_report(quick: bool = False) -> Result:
    res = Result("report")
    per_month, repeats = (200, 2) if quick else (10_000, 5)
    month = f"{MONTH:%Y-%m}"
    with tempfile.TemporaryDirectory(prefix="qloop-bench-report-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'tickets.db'}"
        total = fill(db_url, per_month)
        engine = make_engine(db_url)
        svc = TicketService(engine, lambda: datetime.now(UTC))
        end = MONTH.replace(month=MONTH.month + 1)

        def count() -> None:
            with Session(engine) as s:
                s.scalar(
                    select(func.count()).where(
                        Ticket.detected_at >= MONTH, Ticket.detected_at < end
                    )
                )

        def report() -> None:
            with Session(engine) as s:
                monthly_report(s, month)

        with Session(engine) as s:
            built = monthly_report(s, month)
        base = _timed(count, repeats)
        page = _timed(lambda: svc.tickets(limit=50), repeats)
        took = _timed(report, repeats)
        res.add(
            "monthly report over the month's tickets, median",
            percentile(took, 50) * 1000,
            "ms",
            "count(*) of the month's tickets, median",
            percentile(base, 50) * 1000,
        )
        res.add(
            "monthly report, median",
            percentile(took, 50) * 1000,
            "ms",
            "first page of the ticket list (50), median",
            percentile(page, 50) * 1000,
        )
        full = None if quick else find_cjk_font()  # --quick: no 10 s font cut in the suite
        if full is not None:
            font_cache.common_face(full, wait=True)  # cut once per machine, not timed
        for fmt in ("json", "html", "pdf"):
            spent = _timed(lambda fmt=fmt: render(built, fmt), 2 if fmt == "pdf" else repeats)
            res.add(
                f"rendering the built report as {fmt}, median",
                percentile(spent, 50) * 1000,
                "ms",
                "building the report, median",
                percentile(took, 50) * 1000,
            )
            if fmt == "pdf" and full is not None:  # the same PDF drawn with the whole CJK font
                with mock.patch.object(font_cache, "common_face", lambda *_a, **_k: None):
                    whole = _timed(lambda: render(built, "pdf"), 2)
                res.add(
                    "rendering the built report as pdf (font: common characters), median",
                    percentile(spent, 50) * 1000,
                    "ms",
                    "the same with the whole CJK font, median",
                    percentile(whole, 50) * 1000,
                )
        engine.dispose()
    res.params = {"tickets_in_month": per_month, "tickets_in_store": total, "repeats": repeats}
    res.notes.append(
        f"SQLite; {built.tickets:,} tickets in {month}, {total:,} in the store over 12 months,"
        " each with 2-6 history entries and a measure on every fifth"
    )
    return res
