"""What every part of the ticket service shares: the database, the clock, the policy, the notifier.

One :class:`Context` is built by :class:`~cloud.ticketing.service.TicketService` and handed to the
modules that do the work (``intake``, ``queries``, ``actions``, ``overdue``, ``tokens``), so they
share one set of session factories and one clock instead of each making their own.

**Concurrency.** On PostgreSQL every change to the tickets of one (model, fault) takes a
transaction-scoped advisory lock first (:func:`serialize`), so concurrent workers and the API
evaluate one after the other and each sees what the previous one committed (SQLite's
``BEGIN IMMEDIATE``, from the writing session factory, gives the same for the whole file). The
unique indexes of ``models.py`` stay the last line of defence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from cloud.feedback.classify import FeedbackClassifier
from cloud.feedback.model import shipped_classifier
from cloud.ticketing.db import for_writing
from cloud.ticketing.errors import TicketNotFound
from cloud.ticketing.escalation import Notifier
from cloud.ticketing.models import Ticket
from cloud.ticketing.policy import TicketPolicy

Clock = Callable[[], datetime]
#: gives the feedback classifier when first needed (the worker never needs one)
ClassifierSource = Callable[[], FeedbackClassifier]


class Context:
    """The engine and its two session factories, the clock, the policy, the notifier and where
    the feedback classifier comes from (the shipped one unless another is given).

    ``sessions`` open writing transactions (SQLite's write lock taken up front, see ``db.py``);
    ``readers`` open plain ones that never wait for a writer.
    """

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        policy: TicketPolicy,
        notifier: Notifier | None = None,
        classifier: ClassifierSource | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.policy = policy
        self.notifier = notifier
        self.classifier: ClassifierSource = classifier or shipped_classifier
        self.sessions = sessionmaker(for_writing(engine), expire_on_commit=False)
        self.readers = sessionmaker(engine, expire_on_commit=False)

    def now(self) -> datetime:
        """The clock's time in UTC; the clock must be timezone-aware."""
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now.astimezone(UTC)


def serialize(s: Session, model: str | None, fault: str | None) -> None:
    """On PostgreSQL, wait for other transactions changing tickets of (model, fault).

    A transaction-scoped advisory lock: statements after it see what the previous holder
    committed (READ COMMITTED), which is what makes batch statistics and verification exact
    with several workers. SQLite needs nothing: ``BEGIN IMMEDIATE`` already serialises writers.
    """
    if s.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"{model}\0{fault}".encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def utc(ts: float) -> datetime:
    """An event time (Unix seconds) as an aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)


def lock_ticket(s: Session, ticket_id: str, *, serial: bool = False) -> Ticket:
    """The ticket ``ticket_id`` with its row locked for the transaction (raises
    :class:`TicketNotFound`); with ``serial``, the (model, fault) lock the data's decisions take
    comes first (:func:`serialize`), so its batch and verification state are current."""
    t = s.get(Ticket, ticket_id)
    if t is None:
        raise TicketNotFound(ticket_id)
    if serial:
        serialize(s, t.model, t.fault)
    s.refresh(t, with_for_update=True)
    return t
