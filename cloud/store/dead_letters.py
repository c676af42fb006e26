"""What the worker refused, for operators and firmware engineers: ``qloop cloud dead-letters``.

Every message that does not follow the contract is kept in the worker's journal with its reason
(``cloud/ingest/ingestor.py``). This report reads it — opened read-only
(:meth:`Journal.open_readonly`), so it can run beside a live worker — and prints the total, the
most frequent reasons, and the latest messages with their topic and the start of their payload
(non-printable bytes escaped).

A reason names the values it refused (a topic, a device id, a size), so reasons are as many as
the messages; the worker's metrics count dead letters by the few kinds of reason instead
(:func:`reason_class`, :class:`CountingJournal`), which a label can carry.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from cloud.store.journal import Journal

PREVIEW_BYTES = 160
# what a reason starts with → its kind; the first that matches wins (the codec's and the clock
# check's wording, contract/protocol.py and cloud/anomaly/clock.py; the worker's own)
_REASON_KINDS = (
    ("topic ", "topic"),
    ("payload of ", "too_large"),
    ("payload is not UTF-8 JSON", "not_json"),
    ("payload must be a JSON object", "not_json"),
    ("unsupported version", "version"),
    ("clock skew", "clock_skew"),
    ("internal error", "internal_error"),
)
REASON_CLASSES = (*dict.fromkeys(kind for _, kind in _REASON_KINDS), "contract")


def reason_class(reason: str) -> str:
    """The kind of a dead letter's reason, one of :data:`REASON_CLASSES`: the topic, the size,
    not JSON, the version, clock skew, an internal error, or (anything else the codec refuses)
    a field that breaks the contract.

    >>> reason_class("payload of 9000000 bytes exceeds 1048576")
    'too_large'
    >>> reason_class("'seq' must be a non-negative integer")
    'contract'
    """
    for prefix, kind in _REASON_KINDS:
        if reason.startswith(prefix):
            return kind
    return "contract"


class CountingJournal(Journal):
    """A journal that also counts, since it was opened, the dead letters it keeps by
    :func:`reason_class` (``dead_letter_counts``; read it on the writer's thread)."""

    def __init__(
        self, path: str | Path, *, durable: bool = False, checkpoint_thread: bool = False
    ) -> None:
        super().__init__(path, durable=durable, checkpoint_thread=checkpoint_thread)
        self.dead_letter_counts: Counter[str] = Counter()

    def dead_letter(self, topic: str, payload: bytes, reason: str, received: float) -> None:
        super().dead_letter(topic, payload, reason, received)
        self.dead_letter_counts[reason_class(reason)] += 1


def report(journal_path: str | Path, *, latest: int = 10, reasons: int = 20) -> str:
    """The dead-letter report of the journal at ``journal_path``; ValueError if there is none."""
    journal = Journal.open_readonly(journal_path)
    try:
        total = journal.count("dead_letters")
        common = journal.dead_letter_reasons(reasons)
        recent = journal.dead_letters(latest)
    finally:
        journal.close()
    lines = [f"{total} dead letter(s) in {journal.path}"]
    if not total:
        return lines[0]
    lines += ["", "most frequent reasons:"]
    lines += [f"  {n:>8}  last {_when(last)}  {reason}" for reason, n, last in common]
    lines += ["", f"latest {len(recent)}:"]
    for received, topic, payload, reason in recent:
        lines.append(f"  {_when(received)}  {topic}")
        lines.append(f"    reason:  {reason}")
        lines.append(f"    payload: {_preview(bytes(payload))}")
    return "\n".join(lines)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _preview(payload: bytes) -> str:
    """The payload's start as text, escapes for what is not printable ASCII.

    >>> _preview(b'{"v": 1}\\x00\\xff')
    '{"v": 1}\\\\x00\\\\xff (10 bytes)'
    """
    head = payload[:PREVIEW_BYTES]
    text = "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in head)
    more = "…" if len(payload) > PREVIEW_BYTES else ""
    return f"{text}{more} ({len(payload)} bytes)"
