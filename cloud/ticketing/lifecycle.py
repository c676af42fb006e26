"""The ticket lifecycle as data: statuses and the transitions between them.

::

    open → acknowledged → in_progress → resolved → verifying → closed
    resolved | verifying | closed → reopened
    reopened → acknowledged | in_progress
    acknowledged → closed     (dismissed: not a defect; the note says why)

Like h11's state machine, the table is the single source of truth and :func:`check_transition`
raises :class:`IllegalTransition` (naming the legal targets) instead of ignoring a bad request.
The system's own moves are not in the table: folding a device ticket into a batch ticket closes it
directly (see ``service.py``).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    VERIFYING = "verifying"
    CLOSED = "closed"
    REOPENED = "reopened"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.OPEN: frozenset({Status.ACKNOWLEDGED}),
    Status.ACKNOWLEDGED: frozenset({Status.IN_PROGRESS, Status.CLOSED}),
    Status.IN_PROGRESS: frozenset({Status.RESOLVED}),
    Status.RESOLVED: frozenset({Status.VERIFYING, Status.REOPENED}),
    Status.VERIFYING: frozenset({Status.CLOSED, Status.REOPENED}),
    Status.CLOSED: frozenset({Status.REOPENED}),
    Status.REOPENED: frozenset({Status.ACKNOWLEDGED, Status.IN_PROGRESS}),
}


class IllegalTransition(Exception):
    """A requested status change that the lifecycle does not allow."""

    def __init__(self, current: Status, requested: Status, ticket_id: str | None = None) -> None:
        self.current = current
        self.requested = requested
        self.ticket_id = ticket_id
        self.allowed = legal_targets(current)
        legal = ", ".join(self.allowed) or "none"
        subject = f"ticket {ticket_id}" if ticket_id else "a ticket"
        super().__init__(
            f"cannot move {subject} from '{current}' to '{requested}'; "
            f"legal from '{current}': {legal}"
        )


def legal_targets(current: Status | str) -> tuple[Status, ...]:
    """The statuses reachable from ``current`` in one step, in lifecycle order."""
    targets = TRANSITIONS[Status(current)]
    return tuple(s for s in Status if s in targets)


def check_transition(
    current: Status | str, requested: Status | str, ticket_id: str | None = None
) -> Status:
    """``requested`` as a Status if the move is legal, else raise :class:`IllegalTransition`."""
    cur, req = Status(current), Status(requested)
    if req not in TRANSITIONS[cur]:
        raise IllegalTransition(cur, req, ticket_id)
    return req
