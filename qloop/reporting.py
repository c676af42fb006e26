"""``qloop report monthly``: the month's quality report for scripts and cron.

Reads the ticket database directly (read-only: a missing SQLite file or an older schema is
refused in one line, as ``qloop audit`` does), builds the report of CONTRACTS.md §4.3 and writes
it as JSON, HTML (one self-contained page) or PDF — the same sections as the API's page and PDF,
in Chinese unless ``--lang en`` — to ``--output`` or standard output. Without ``--month``: the
latest month with tickets.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from cloud.ticketing.audit import open_database
from cloud.ticketing.reports import InvalidMonth, latest_month, monthly_report
from cloud.ticketing.web.report import render
from qloop.settings import Settings, SettingsError


def run_report(s: Settings, out: BinaryIO | None = None) -> int:
    """Write the month's report as ``s.report_format``; the exit status."""
    engine = open_database(s.db)
    try:
        with Session(engine) as session:
            month = s.month or latest_month(session)
            if month is None:
                raise SettingsError("the ticket database holds no tickets: pass --month YYYY-MM")
            try:
                report = monthly_report(session, str(month))
            except InvalidMonth as e:
                raise SettingsError(f"--month: {e}") from None
    finally:
        engine.dispose()
    data = render(report, s.report_format, s.report_lang)
    if s.output:
        path = Path(s.output)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)
    else:
        (out or sys.stdout.buffer).write(data)
    return 0
