"""Tables of the ticketing database (SQLAlchemy 2 typed ORM).

- ``devices``: a mirror of the device registry, filled from birth messages; ``first_seen_ts`` and
  ``last_seen_ts`` are event times and give each unit's days in the field (exposure).
- ``findings``: every detector finding as received (append-only log), each at most once: a
  finding's identity is (device, fault, ts, active) (``intake.py``), a unique index.
- ``device_faults``: the current state of each (device, fault): is the fault active now, since when,
  latest evidence. Batch statistics are a GROUP BY over this table, not a scan of the log.
- ``tickets`` and ``ticket_history``: tickets as in CONTRACTS.md §4 and everything that happened to
  them, each ticket's history a hash chain (``chain.py``). Partial unique indexes make "at most
  one ticket that is not closed" per (model, batch, fault) for batch scope and per (device,
  fault) for device scope a database rule, so concurrent workers cannot open two.
- ``ticket_fixes``: the fix records (what was done, on which units, effective from which event
  time) and their verification outcome; a partial unique index allows one pending fix per ticket.
- ``sla_escalations``: one row per (ticket, cycle, stage) that went overdue, doubling as the
  outbox of the escalation webhook (delivery attempts, next attempt, delivered at).
- ``api_tokens``: bearer tokens (stored as SHA-256 digests) with a unique name, a role and an
  optional expiry; ``bootstrap`` marks the administrator token from the environment.
- ``page_sessions``: the pages' sign-in sessions (random ids, stored as digests) and the token
  each was opened with (``tokens.py``).
- ``ticket_serials``: the per-month serial counter behind ticket ids.
- ``measures``: a ticket's corrective (short-term) and preventive (long-term) measures, each with
  an owner, a department, a due date, a status and a completion record.
- ``target_alerts``: a department's figure below its quality target two ISO weeks running, one
  row per (department, figure, week), doubling as the outbox of its alert (``board.py``).
- ``feedback``: every piece of feedback from people as it was given (the customer's words
  verbatim), the ticket it opened or repeated, and its content digest (a second import of the
  same export finds it); ``feedback_corrections``: people's corrections of the automatic
  classification, which retrain the classifier.

Tickets from people (``source = "feedback"``) have scope ``device`` when the unit is known and
``customer`` otherwise; their model, batch and fault may be unknown (NULL), and a ``parent``
names the batch ticket they joined.

All wall-clock columns are timezone-aware UTC in Python and naive UTC in the database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass timezone-aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


ROW_ID_MAX = 2**31 - 1  # the largest integer key a row can have (PostgreSQL INTEGER)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Device(Base):
    __tablename__ = "devices"

    device: Mapped[str] = mapped_column(String(64), primary_key=True)
    product: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64), index=True)
    batch: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(128))
    firmware: Mapped[str] = mapped_column(String(64))
    first_seen_ts: Mapped[float] = mapped_column(Float)
    last_seen_ts: Mapped[float] = mapped_column(Float)
    # seqs between the unit's first and newest that never came in an accepted message, as the
    # worker serving its partition last counted them (``Ingestor.lost_seqs``)
    lost_seqs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        Index("ix_devices_model_batch", "model", "batch"),
        Index("ix_devices_serial", "serial"),  # a complaint names its unit by serial
    )


class DeviceChange(Base):
    """A birth that announced another model, batch or product than the unit had
    (``identity.py``): kept for a person to accept or reject, not applied in place, since a
    unit's batch decides which batch ticket its faults count for."""

    __tablename__ = "device_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device: Mapped[str] = mapped_column(String(64))
    announced_at: Mapped[datetime]  # wall clock, when the birth was taken in
    birth_ts: Mapped[float] = mapped_column(Float)  # the unit's own time in its birth
    previous: Mapped[dict[str, Any]] = mapped_column(default=dict)  # product, model, batch
    announced: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # accepted | rejected
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_device_changes_status", "status", "device"),)


