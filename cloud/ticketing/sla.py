"""SLA clocks: which stage a ticket is in and when that stage is due.

Defaults follow the quality procedures the product comes from; every deadline is wall-clock time
and configurable (``Settings`` → ``TicketPolicy.sla``):

========================  ==========================  ===========================================
stage                     while the ticket is          due
========================  ==========================  ===========================================
``acknowledge``           open, reopened               cycle start + ``ack`` (1 h)
``containment``           acknowledged, if urgent      cycle start + ``containment`` (24 h): must
                                                       be in_progress by then
``cause``                 acknowledged (not urgent),   cycle start + ``cause`` (3 days): cause and
                          in_progress                  plan, i.e. status ``resolved`` (a comment
                                                       does not stop the clock: the status is the
                                                       auditable statement)
``fix``                   resolved                     cycle start + ``fix`` (14 days; the
                                                       procedures set no figure, this is ours)
``verification``          verifying                    fix recorded + ``verification`` (48 h)
``callback``              callback                     fix verified + ``callback_working_days``
                                                       (3 working days of the team's calendar:
                                                       its zone, holidays and make-up days,
                                                       ``workdays.py``)
========================  ==========================  ===========================================

The *cycle start* is when the ticket opened or was last reopened: a reopened ticket runs the
clocks again. A closed ticket has no stage. ``due_at`` of a ticket is always the deadline of its
current stage; past it, the ticket is overdue and escalated once per stage and cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from cloud.ticketing.lifecycle import Status
from cloud.ticketing.workdays import WorkCalendar


class Stage(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    CONTAINMENT = "containment"
    CAUSE = "cause"
    FIX = "fix"
    VERIFICATION = "verification"
    CALLBACK = "callback"


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Deadlines of the stages (see the module docstring)."""

    ack: dict[str, timedelta] = field(
        default_factory=lambda: dict.fromkeys(("urgent", "normal", "low"), timedelta(hours=1))
    )
    containment: timedelta = timedelta(hours=24)
    containment_priorities: frozenset[str] = frozenset({"urgent"})
    cause: timedelta = timedelta(days=3)
    fix: timedelta = timedelta(days=14)
    verification: timedelta = timedelta(hours=48)
    callback_working_days: int = 3
    calendar: WorkCalendar = field(default_factory=WorkCalendar)  # whose working days
    measure_remind_before: timedelta = timedelta(days=2)  # a measure's reminder before due
    due_soon_share: float = 0.25  # a stage is due soon with this share of its time left

    def ack_deadline(self, priority: str) -> timedelta:
        return self.ack.get(priority, timedelta(hours=1))

    def stage(self, status: Status | str, priority: str) -> Stage | None:
        """The SLA stage of a ticket in ``status``; None when closed."""
        match Status(status):
            case Status.OPEN | Status.REOPENED:
                return Stage.ACKNOWLEDGE
            case Status.ACKNOWLEDGED if priority in self.containment_priorities:
                return Stage.CONTAINMENT
            case Status.ACKNOWLEDGED | Status.IN_PROGRESS:
                return Stage.CAUSE
            case Status.RESOLVED:
                return Stage.FIX
            case Status.VERIFYING:
                return Stage.VERIFICATION
            case Status.CALLBACK:
                return Stage.CALLBACK
        return None

    def duration(self, stage: Stage, priority: str) -> timedelta:
        """How long ``stage`` lasts at most (a callback's working days counted as days)."""
        match stage:
            case Stage.ACKNOWLEDGE:
                return self.ack_deadline(priority)
            case Stage.CONTAINMENT:
                return self.containment
            case Stage.CAUSE:
                return self.cause
            case Stage.FIX:
                return self.fix
            case Stage.CALLBACK:
                return timedelta(days=self.callback_working_days)
        return self.verification

    def due(self, stage: Stage, priority: str, cycle_at: datetime, fix_at: datetime) -> datetime:
        """Deadline of ``stage``: from the cycle start, or for verification and callback from
        ``fix_at`` (when the fix was recorded, or verified)."""
        match stage:
            case Stage.ACKNOWLEDGE:
                return cycle_at + self.ack_deadline(priority)
            case Stage.CONTAINMENT:
                return cycle_at + self.containment
            case Stage.CAUSE:
                return cycle_at + self.cause
            case Stage.FIX:
                return cycle_at + self.fix
            case Stage.CALLBACK:
                return self.calendar.add_working_days(fix_at, self.callback_working_days)
        return fix_at + self.verification


def backoff(attempts: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """Wait before retry number ``attempts`` (1, 2, ...): doubling from ``base``, at most ``cap``.

    >>> base, cap = timedelta(seconds=30), timedelta(minutes=2)
    >>> [backoff(n, base=base, cap=cap).seconds for n in (1, 2, 4)]
    [30, 60, 120]
    """
    return min(cap, base * 2 ** max(0, attempts - 1))
