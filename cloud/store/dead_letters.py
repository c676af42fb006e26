"""What the worker refused, for operators and firmware engineers: ``qloop cloud dead-letters``.

Every message that does not follow the contract is kept in the worker's journal with its reason
(``cloud/ingest/ingestor.py``). This report reads it — opened read-only
(:meth:`Journal.open_readonly`), so it can run beside a live worker — and prints the total, the
most frequent reasons, and the latest messages with their topic and the start of their payload
(non-printable bytes escaped).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cloud.store.journal import Journal

PREVIEW_BYTES = 160


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
