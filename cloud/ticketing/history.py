"""What happened to a ticket: the history entries written to the database, and the change
records handed back to the worker for its log.

Every history entry has a :class:`HistoryKind`; the database and the API carry its string value
(``"opened"``, ``"absorbed"``, ...), so the enum only names what was always written. A
:class:`TicketChange` is the worker's view of the same event, with a coarser :class:`ChangeKind`
(a regression, a failed verification and a person reopening all read ``reopened`` there).

Entries are only ever appended, each chained to the one before it (``chain.py``), so an entry
changed, deleted or inserted outside qloop shows (``qloop audit verify``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.ticketing.chain import GENESIS, Entry
from cloud.ticketing.models import Ticket, TicketHistory

SYSTEM = "system"  # the actor of everything the data decides


class HistoryKind(StrEnum):
    """The ``action`` of a history entry."""

    # the system, from the data
    OPENED = "opened"
    UPDATED = "updated"  # units added or back in the fault, or the batch resized
    SEVERITY_RAISED = "severity_raised"
    RECOVERED = "recovered"  # units' fault indicator back at baseline
    ABSORBED = "absorbed"  # a batch ticket took over the batch's device tickets
    MERGED = "merged"  # a device ticket folded into its batch ticket
    VERIFIED = "verified"
    VERIFICATION_FAILED = "verification_failed"
    REGRESSION = "regression"  # the fault came back after a verified fix
    OVERDUE = "overdue"
    JOINED = "joined"  # a ticket from people joined its unit's batch ticket
    COMPLAINT = "complaint"  # a batch ticket counted a complaint about one of its units
    PARENT_VERIFIED = "parent_verified"  # the batch ticket it joined was fixed: callback due
    REPEAT_ALERT = "repeat_alert"  # repeated complaints: the department head is alerted
    # people
    TRANSITION = "transition"
    COMMENT = "comment"
    FOLLOWUP = "followup"
    FIX = "fix"
    MEASURE = "measure"  # a corrective or preventive measure added or moved on
    CAUSE = "cause_analysis"  # the cause analysis recorded
    MEASURE_DUE_SOON = "measure_due_soon"
    MEASURE_OVERDUE = "measure_overdue"
    DUE_SOON = "due_soon"  # the current stage is near its deadline
    REPEAT = "repeat"  # the same problem reported again while the ticket is open
    RECLASSIFIED = "reclassified"  # a person corrected the automatic classification
    CHECKED = "checked"  # the quality engineer judged a fix that has no units' data
    REDISPATCHED = "redispatched"  # the customer's callback scored 3 or lower
    SATISFIED = "satisfied"  # the customer's callback scored 4 or 5: closed


class ChangeKind(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    SEVERITY_RAISED = "severity_raised"
    RECOVERED = "recovered"
    MERGED = "merged"
    VERIFIED = "verified"
    REOPENED = "reopened"  # verification failed, or a regression


@dataclass(frozen=True, slots=True)
class TicketChange:
    """One thing that happened to one ticket, for the worker's log."""

    kind: ChangeKind
    ticket_id: str
    scope: str
    model: str | None
    batch: str | None
    device: str | None
    fault: str | None
    severity: str
    priority: str
    affected_devices: int
    batch_devices: int
    note: str = ""


def change(kind: ChangeKind, t: Ticket, note: str = "") -> TicketChange:
    """The change record of ``t`` as it stands now."""
    return TicketChange(
        kind,
        t.id,
        t.scope,
        t.model,
        t.batch,
        t.device,
        t.fault,
        t.severity,
        t.priority,
        t.affected_devices,
        t.batch_devices,
        note,
    )


def write_history(
    s: Session,
    t: Ticket,
    now: datetime,
    kind: HistoryKind,
    *,
    actor: str = SYSTEM,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append a history entry to ``t`` in the caller's transaction, chained to its last one.

    The ticket's row is locked first (``FOR NO KEY UPDATE`` on PostgreSQL, the lock an update
    of the ticket takes anyway; SQLite's writers hold the whole file), so two transactions
    append one after the other; the unique (ticket, seq) index refuses a second entry at the
    same place should a writer ever get by the lock. Flushes: entries added earlier in the
    same transaction are read back from the database, savepoints and all.
    """
    s.flush()  # ``t`` may be new, and earlier entries of this transaction may be pending
    s.execute(select(Ticket.id).where(Ticket.id == t.id).with_for_update(key_share=True))
    last = s.execute(
        select(TicketHistory.seq, TicketHistory.hash)
        .where(TicketHistory.ticket_id == t.id)
        .order_by(TicketHistory.seq.desc())
        .limit(1)
    ).first()
    entry = Entry(
        id=None,
        ticket_id=t.id,
        seq=1 if last is None else last.seq + 1,
        at=now,
        actor=actor,
        action=kind.value,
        from_status=None if from_status is None else str(from_status),
        to_status=None if to_status is None else str(to_status),
        note=note,
        data=json.loads(json.dumps(data or {})),  # as the JSON column gives it back
        prev_hash=GENESIS if last is None else last.hash,
    ).sealed()
    s.add(TicketHistory(**{k: v for k, v in entry._asdict().items() if k != "id"}))
