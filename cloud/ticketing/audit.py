"""Auditing and archiving the ticket database: every ticket's history chain verified
(:func:`verify`, ``qloop audit verify``), and tickets with their history and fixes written out as
JSON lines (:func:`export`, ``qloop export``).

Both read and never write: qloop itself deletes nothing — no ticket, history entry or fix is
ever removed, so an export is a copy for the archive, not a move. Both walk the database a page
of tickets at a time (by id, or by opening time and id), so a database of any size streams
through in bounded memory. Entries are read as stored: a time or data that no longer parses
(edited with SQL) makes its entry fail to verify, and is exported as the text it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, Engine, Row, Text, and_, cast, or_, select
from sqlalchemy.exc import DBAPIError

from cloud.ticketing.chain import Entry, Reason, iso_utc, verify_chain
from cloud.ticketing.db import DatabaseUnavailable, make_engine, schema_head, schema_revision
from cloud.ticketing.models import Ticket, TicketFix, TicketHistory
from contract.errors import QloopError

__all__ = [
    "AuditError",
    "AuditReport",
    "BrokenChain",
    "ExportSummary",
    "export",
    "open_database",
    "verify",
]

_PAGE = 500  # tickets read at a time
_UNREADABLE_AT = datetime.min.replace(tzinfo=UTC)  # hashes to nothing ever written


class AuditError(QloopError, RuntimeError):
    """The database cannot be audited as it is (no qloop schema, or an older one)."""


def open_database(url: str) -> Engine:
    """An engine on an existing ticket database at the newest schema, for reading only: a
    missing SQLite file is not created and an older schema is not upgraded."""
    engine = make_engine(url, upgrade=False)
    shown = engine.url.render_as_string(hide_password=True)
    path = engine.url.database
    on_disk = engine.url.get_backend_name() == "sqlite" and path and path != ":memory:"
    if on_disk and not Path(path).is_file():
        raise DatabaseUnavailable(f"no ticket database at {path}")
    try:
        current = schema_revision(engine)
    except DBAPIError as e:
        reason = str(e.orig or e).splitlines()[0]
        raise DatabaseUnavailable(f"cannot open the ticket database {shown}: {reason}") from None
    head = schema_head()
    if current is None:
        raise AuditError(f"{shown} holds no qloop ticket database")
    if current != head:
        raise AuditError(
            f"{shown} is at schema revision {current}, not {head}: start `qloop api` or"
            " `qloop cloud run` on it once to upgrade it"
        )
    return engine


# --- verifying ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokenChain:
    """The first entry of one ticket's history that does not verify, and why."""

    ticket_id: str
    seq: int | None  # None: the ticket has no history at all
    history_id: int | None  # the row's id in ticket_history
    reason: Reason
    detail: str

    def __str__(self) -> str:
        where = "no entries" if self.seq is None else f"entry {self.seq} (id {self.history_id})"
        return f"{self.ticket_id}: {where} {self.reason.value}: {self.detail}"


@dataclass(frozen=True, slots=True)
class AuditReport:
    tickets: int
    entries: int
    broken: tuple[BrokenChain, ...]

    @property
    def ok(self) -> bool:
        return not self.broken

    def summary(self) -> str:
        """One line: how much was read and whether every chain verifies."""
        counts = f"{self.tickets} tickets, {self.entries} entries"
        if self.ok:
            return f"{counts}: all chains verify"
        return f"{counts}: {len(self.broken)} broken chain(s)"


def verify(engine: Engine, *, page: int = _PAGE) -> AuditReport:
    """Walk every ticket's history chain; the first break of each broken one."""
    tickets = entries = 0
    broken: list[BrokenChain] = []
    with engine.connect() as conn:
        for ids in _pages(conn, page):
            chains: dict[str, list[Entry]] = {i: [] for i in ids}
            for row in _history(conn, ids):
                chains[row.ticket_id].append(_entry(row))
            for ticket_id, chain in chains.items():
                found = verify_chain(chain)
                if found is not None:
                    e = found.entry
                    seq, row_id = (None, None) if e is None else (e.seq, e.id)
                    broken.append(BrokenChain(ticket_id, seq, row_id, found.reason, found.detail))
            tickets += len(ids)
            entries += sum(len(chain) for chain in chains.values())
            conn.rollback()  # end the read between pages (SQLite's WAL can checkpoint)
    return AuditReport(tickets, entries, tuple(broken))