class FindingRecord(Base):
    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(64))  # None: device not registered yet
    batch: Mapped[str | None] = mapped_column(String(64))
    fault: Mapped[str] = mapped_column(String(64))
    ts: Mapped[float] = mapped_column(Float)
    onset_ts: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool]
    received_at: Mapped[datetime]

    __table_args__ = (
        # the finding's identity (intake.py): a replay after a worker's crash is not stored twice
        Index("uq_findings_identity", "device", "fault", "ts", "active", unique=True),
        Index("ix_findings_model_batch_fault", "model", "batch", "fault"),
    )


class DeviceFault(Base):
    """Latest known state of one fault on one device (newest finding by event time wins)."""

    __tablename__ = "device_faults"

    device: Mapped[str] = mapped_column(String(64), primary_key=True)
    fault: Mapped[str] = mapped_column(String(64), primary_key=True)
    active: Mapped[bool]
    first_ts: Mapped[float] = mapped_column(Float)  # ts of the first finding of the current episode
    onset_ts: Mapped[float] = mapped_column(Float)
    last_ts: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_device_faults_fault_active", "fault", "active"),)


_NOT_CLOSED = "status != 'closed'"


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(64))
    batch: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(64))
    fault: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(4))
    priority: Mapped[str] = mapped_column(String(16))
    department: Mapped[str] = mapped_column(String(64))
    departments: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), index=True)
    affected_devices: Mapped[int] = mapped_column(Integer)
    batch_devices: Mapped[int] = mapped_column(Integer)
    detected_at: Mapped[datetime]
    opened_at: Mapped[datetime]
    due_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cycle: Mapped[int] = mapped_column(Integer, default=0)  # +1 on every reopening
    cycle_at: Mapped[datetime]  # opened or last reopened: the SLA clocks run from here
    source: Mapped[str] = mapped_column(String(16), server_default="telemetry")
    channel: Mapped[str | None] = mapped_column(String(16))  # of the first feedback
    classification: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    parent: Mapped[str | None] = mapped_column(String(32), index=True)
    repeats: Mapped[int] = mapped_column(Integer, server_default="0")
    contact: Mapped[str | None] = mapped_column(String(128), index=True)  # normalised
    cause_analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # 5-Why, fishbone

    history: Mapped[list[TicketHistory]] = relationship(
        back_populates="ticket", order_by="TicketHistory.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index(
            "uq_tickets_open_batch",
            "model",
            "batch",
            "fault",
            unique=True,
            sqlite_where=text(f"scope = 'batch' AND {_NOT_CLOSED}"),
            postgresql_where=text(f"scope = 'batch' AND {_NOT_CLOSED}"),
        ),
        Index(
            "uq_tickets_open_device",
            "device",
            "fault",
            unique=True,
            sqlite_where=text(f"scope = 'device' AND {_NOT_CLOSED}"),
            postgresql_where=text(f"scope = 'device' AND {_NOT_CLOSED}"),
        ),
        Index("ix_tickets_opened_at_id", "opened_at", "id"),
        Index("ix_tickets_model_batch_fault", "model", "batch", "fault"),
        Index("ix_tickets_device", "device"),
    )


class TicketHistory(Base):
    """One entry of a ticket's history, chained to the one before it (``chain.py``): ``seq``
    counts the ticket's entries from 1, ``prev_hash`` is the previous entry's ``hash``."""

    __tablename__ = "ticket_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))  # "system" or the token's name
    action: Mapped[str] = mapped_column(String(32))  # opened, updated, transition, comment, ...
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    ticket: Mapped[Ticket] = relationship(back_populates="history")

    # two writers cannot both append the same seq; also the index of a ticket's history
    __table_args__ = (Index("uq_ticket_history_seq", "ticket_id", "seq", unique=True),)


