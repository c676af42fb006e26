"""The hash chain of a ticket's history: what an entry's hash covers, and where a chain breaks.

Every history entry carries its place in its ticket's history (``seq``: 1, 2, ...), the hash of
the entry before it (``prev_hash``; :data:`GENESIS` for the first) and its own hash: SHA-256 of a
canonical JSON serialisation of the ticket id, seq, time (ISO 8601, UTC), actor, action, statuses,
note, data and ``prev_hash``. Changing, deleting or inserting an entry outside qloop therefore
shows at that entry or the one after it:

- **changed**: an entry's content no longer gives its hash;
- **deleted or reordered**: an entry that verifies does not follow the entry before it (a seq
  is missing, or its ``prev_hash`` is not the previous entry's hash);
- **inserted**: an entry with no valid hash, or a second entry with the same seq.

An entry inserted with a hash of the right shape that its content does not give reads as
changed: the chain cannot tell the two apart.

The hash has no key: it catches an edit made with SQL, not someone who knows this scheme and
recomputes the chain from the edit onwards, and dropping a ticket's newest entries leaves a
shorter chain that verifies. An archive written by ``qloop export`` (which carries the hashes)
anchors a chain against both. Pure: no database, no clock.

>>> from datetime import UTC, datetime
>>> at = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
>>> first = Entry(1, "PF202611001", 1, at, "system", "opened", None, "open", "", {}, GENESIS)
>>> first = first.sealed()
>>> second = Entry(2, "PF202611001", 2, at, "ana", "comment", None, None, "ok", {}, first.hash)
>>> second = second.sealed()
>>> verify_chain([first, second]) is None
True
>>> verify_chain([first, second._replace(note="not ok")]).reason
<Reason.CHANGED: 'changed'>
>>> verify_chain([second]).detail
'seq 1 missing before it'
>>> forged = Entry(3, "PF202611001", 3, at, "x", "comment", None, None, "", {}, second.hash, "")
>>> verify_chain([first, second, forged]).reason
<Reason.INSERTED: 'inserted'>
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

GENESIS = "0" * 64  # the prev_hash of a ticket's first entry
_DIGEST = re.compile(r"[0-9a-f]{64}")


class Entry(NamedTuple):
    """One history entry as stored (``id`` is the row's id, covered by no hash)."""

    id: int | None
    ticket_id: str
    seq: int | None
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None
    data: Any
    prev_hash: str | None
    hash: str | None = None

    def content_hash(self) -> str:
        """The hash this entry's content gives."""
        return entry_hash(
            ticket_id=self.ticket_id,
            seq=self.seq,
            at=self.at,
            actor=self.actor,
            action=self.action,
            from_status=self.from_status,
            to_status=self.to_status,
            note=self.note,
            data=self.data,
            prev_hash=self.prev_hash,
        )

    def sealed(self) -> Entry:
        """This entry with its hash."""
        return self._replace(hash=self.content_hash())


def iso_utc(at: datetime) -> str:
    """``at`` in ISO 8601 with a UTC offset; a naive time is taken as UTC (the database's)."""
    aware = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return aware.isoformat()


def entry_hash(
    *,
    ticket_id: str,
    seq: int | None,
    at: datetime,
    actor: str,
    action: str,
    from_status: str | None,
    to_status: str | None,
    note: str | None,
    data: Any,
    prev_hash: str | None,
) -> str:
    """SHA-256 (hex) of the entry's canonical JSON: sorted keys, no ASCII escapes, no spaces."""
    content = {
        "ticket_id": ticket_id,
        "seq": seq,
        "at": iso_utc(at),
        "actor": actor,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "note": note,
        "data": data,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Reason(StrEnum):
    CHANGED = "changed"
    DELETED = "deleted or reordered"
    INSERTED = "inserted"


@dataclass(frozen=True, slots=True)
class Break:
    """Where a chain breaks: the first entry that does not verify (None: the ticket has no
    entries at all), why, and what was found."""

    entry: Entry | None
    reason: Reason
    detail: str


def _order(e: Entry) -> tuple[bool, int, int]:
    return (e.id is None, e.id or 0, e.seq or 0)


def verify_chain(entries: Iterable[Entry]) -> Break | None:
    """The first break in one ticket's chain, or None when it verifies.

    Entries are taken in the order they were written (by row id; by seq where there is none):
    qloop appends a ticket's entries one at a time, so ids rise with seq, and an entry whose
    seq was edited is found where it was written, as changed. Every ticket is opened with an
    entry, so a ticket with none has had its history deleted.
    """
    ordered = sorted(entries, key=_order)
    if not ordered:
        return Break(None, Reason.DELETED, "no entries at all; every ticket starts with one")
    expected_seq, expected_prev = 1, GENESIS
    for e in ordered:
        if e.seq is None or not _DIGEST.fullmatch(e.hash or ""):
            return Break(e, Reason.INSERTED, f"no valid hash ({(e.hash or '')[:16]!r})")
        if e.content_hash() != e.hash:
            return Break(e, Reason.CHANGED, "its content does not give its hash")
        if e.seq < expected_seq:  # a copy of an entry, or an earlier one moved here
            return Break(e, Reason.INSERTED, f"seq {e.seq} again, after seq {expected_seq - 1}")
        if e.seq > expected_seq:
            missing = f"seq {expected_seq}" + (f"-{e.seq - 1}" if e.seq - 1 > expected_seq else "")
            return Break(e, Reason.DELETED, f"{missing} missing before it")
        if e.prev_hash != expected_prev:
            return Break(e, Reason.DELETED, "it does not follow the entry before it")
        expected_seq, expected_prev = e.seq + 1, e.hash
    return None
