"""What people do to a ticket: move it along the lifecycle, comment, record the fix (the
customer's callback and the engineer's check of a fix are in ``verdicts.py``).

Each action is one transaction that locks the ticket row, checks the move against the lifecycle
tables (``lifecycle.py``: an illegal move raises :class:`IllegalTransition` naming the legal
ones), writes the history entry with the person as actor and answers the ticket as it now stands.

**Fix record.** :func:`record_fix` stores what was done, on which units (default: every affected
unit) and from which event time it applies, moves the ticket to ``verifying`` and judges the fix
at once (``verification.py``): the units' data decides whether it closes, never a person. Only a
ticket with no units to judge by (a complaint about appearance, or from a unit without sensors)
takes a fix with no units; the quality engineer's check decides that one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.ticketing.context import Context, lock_ticket, utc
from cloud.ticketing.cycles import reopen, restage
from cloud.ticketing.errors import InvalidFix, TicketConflict, TicketNotFound
from cloud.ticketing.history import HistoryKind, write_history
from cloud.ticketing.lifecycle import Action, Status, check_action, check_transition
from cloud.ticketing.models import Device, Ticket, TicketFix
from cloud.ticketing.policy import TicketPolicy
from cloud.ticketing.queries import detail
from cloud.ticketing.verification import Outcome, decide, withdraw_fix
from cloud.ticketing.views import TicketView
from contract.clock import EARLIEST_TS


def transition(
    ctx: Context, ticket_id: str, to: Status | str, *, actor: str, note: str | None = None
) -> TicketView:
    """Move a ticket along the lifecycle; raises IllegalTransition, TicketNotFound,
    TicketConflict (reopening while another ticket for the same key is open)."""
    now = ctx.now()
    sla = ctx.policy.sla
    with ctx.sessions.begin() as s:
        t = lock_ticket(s, ticket_id)
        current = Status(t.status)
        target = check_transition(current, to, t.id)
        if target is Status.REOPENED:  # to be acknowledged again, clocks restart
            try:
                with s.begin_nested():
                    reopen(s, t, sla, now, HistoryKind.TRANSITION, actor=actor, note=note)
            except IntegrityError as exc:
                raise TicketConflict(
                    f"cannot reopen {ticket_id}: another ticket for the same "
                    f"{'(model, batch, fault)' if t.scope == 'batch' else '(device, fault)'} "
                    "is open; work on that one"
                ) from exc
            withdraw_fix(s, t, now, f"withdrawn: ticket reopened by {actor}")
        else:
            t.status, t.updated_at = target.value, now
            restage(t, sla, now)
            write_history(
                s, t, now, HistoryKind.TRANSITION, actor=actor, from_status=current,
                to_status=target, note=note,
            )  # fmt: skip
        return _reload(s, ctx.policy, t, now)


def comment(ctx: Context, ticket_id: str, text: str, *, actor: str) -> TicketView:
    """Add a comment to a ticket's history."""
    return _note(ctx, ticket_id, HistoryKind.COMMENT, text, actor=actor)


def _note(
    ctx: Context,
    ticket_id: str,
    kind: HistoryKind,
    note: str,
    *,
    actor: str,
    data: dict[str, Any] | None = None,
) -> TicketView:
    now = ctx.now()
    with ctx.sessions.begin() as s:
        t = s.get(Ticket, ticket_id)
        if t is None:
            raise TicketNotFound(ticket_id)
        t.updated_at = now
        write_history(s, t, now, kind, actor=actor, note=note, data=data)
        return _reload(s, ctx.policy, t, now)


FIX_LATEST_TS = 32_503_680_000.0  # 3000-01-01T00:00:00Z


def record_fix(
    ctx: Context,
    ticket_id: str,
    *,
    description: str,
    effective_from: float,
    devices: Iterable[str] | None = None,
    actor: str,
) -> TicketView:
    """Record what was done on which units from which event time; the ticket goes to verifying.

    Raises TicketNotFound, IllegalAction (status allows no fix), InvalidFix (units outside
    the ticket, no units, or a time that is not one: not finite, or outside 2000-3000, which
    also keeps it inside what dates can hold). The fix is judged at once.
    """
    if not math.isfinite(effective_from):
        raise InvalidFix("effective_from must be a finite time", field="effective_from")
    if not EARLIEST_TS <= effective_from < FIX_LATEST_TS:
        raise InvalidFix(
            "effective_from must be a time between 2000-01-01 and 3000-01-01,"
            f" got {effective_from}",
            field="effective_from",
        )
    now = ctx.now()
    with ctx.sessions.begin() as s:
        t = lock_ticket(s, ticket_id, serial=True)
        target = check_action(t.status, Action.FIX, t.id)
        units = _fix_units(s, t, devices)
        fix = TicketFix(
            ticket_id=t.id,
            cycle=t.cycle,
            recorded_at=now,
            actor=actor,
            description=description,
            devices=units,
            effective_from=float(effective_from),
            outcome=Outcome.PENDING.value,
            units=[],
        )
        s.add(fix)
        current = t.status
        t.status, t.updated_at = target.value, now
        restage(t, ctx.policy.sla, now)
        s.flush()
        note = (
            f"fix on {len(units)} unit(s) from {utc(effective_from).isoformat()}: "
            if units
            else "fix, to be checked by the quality engineer (no units' data): "
        )
        data = {"fix": fix.id, "devices": units, "effective_from": fix.effective_from}
        write_history(
            s, t, now, HistoryKind.FIX, actor=actor, from_status=current, to_status=target,
            note=note + description, data=data,
        )  # fmt: skip
        decide(s, ctx.policy, t, fix, now)
        return _reload(s, ctx.policy, t, now)


def _fix_units(s: Session, t: Ticket, devices: Iterable[str] | None) -> list[str]:
    affected = [e["device"] for e in t.evidence.get("devices", [])]
    units = sorted(set(affected if devices is None else devices))
    if not units:  # nothing the data can judge: the quality engineer's check will
        return []
    if t.scope == "device":
        outside = [d for d in units if d != t.device]
    else:
        known = set(
            s.scalars(
                select(Device.device).where(
                    Device.model == t.model, Device.batch == t.batch, Device.device.in_(units)
                )
            )
        )
        outside = [d for d in units if d not in known]
    if outside:
        where = f"device {t.device}" if t.scope == "device" else f"{t.model} batch {t.batch}"
        raise InvalidFix(f"not units of {where}: {', '.join(outside[:10])}")
    return units


def _reload(s: Session, policy: TicketPolicy, t: Ticket, now: datetime) -> TicketView:
    s.flush()
    s.refresh(t)
    return detail(s, policy, t, now)