class TicketFix(Base):
    __tablename__ = "ticket_fixes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    cycle: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    devices: Mapped[list[Any]] = mapped_column(default=list)
    effective_from: Mapped[float] = mapped_column(Float)  # event time
    outcome: Mapped[str] = mapped_column(String(16))  # pending | verified | failed | withdrawn
    decided_at: Mapped[datetime | None]
    units: Mapped[list[Any]] = mapped_column(default=list)  # per-unit verdicts at the decision
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "uq_ticket_fixes_pending",
            "ticket_id",
            unique=True,
            sqlite_where=text("outcome = 'pending'"),
            postgresql_where=text("outcome = 'pending'"),
        ),
    )


class Outbox:
    """The columns of a notification waiting to be delivered (``outbox.py`` delivers any table
    that has them): what to send, how often it was tried, when next, and when it went."""

    created_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class SlaEscalation(Outbox, Base):
    __tablename__ = "sla_escalations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"))
    cycle: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]

    __table_args__ = (
        Index("uq_sla_escalations_stage", "ticket_id", "cycle", "stage", unique=True),
        Index("ix_sla_escalations_pending", "delivered_at", "next_attempt_at"),
    )


class ApiToken(Base):
    __tablename__ = "api_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # viewer | service | engineer | admin
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    bootstrap: Mapped[bool] = mapped_column(default=False)  # QLOOP_API_TOKEN's

    __table_args__ = (Index("uq_api_tokens_name", "name", unique=True),)


class PageSession(Base):
    __tablename__ = "page_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(
        ForeignKey("api_tokens.token_sha256", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class TicketSerial(Base):
    __tablename__ = "ticket_serials"

    month: Mapped[str] = mapped_column(String(6), primary_key=True)  # YYYYMM
    last: Mapped[int] = mapped_column(Integer)


class Feedback(Base):
    """One piece of feedback as a person gave it, and what became of it."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the content
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # opened | repeat
    channel: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    customer: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model: Mapped[str | None] = mapped_column(String(64))
    serial: Mapped[str | None] = mapped_column(String(128))
    device: Mapped[str | None] = mapped_column(String(64))
    purchase_date: Mapped[str | None] = mapped_column(String(10))
    demand: Mapped[str | None] = mapped_column(String(16))
    extracted: Mapped[dict[str, Any]] = mapped_column(default=dict)
    classification: Mapped[dict[str, Any]] = mapped_column(default=dict)


class FeedbackCorrection(Base):
    """A person's correction of a feedback ticket's classification: training data."""

    __tablename__ = "feedback_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    fault: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(4))
    before: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Measure(Base):
    """A corrective or preventive measure on a ticket (纠正与预防措施): who does what by when."""

    __tablename__ = "measures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    term: Mapped[str] = mapped_column(String(8))  # short (units sold) | long (prevention)
    kind: Mapped[str] = mapped_column(String(16))  # repair, recall, design, supplier, ...
    action: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))  # planned | in_progress | done | cancelled
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    completed_at: Mapped[datetime | None]
    record: Mapped[str | None] = mapped_column(Text)  # what was done, when done or cancelled

    __table_args__ = (Index("ix_measures_status_due", "status", "due_at"),)


class TargetAlert(Outbox, Base):
    """A department's figure that missed its target two complete ISO weeks running
    (``board.py``): one row per (department, figure, week of the second miss), which is also the
    alert's outbox, delivered like ``sla_escalations``. A table of its own because the alert
    belongs to a department, not to a ticket."""

    __tablename__ = "target_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    department: Mapped[str] = mapped_column(String(64))
    figure: Mapped[str] = mapped_column(String(16))  # collection | completion | satisfaction | ...
    week: Mapped[str] = mapped_column(String(8))  # ISO week, 2026-W47

    __table_args__ = (
        Index("uq_target_alerts_week", "department", "figure", "week", unique=True),
        Index("ix_target_alerts_pending", "delivered_at", "next_attempt_at"),
    )
