"""A unit's identity — product, model and batch — is not changed by a birth message alone.

A unit's batch decides which batch ticket its faults count for and which batch's exposure its
days add to, so a birth that announces another identity than the unit has (a forged birth, a
mis-flashed unit, a board swapped into another unit) is held as a :class:`DeviceChange` for a
person: :func:`hold` keeps it pending while the unit stays where it was, :func:`decide` applies
it (the unit moves and its active faults are evaluated where it now belongs) or rejects it. A
unit that announces its recorded identity again withdraws what it announced before. Firmware,
serial and the times seen are taken from every birth as before (firmware changes with every
update; the serial is not what batches are judged by).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.ticketing.context import Context, serialize
from cloud.ticketing.decisions import evaluate
from cloud.ticketing.errors import TicketConflict
from cloud.ticketing.history import TicketChange
from cloud.ticketing.models import Device, DeviceChange, DeviceFault, FindingRecord
from contract.errors import QloopError

IDENTITY = ("product", "model", "batch")
STATUSES = ("pending", "accepted", "rejected", "withdrawn")


class ChangeNotFound(QloopError, LookupError):
    def __init__(self, change_id: int) -> None:
        super().__init__(f"no device change {change_id}")


def identity_of(thing: Any) -> dict[str, str]:
    """The identity fields of a device row or a birth record."""
    return {f: getattr(thing, f) for f in IDENTITY}


def identities(
    ctx: Context, devices: Iterable[str] | None = None
) -> dict[str, tuple[str, str, str]]:
    """The recorded (product, model, batch) of ``devices`` (every unit when None), which a unit's
    own birth does not change while an announced change waits for a person: the worker tags
    and groups the unit's data by this, not by what it announced."""
    query = select(Device.device, Device.product, Device.model, Device.batch)
    wanted = None if devices is None else set(devices)
    if wanted is not None:
        if not wanted:
            return {}
        query = query.where(Device.device.in_(wanted))
    with ctx.sessions() as s:
        return {d: (p, m, b) for d, p, m, b in s.execute(query)}


def hold(
    s: Session, dev: Device, announced: dict[str, str], birth_ts: float, now: datetime
) -> None:
    """Keep ``announced`` (≠ the unit's identity) pending for a person, once per announcement;
    an announcement of the unit's own identity withdraws the pending ones."""
    pending = s.scalars(
        select(DeviceChange).where(
            DeviceChange.device == dev.device, DeviceChange.status == "pending"
        )
    ).all()
    if announced == identity_of(dev):
        for change in pending:
            change.status, change.decided_by, change.decided_at = "withdrawn", "system", now
        return
    if any(change.announced == announced for change in pending):
        return
    s.add(
        DeviceChange(
            device=dev.device, announced_at=now, birth_ts=birth_ts, previous=identity_of(dev),
            announced=announced, status="pending",
        )
    )  # fmt: skip


def place(s: Session, ctx: Context, dev: Device, now: datetime) -> list[TicketChange]:
    """Give the unit's unplaced findings its model and batch and evaluate its active faults
    there (a new unit, or one that moved)."""
    s.flush()
    s.execute(
        update(FindingRecord)
        .where(FindingRecord.device == dev.device, FindingRecord.model.is_(None))
        .values(model=dev.model, batch=dev.batch)
    )
    states = s.scalars(
        select(DeviceFault).where(DeviceFault.device == dev.device, DeviceFault.active.is_(True))
    ).all()
    changes: list[TicketChange] = []
    for state in sorted(states, key=lambda st: st.fault):
        serialize(s, dev.model, state.fault)
        changes += evaluate(s, ctx.policy, dev, state, now)
    return changes


def as_dict(change: DeviceChange) -> dict[str, Any]:
    return {
        "id": change.id,
        "device": change.device,
        "announced_at": change.announced_at,
        "birth_ts": change.birth_ts,
        "previous": dict(change.previous),
        "announced": dict(change.announced),
        "status": change.status,
        "decided_by": change.decided_by,
        "decided_at": change.decided_at,
        "note": change.note,
    }


def identity_changes(
    ctx: Context, status: str | None = "pending", limit: int = 100
) -> list[dict[str, Any]]:
    """Identity changes, newest first (``status`` None: all)."""
    query = select(DeviceChange).order_by(DeviceChange.id.desc()).limit(limit)
    if status is not None:
        query = query.where(DeviceChange.status == status)
    with ctx.sessions() as s:
        return [as_dict(c) for c in s.scalars(query)]


def decide(
    ctx: Context,
    change_id: int,
    decision: Literal["accept", "reject"],
    *,
    actor: str,
    note: str | None = None,
) -> tuple[dict[str, Any], list[TicketChange]]:
    """Accept (the unit takes the announced identity) or reject a pending change; the change as
    it now stands and the ticket changes accepting it caused. A decided change is a conflict."""
    now = ctx.now()
    with ctx.sessions.begin() as s:
        change = s.get(DeviceChange, change_id, with_for_update=True)
        if change is None:
            raise ChangeNotFound(change_id)
        if change.status != "pending":
            raise TicketConflict(
                f"device change {change_id} is {change.status} already, by {change.decided_by}"
            )
        change.status = "accepted" if decision == "accept" else "rejected"
        change.decided_by, change.decided_at, change.note = actor, now, note
        changes: list[TicketChange] = []
        if decision == "accept":
            dev = s.get(Device, change.device, with_for_update=True)
            if dev is not None:
                for field in IDENTITY:
                    setattr(dev, field, change.announced[field])
                changes = place(s, ctx, dev, now)
        s.flush()
        return as_dict(change), changes
