"""``qloop feedback import`` and ``qloop feedback retrain``: what an operator runs by hand or
from cron.

``import`` files every row of an export through the ticket service (``cloud/ticketing/
imports.py``) with a progress bar on stderr and a summary on stdout: tickets opened, merged as
repeats, already imported, and each refused row with its line and reason. Exit status 0 when
every row went in, 1 when some rows were refused (the others are in), and a one-line error for a
file that cannot be read at all.

``retrain`` refits the classifier with the corrections people made (``feedback_corrections``;
the latest per ticket) and writes it where ``--feedback-model`` says, for the API to load. It
prints the accuracy before and after on the corpus's held-out part (both fitted on the train
part, so the comparison is fair) and on the corrected texts themselves; the model written is
fitted on the whole corpus plus the corrections.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.feedback.classify import FeedbackClassifier
from cloud.feedback.evaluate import retrain, score
from cloud.feedback.labelled import LabelledText, load_corpus
from cloud.feedback.model import load_classifier, save_classifier
from cloud.feedback.sources import count_rows, parse_mapping
from cloud.ticketing.db import make_engine
from cloud.ticketing.imports import ImportSummary
from cloud.ticketing.models import FeedbackCorrection
from cloud.ticketing.service import TicketService
from contract.clock import utcnow
from qloop.settings import Settings, SettingsError

_SHOWN_REFUSALS = 20


class ProgressBar:
    """Rows done of the total on one redrawn line (a terminal), or a line per tenth (a log)."""

    def __init__(self, total: int | None, out: TextIO | None = None, width: int = 30) -> None:
        self.total, self.out, self.width = total, out or sys.stderr, width
        self.tty = self.out.isatty()
        self._tenth = -1

    def __call__(self, summary: ImportSummary) -> None:
        done, total = summary.rows, self.total
        if not total:
            if self.tty:
                self.out.write(f"\r{done:,} rows")
            return
        share = min(done / total, 1.0)
        if self.tty:
            bar = "#" * round(share * self.width)
            self.out.write(f"\r[{bar:<{self.width}}] {done:,}/{total:,} rows")
        elif int(share * 10) > self._tenth:
            self._tenth = int(share * 10)
            self.out.write(f"{done:,}/{total:,} rows\n")
        self.out.flush()

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")


def _offset(text: str):  # noqa: ANN202 - a tzinfo
    return datetime.strptime(text.replace(":", ""), "%z").tzinfo


def run_import(path: Path, s: Settings, out: TextIO | None = None) -> int:
    """Import ``path`` into the ticket database of ``s.db``; the exit status."""
    out = out or sys.stdout
    mapping = parse_mapping(s.mapping) if s.mapping else None
    engine = make_engine(s.db)
    classifier = load_classifier(Path(s.feedback_model) if s.feedback_model else None)
    service = TicketService(engine, utcnow, s.ticket_policy(), classifier=lambda: classifier)
    bar = ProgressBar(count_rows(path))
    try:
        summary = service.import_feedback(
            path,
            channel=s.channel,
            mapping=mapping,
            default_tz=_offset(s.utc_offset),
            progress=bar,
        )
    finally:
        bar.close()
        engine.dispose()
    print(
        f"{summary.source}: {summary.rows:,} rows: {summary.opened:,} opened, "
        f"{summary.repeats:,} merged as repeats, {summary.already:,} already imported, "
        f"{len(summary.refused):,} refused",
        file=out,
    )
    for error in summary.refused[:_SHOWN_REFUSALS]:
        print(f"  {error.reason}", file=out)
    if len(summary.refused) > _SHOWN_REFUSALS:
        rest = len(summary.refused) - _SHOWN_REFUSALS
        print(f"  … and {rest:,} more (--json FILE lists every one)", file=out)
    if s.json_path:
        Path(s.json_path).write_text(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2))
    return 1 if summary.refused else 0


def corrections(session: Session) -> list[LabelledText]:
    """People's corrections as training texts, the latest per ticket."""
    latest: dict[str, FeedbackCorrection] = {}
    for row in session.scalars(select(FeedbackCorrection).order_by(FeedbackCorrection.id)):
        latest[row.ticket_id] = row
    return [
        LabelledText(r.text, r.category, r.fault, r.severity, split="correction")
        for r in latest.values()
    ]


def run_retrain(s: Settings, out: TextIO | None = None) -> int:
    """Refit with the corrections in ``s.db`` and write ``s.feedback_model``; the exit status."""
    out = out or sys.stdout
    if not s.feedback_model:
        raise SettingsError("--feedback-model (QLOOP_FEEDBACK_MODEL): where to write the model")
    engine = make_engine(s.db)
    try:
        with Session(engine) as session:
            fixed = corrections(session)
    finally:
        engine.dispose()
    if not fixed:
        print("no corrections in the ticket database yet: nothing to retrain", file=out)
        return 0
    train, held_out = load_corpus("train"), load_corpus("test")
    before = FeedbackClassifier().fit(train)
    result = retrain(before, train, fixed, held_out)
    agree_before = score(before, fixed).accuracy
    agree_after = score(result.model, fixed).accuracy
    print(f"corrections: {len(fixed)} (the latest per ticket)", file=out)
    print(
        f"held-out corpus ({len(held_out)} texts, never fitted on): category accuracy "
        f"{result.accuracy_before:.3f} before, {result.accuracy_after:.3f} after",
        file=out,
    )
    print(
        f"the corrected texts: {agree_before:.3f} classified as corrected before, "
        f"{agree_after:.3f} after (texts it was fitted on: not a held-out figure)",
        file=out,
    )
    model = FeedbackClassifier(**before.params).fit(load_corpus(), fixed)
    save_classifier(model, Path(s.feedback_model))
    print(
        f"written {s.feedback_model}: fitted on {len(load_corpus())} corpus texts and "
        f"{len(fixed)} corrections; start the API with --feedback-model {s.feedback_model}",
        file=out,
    )
    return 0
