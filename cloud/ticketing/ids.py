"""Ticket ids: ``PF`` + year and month of opening + a serial that restarts each month.

The serial has at least three digits (``PF202611001``) and simply grows wider past 999
(``PF2026111000``). Serials come from one counter row per month, incremented inside the transaction
that opens the ticket, so two workers never hand out the same id (the row lock, or SQLite's single
writer, serialises them) and a rolled-back opening gives its serial back.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.ticketing.models import TicketSerial

PREFIX = "PF"
TICKET_ID_RE = re.compile(r"^PF(?P<year>\d{4})(?P<month>0[1-9]|1[0-2])(?P<serial>\d{3,})$")


def month_key(opened_at: datetime) -> str:
    """``YYYYMM`` of a wall-clock time, in UTC."""
    return opened_at.astimezone(UTC).strftime("%Y%m")


def format_ticket_id(opened_at: datetime, serial: int) -> str:
    """The id of the ``serial``-th ticket opened in the month of ``opened_at``."""
    if serial < 1:
        raise ValueError(f"serial must be >= 1, got {serial}")
    return f"{PREFIX}{month_key(opened_at)}{serial:03d}"


def parse_ticket_id(ticket_id: str) -> tuple[int, int, int]:
    """``(year, month, serial)`` of a ticket id; ValueError if it is not one."""
    match = TICKET_ID_RE.match(ticket_id)
    if match is None:
        raise ValueError(f"not a ticket id: {ticket_id!r} (expected PFYYYYMMnnn)")
    return int(match["year"]), int(match["month"]), int(match["serial"])


def next_ticket_id(session: Session, opened_at: datetime) -> str:
    """Allocate the id of a ticket opened at ``opened_at``, in the caller's transaction."""
    month = month_key(opened_at)
    for _ in range(3):
        bumped = session.execute(
            update(TicketSerial)
            .where(TicketSerial.month == month)
            .values(last=TicketSerial.last + 1)
            .returning(TicketSerial.last)
        ).scalar_one_or_none()
        if bumped is not None:
            return format_ticket_id(opened_at, bumped)
        try:
            with session.begin_nested():  # another worker may create the month's row first
                session.execute(insert(TicketSerial).values(month=month, last=1))
            return format_ticket_id(opened_at, 1)
        except IntegrityError:
            continue
    raise RuntimeError(f"could not allocate a ticket serial for {month}")  # pragma: no cover
