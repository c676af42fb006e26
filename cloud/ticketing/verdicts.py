"""Verdicts people give on a fix: the quality engineer's check, and the customer's callback.

**The engineer's check** (:func:`check_fix`). A fix with no units to judge by data is judged by
the quality engineer, with one of the procedure's three results: ``effective`` (有效: the ticket
closes, or goes to its callback), ``not_effective`` (无效: reopened, a new cycle) or
``needs_work`` (需进一步优化: back to ``in_progress``). A fix the units' data can judge is the
data's to judge: asking is a 409.

**The customer's callback** (:func:`follow_up`, CONTRACTS.md §4.2). A follow-up has a note and,
optionally, a score 1-5 (5 best); the procedures' *satisfied / basically satisfied / dissatisfied*
are 5 / 4 / 2 (:data:`SATISFACTION`). The score is kept with the ticket (``evidence.callbacks``,
what the monthly report counts). On a ticket in ``callback``, 4 or 5 closes it; 3 or lower, on a
ticket whose fix has been recorded (``resolved``, ``verifying``, ``callback`` or ``closed``),
re-dispatches it: reopened as a new cycle, back to its lead department, the customer's reason in
its history, a pending fix withdrawn. A score given earlier in the work is recorded and changes
nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cloud.ticketing.closing import close_verified
from cloud.ticketing.context import Context, lock_ticket
from cloud.ticketing.cycles import reopen, restage
from cloud.ticketing.errors import InvalidFix, TicketConflict
from cloud.ticketing.history import HistoryKind, write_history
from cloud.ticketing.lifecycle import ACTIONS, Action, Status, check_action
from cloud.ticketing.models import Ticket, TicketFix
from cloud.ticketing.queries import detail
from cloud.ticketing.verification import Outcome, withdraw_fix
from cloud.ticketing.views import TicketView

RESULTS = ("effective", "not_effective", "needs_work")
SATISFACTION = {"satisfied": 5, "basically_satisfied": 4, "dissatisfied": 2}
LOW_SCORE = 3  # this or lower re-dispatches


def check_fix(
    ctx: Context, ticket_id: str, *, result: str, note: str | None, actor: str
) -> TicketView:
    """The quality engineer's verdict on a fix with no units' data (see the module)."""
    if result not in RESULTS:
        raise InvalidFix(f"result must be one of {', '.join(RESULTS)}", field="result")
    now = ctx.now()
    with ctx.sessions.begin() as s:
        t = lock_ticket(s, ticket_id, serial=True)
        check_action(t.status, Action.NEEDS_WORK, t.id)  # i.e. the ticket is verifying
        fix = s.scalars(
            select(TicketFix).where(
                TicketFix.ticket_id == t.id, TicketFix.outcome == Outcome.PENDING.value
            )
        ).first()
        if fix is None or fix.devices:
            raise TicketConflict(
                f"the fix of {t.id} is judged by its units' data, not by a check"
                if fix is not None
                else f"{t.id} has no pending fix to check"
            )
        text = f"{result.replace('_', ' ')}" + (f": {note}" if note else "")
        fix.outcome = Outcome.VERIFIED.value if result == "effective" else Outcome.FAILED.value
        fix.decided_at, fix.note = now, f"checked by {actor}: {text}"
        data: dict[str, Any] = {"fix": fix.id, "result": result, "checked_by": actor}
        if result == "effective":
            close_verified(s, ctx.policy, t, now, note=fix.note, data=data, actor=actor)
        elif result == "not_effective":
            check_action(t.status, Action.NOT_VERIFIED, t.id)
            _reopen(s, ctx, t, now, HistoryKind.CHECKED, actor, fix.note, data)
        else:
            target = check_action(t.status, Action.NEEDS_WORK, t.id)
            write_history(
                s, t, now, HistoryKind.CHECKED, actor=actor, from_status=t.status,
                to_status=target, note=fix.note, data=data,
            )  # fmt: skip
            t.status, t.updated_at = target.value, now
            restage(t, ctx.policy.sla, now)
        s.flush()
        s.refresh(t)
        return detail(s, ctx.policy, t, now)


def follow_up(
    ctx: Context,
    ticket_id: str,
    note: str,
    *,
    customer: str,
    actor: str,
    score: int | None = None,
) -> TicketView:
    """Record a customer follow-up; a score may close or re-dispatch (see the module)."""
    if score is not None and not 1 <= score <= 5:
        raise InvalidFix("score must be 1 to 5 (5 best)", field="score")
    now = ctx.now()
    with ctx.sessions.begin() as s:
        t = lock_ticket(s, ticket_id, serial=True)
        data: dict[str, Any] = {"customer": customer}
        if score is not None:
            data["score"] = score
        write_history(s, t, now, HistoryKind.FOLLOWUP, actor=actor, note=note, data=data)
        t.updated_at = now
        if score is not None:
            entry = {"at": now.isoformat(), "score": score, "customer": customer, "cycle": t.cycle}
            t.evidence = {**t.evidence, "callbacks": [*t.evidence.get("callbacks", []), entry]}
            if score > LOW_SCORE and t.status == Status.CALLBACK:
                target = check_action(t.status, Action.SATISFIED, t.id)
                write_history(
                    s, t, now, HistoryKind.SATISFIED, actor=actor, from_status=t.status,
                    to_status=target, note=f"the customer scored {score}: closed", data=data,
                )  # fmt: skip
                t.status = target.value
            elif score <= LOW_SCORE and t.status in ACTIONS[Action.REDISPATCH][0]:
                reason = (
                    f"re-dispatched to {t.department}: the customer scored {score} "
                    f"(3 or lower): {note}"
                )
                withdraw_fix(s, t, now, "withdrawn: the customer's callback re-dispatched it")
                _reopen(s, ctx, t, now, HistoryKind.REDISPATCHED, actor, reason, data)
        s.flush()
        s.refresh(t)
        return detail(s, ctx.policy, t, now)


def _reopen(
    s: Any,
    ctx: Context,
    t: Ticket,
    now: datetime,
    kind: HistoryKind,
    actor: str,
    note: str,
    data: dict[str, Any],
) -> None:
    try:
        with s.begin_nested():
            reopen(s, t, ctx.policy.sla, now, kind, actor=actor, note=note, data=data)
    except IntegrityError as exc:
        raise TicketConflict(
            f"cannot reopen {t.id}: another ticket for the same key is open; work on that one"
        ) from exc