def _pages(conn: Connection, page: int) -> Iterator[list[str]]:
    after = ""
    while ids := list(
        conn.scalars(select(Ticket.id).where(Ticket.id > after).order_by(Ticket.id).limit(page))
    ):
        yield ids
        after = ids[-1]


_COLUMNS = [c for c in TicketHistory.__table__.c if c.name not in ("at", "data")]


def _history(conn: Connection, ids: Sequence[str]) -> Sequence[Row[Any]]:
    """The entries of ``ids`` with their time and data as the text stored (parsed here, so an
    entry edited into nonsense still reads)."""
    return conn.execute(
        select(
            *_COLUMNS,
            cast(TicketHistory.at, Text).label("at"),
            cast(TicketHistory.data, Text).label("data"),
        )
        .where(TicketHistory.ticket_id.in_(ids))
        .order_by(TicketHistory.ticket_id, TicketHistory.seq, TicketHistory.id)
    ).all()


def _parse_at(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text or "").replace(tzinfo=UTC)
    except ValueError:
        return None


_NOT_JSON = object()


def _parse_data(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except ValueError:
        return _NOT_JSON


def _entry(row: Row[Any]) -> Entry:
    at, data = _parse_at(row.at), _parse_data(row.data)
    return Entry(
        id=row.id,
        ticket_id=row.ticket_id,
        seq=row.seq,
        at=_UNREADABLE_AT if at is None else at,
        actor=row.actor,
        action=row.action,
        from_status=row.from_status,
        to_status=row.to_status,
        note=row.note,
        data=row.data if data is _NOT_JSON else data,  # the text: it never hashes right
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


# --- exporting ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportSummary:
    tickets: int = 0
    entries: int = 0
    fixes: int = 0


def export(
    engine: Engine, since: date | None, until: date | None, out: TextIO, *, page: int = _PAGE
) -> ExportSummary:
    """Write the tickets opened from ``since`` through ``until`` (UTC days, both included;
    None: no bound) to ``out`` as JSON lines in the order they were opened: each ticket's
    columns, its ``history`` (every entry with its seq and hashes, in order) and its ``fixes``.
    Nothing is deleted: qloop never deletes tickets, so archiving is copying."""
    bounds = []
    if since is not None:
        bounds.append(Ticket.opened_at >= datetime.combine(since, time(), UTC))
    if until is not None:
        bounds.append(Ticket.opened_at < datetime.combine(until + timedelta(days=1), time(), UTC))
    tickets = entries = fixes = 0
    with engine.connect() as conn:
        last: tuple[datetime, str] | None = None
        while True:
            after = [] if last is None else [_after(*last)]
            rows = conn.execute(
                select(Ticket.__table__)
                .where(*bounds, *after)
                .order_by(Ticket.opened_at, Ticket.id)
                .limit(page)
            ).all()
            if not rows:
                break
            ids = [r.id for r in rows]
            history: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
            for h in _history(conn, ids):
                history[h.ticket_id].append(_exported_entry(h))
            fixed: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
            for f in conn.execute(
                select(TicketFix.__table__)
                .where(TicketFix.ticket_id.in_(ids))
                .order_by(TicketFix.id)
            ):
                fixed[f.ticket_id].append(_plain(f._asdict()))
            for r in rows:
                line = {**_plain(r._asdict()), "history": history[r.id], "fixes": fixed[r.id]}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
            tickets += len(rows)
            entries += sum(len(h) for h in history.values())
            fixes += sum(len(f) for f in fixed.values())
            last = (rows[-1].opened_at, rows[-1].id)
            conn.rollback()
    return ExportSummary(tickets, entries, fixes)


def _after(opened_at: datetime, ticket_id: str) -> Any:
    return or_(
        Ticket.opened_at > opened_at, and_(Ticket.opened_at == opened_at, Ticket.id > ticket_id)
    )


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: iso_utc(v) if isinstance(v, datetime) else v for k, v in values.items()}


def _exported_entry(row: Row[Any]) -> dict[str, Any]:
    at, data = _parse_at(row.at), _parse_data(row.data)
    values = {k: v for k, v in row._asdict().items() if k != "ticket_id"}
    return values | {
        "at": row.at if at is None else iso_utc(at),
        "data": row.data if data is _NOT_JSON else data,
    }
