"""The ticket service's errors, in one place.

Each derives from :class:`contract.errors.QloopError` (qloop refused, and says why) and from the
built-in class whose meaning it carries, so ``except LookupError`` or ``except ValueError`` keeps
working. The API turns them into HTTP answers (``api/routes/tickets.py``). The lifecycle's own
:class:`IllegalTransition` and :class:`IllegalAction` stay beside the tables they enforce
(``lifecycle.py``) and are re-exported here, so a caller finds every error of the service in this
module.
"""

from __future__ import annotations

from cloud.ticketing.lifecycle import IllegalAction, IllegalTransition
from contract.errors import QloopError

__all__ = [
    "IllegalAction",
    "IllegalTransition",
    "InvalidCursor",
    "InvalidFeedback",
    "InvalidFix",
    "TicketConflict",
    "TicketNotFound",
]


class TicketNotFound(QloopError, LookupError):
    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"no ticket {ticket_id}")


class TicketConflict(QloopError):
    """A change that would leave two not-closed tickets for one key."""


class InvalidCursor(QloopError, ValueError):
    """A page cursor that is not the ``next`` of an earlier page."""


class InvalidFix(QloopError, ValueError):
    """A fix record that names units outside the ticket or has no usable effective time;
    ``field`` names the part of the record that is wrong."""

    def __init__(self, message: str, field: str = "devices") -> None:
        super().__init__(message)
        self.field = field


class InvalidFeedback(QloopError, ValueError):
    """Feedback (or a correction of its classification) the service cannot take; ``field``
    names the part that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
