"""The ticket lifecycle as data: statuses and the transitions between them.

Two tables. ``TRANSITIONS`` are the moves a person asks for by naming the target status::

    open → acknowledged → in_progress → resolved        (resolved: cause found, plan made)
    acknowledged → closed                                (dismissed: not a defect; note says why)
    resolved | verifying | callback | closed → reopened
    reopened → acknowledged | in_progress

``ACTIONS`` are the moves that come with a record or are decided by the data, never by naming a
status: recording the fix (``in_progress | resolved → verifying``, by a person, with the fix
record), and the system's verification outcome (``verifying → closed`` when every fixed unit is
back at baseline, ``verifying → reopened`` when one is not), a regression (``closed → reopened``
when the fault comes back after a verified fix) and folding a device ticket into a batch ticket
(``→ closed``). So a ticket is never closed as fixed without evidence from the units.

A fix with no units to judge by data (a complaint about appearance, a unit without sensors) is
judged by the quality engineer's check instead: effective (like verified), not effective (like
not verified) or needs further work (``verifying → in_progress``; 有效 / 无效 / 需进一步优化).

Tickets with a customer waiting (from people's feedback) do not close when their fix is
verified: they go to ``callback`` (回访), and the customer's score decides: 4 or 5 closes the
ticket, 3 or lower re-dispatches it (``→ reopened``, a new cycle, back to its department). When
a batch ticket's fix is verified, the complaint tickets that joined it go to ``callback`` too.

Like h11's state machine, the tables are the single source of truth: :func:`check_transition` and
:func:`check_action` raise :class:`IllegalTransition` (naming the legal moves) instead of ignoring
a bad request.
"""

from __future__ import annotations

from enum import StrEnum

from contract.errors import QloopError


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    VERIFYING = "verifying"
    CALLBACK = "callback"  # fixed and verified; the customer is to be called back
    CLOSED = "closed"
    REOPENED = "reopened"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.OPEN: frozenset({Status.ACKNOWLEDGED}),
    Status.ACKNOWLEDGED: frozenset({Status.IN_PROGRESS, Status.CLOSED}),
    Status.IN_PROGRESS: frozenset({Status.RESOLVED}),
    Status.RESOLVED: frozenset({Status.REOPENED}),
    Status.VERIFYING: frozenset({Status.REOPENED}),
    Status.CALLBACK: frozenset({Status.REOPENED}),
    Status.CLOSED: frozenset({Status.REOPENED}),
    Status.REOPENED: frozenset({Status.ACKNOWLEDGED, Status.IN_PROGRESS}),
}


NOT_CLOSED: frozenset[Status] = frozenset(Status) - {Status.CLOSED}


class Action(StrEnum):
    FIX = "fix"  # a person records the fix
    VERIFIED = "verified"  # every fixed unit back at baseline, or the engineer found it effective
    VERIFIED_CALL_BACK = "verified_call_back"  # the same, with a customer to call back
    NOT_VERIFIED = "not_verified"  # a fixed unit shows the fault or never cleared; not effective
    NEEDS_WORK = "needs_work"  # the engineer's check: the fix needs further work
    PARENT_VERIFIED = "parent_verified"  # system: the batch ticket it joined was fixed
    SATISFIED = "satisfied"  # the customer's callback scored 4 or 5
    REDISPATCH = "redispatch"  # the customer's callback scored 3 or lower
    REGRESSION = "regression"  # system: the fault came back after a verified fix
    MERGED = "merged"  # system: a device ticket folded into its batch ticket


_AFTER_THE_FIX = frozenset({Status.RESOLVED, Status.VERIFYING, Status.CALLBACK, Status.CLOSED})
ACTIONS: dict[Action, tuple[frozenset[Status], Status]] = {
    Action.FIX: (frozenset({Status.IN_PROGRESS, Status.RESOLVED}), Status.VERIFYING),
    Action.VERIFIED: (frozenset({Status.VERIFYING}), Status.CLOSED),
    Action.VERIFIED_CALL_BACK: (frozenset({Status.VERIFYING}), Status.CALLBACK),
    Action.NOT_VERIFIED: (frozenset({Status.VERIFYING}), Status.REOPENED),
    Action.NEEDS_WORK: (frozenset({Status.VERIFYING}), Status.IN_PROGRESS),
    Action.PARENT_VERIFIED: (
        NOT_CLOSED - {Status.VERIFYING, Status.CALLBACK},
        Status.CALLBACK,
    ),
    Action.SATISFIED: (frozenset({Status.CALLBACK}), Status.CLOSED),
    Action.REDISPATCH: (_AFTER_THE_FIX, Status.REOPENED),
    Action.REGRESSION: (frozenset({Status.CLOSED}), Status.REOPENED),
    Action.MERGED: (NOT_CLOSED, Status.CLOSED),
}


class IllegalTransition(QloopError):
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


class IllegalAction(IllegalTransition):
    """An action (like recording a fix) that the ticket's status does not allow."""

    def __init__(self, current: Status, action: Action, ticket_id: str | None = None) -> None:
        sources, target = ACTIONS[action]
        Exception.__init__(
            self,
            f"cannot {action.value.replace('_', ' ')} on "
            f"{f'ticket {ticket_id}' if ticket_id else 'a ticket'} in status '{current}'; "
            f"allowed from: {', '.join(s for s in Status if s in sources)}",
        )
        self.current, self.requested, self.ticket_id = current, target, ticket_id
        self.allowed = (target,) if current in sources else ()
        self.action = action


def check_action(current: Status | str, action: Action, ticket_id: str | None = None) -> Status:
    """The status ``action`` leads to from ``current``, else raise :class:`IllegalAction`."""
    sources, target = ACTIONS[action]
    if Status(current) not in sources:
        raise IllegalAction(Status(current), action, ticket_id)
    return target
