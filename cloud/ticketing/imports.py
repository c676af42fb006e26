"""Bulk import of feedback exports (CSV, .xlsx, .eml, mbox) into tickets.

Each readable row is filed like one ``POST /api/v1/feedback`` (``complaints.py``), in its own
transaction, so a bad row is refused with its line number and the reason and every other row goes
in; nothing is half-imported. The texts are classified a chunk at a time (one matrix product per
chunk instead of one per row), and a row's ticket is not read back (``record_feedback``).
Importing the same file again files nothing new: every row is found by its content digest (one
query per chunk) and counted as ``already imported``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from itertools import islice
from pathlib import Path

from sqlalchemy import select

from cloud.feedback.sources import FeedbackRecord, RowError, read_feedback
from cloud.ticketing.complaints import FeedbackIn, digest, record_feedback
from cloud.ticketing.context import Context
from cloud.ticketing.errors import InvalidFeedback
from cloud.ticketing.models import Feedback

CHUNK = 256


@dataclass
class ImportSummary:
    """What an import did, row by row: counts that add up to ``rows``, and the refusals."""

    source: str
    opened: int = 0  # new tickets
    repeats: int = 0  # merged into an open ticket as a repeat
    already: int = 0  # the same feedback was imported before
    refused: list[RowError] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.opened + self.repeats + self.already + len(self.refused)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "rows": self.rows,
            "opened": self.opened,
            "repeats": self.repeats,
            "already_imported": self.already,
            "refused": [{"line": e.line, "reason": e.reason} for e in self.refused],
        }


def import_feedback(
    ctx: Context,
    path: Path,
    *,
    channel: str | None = None,
    mapping: Mapping[str, str] | None = None,
    default_tz: tzinfo = UTC,
    actor: str | None = None,
    progress: Callable[[ImportSummary], None] | None = None,
) -> ImportSummary:
    """File every row of ``path``; raises :class:`~cloud.feedback.sources.SourceError` before
    the first row when the file cannot be read at all. ``progress`` is called after each
    chunk."""
    path = Path(path)
    rows = read_feedback(path, channel=channel, mapping=mapping, default_tz=default_tz)
    summary = ImportSummary(path.name)
    who = actor or f"import:{path.name}"[:64]
    for chunk in _chunks(rows):
        summary.refused += [r for r in chunk if isinstance(r, RowError)]
        pieces = [(r.line, _feedback(r)) for r in chunk if isinstance(r, FeedbackRecord)]
        seen = _imported_before(ctx, [fb for _, fb in pieces])
        summary.already += len(seen)
        pieces = [(line, fb) for i, (line, fb) in enumerate(pieces) if i not in seen]
        answers = ctx.classifier().predict_many([fb.text for _, fb in pieces]) if pieces else []
        for (line, fb), c in zip(pieces, answers, strict=True):
            try:
                _, outcome = record_feedback(ctx, fb, actor=who, classification=c)
            except InvalidFeedback as e:
                summary.refused.append(RowError(line, f"row {line}: {e}"))
                continue
            if outcome == "opened":
                summary.opened += 1
            elif outcome == "repeat":
                summary.repeats += 1
            else:
                summary.already += 1
        if progress is not None:
            progress(summary)
    summary.refused.sort(key=lambda e: e.line)
    return summary


def _imported_before(ctx: Context, pieces: list[FeedbackIn]) -> set[int]:
    """Which of ``pieces`` (by position) a transaction committed before: one query per chunk
    instead of a write transaction per row, so importing a file again costs little. Rows
    without a time are left to the filing, whose digest takes the time of filing."""
    keys = {digest(fb, fb.received_at): i for i, fb in enumerate(pieces) if fb.received_at}
    if not keys:
        return set()
    with ctx.readers() as s:
        found = s.scalars(select(Feedback.digest).where(Feedback.digest.in_(keys))).all()
    return {keys[k] for k in found}


def _chunks(rows: Iterable[FeedbackRecord | RowError]) -> Iterable[list[FeedbackRecord | RowError]]:
    it = iter(rows)
    while chunk := list(islice(it, CHUNK)):
        yield chunk


def _feedback(r: FeedbackRecord) -> FeedbackIn:
    return FeedbackIn(
        channel=r.channel,
        text=r.text,
        received_at=r.received_at,
        customer_name=r.customer_name,
        contact=r.contact,
        model=r.model,
        serial=r.serial,
        purchase_date=r.purchase_date,
        demand=r.demand,
    )
