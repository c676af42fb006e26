"""The end of a fix: a verified ticket closes, or goes to its customer's callback first.

A ticket whose fix is verified — by the units' data, or by the quality engineer's check where
there is no data — closes unless a customer is waiting on it (:func:`needs_callback`: a ticket
from people's feedback, or a telemetry ticket that complaints repeated); then it goes to
``callback`` and the customer's score decides (``verdicts.py``). When a batch ticket's fix is
verified, the complaint tickets that joined it (``parent``) go to ``callback`` as well: the
batch's fix is their fix, and each has a customer to call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.ticketing.cycles import restage
from cloud.ticketing.history import ChangeKind, HistoryKind, TicketChange, change, write_history
from cloud.ticketing.lifecycle import ACTIONS, Action, check_action
from cloud.ticketing.models import Ticket
from cloud.ticketing.policy import TicketPolicy


def needs_callback(t: Ticket) -> bool:
    """Whether a customer waits on ``t``: people's feedback, or complaints that repeated it."""
    if t.scope == "batch":
        return False
    return t.source == "feedback" or bool(t.evidence.get("complaints"))


def close_verified(
    s: Session,
    policy: TicketPolicy,
    t: Ticket,
    now: datetime,
    *,
    note: str,
    data: dict[str, Any],
    actor: str = "system",
) -> list[TicketChange]:
    """Move verifying ``t`` to closed, or to callback when a customer waits on it."""
    action = Action.VERIFIED_CALL_BACK if needs_callback(t) else Action.VERIFIED
    target = check_action(t.status, action, t.id)
    write_history(
        s, t, now, HistoryKind.VERIFIED, actor=actor, from_status=t.status, to_status=target,
        note=note, data=data,
    )  # fmt: skip
    t.status, t.updated_at = target.value, now
    restage(t, policy.sla, now)  # callback: due in working days from now
    s.flush()
    return [change(ChangeKind.VERIFIED, t, note)] + call_back_children(s, policy, t, now)


def call_back_children(
    s: Session, policy: TicketPolicy, parent: Ticket, now: datetime
) -> list[TicketChange]:
    """Send the complaint tickets that joined ``parent`` to their callback."""
    if parent.scope != "batch":
        return []
    sources, _ = ACTIONS[Action.PARENT_VERIFIED]
    children = s.scalars(
        select(Ticket)
        .where(Ticket.parent == parent.id, Ticket.status.in_([str(x) for x in sources]))
        .order_by(Ticket.id)
    ).all()
    changes = []
    for child in children:
        target = check_action(child.status, Action.PARENT_VERIFIED, child.id)
        note = f"the fix of batch ticket {parent.id} is verified: call the customer back"
        write_history(
            s, child, now, HistoryKind.PARENT_VERIFIED, from_status=child.status,
            to_status=target, note=note, data={"parent": parent.id},
        )  # fmt: skip
        child.status, child.updated_at = target.value, now
        restage(child, policy.sla, now)
        changes.append(change(ChangeKind.VERIFIED, child, note))
    return changes
