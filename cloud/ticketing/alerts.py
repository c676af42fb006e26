"""Repeated complaints (重复投诉) alert the head of the department responsible.

The quality procedures escalate a complaint that comes again: from the same unit, from the same
customer, or about the same problem in one batch, within a period. Two parts here.

**The rule** (:func:`repeated`, pure). Given the new complaint and the earlier ones, it counts
those received within ``policy.repeat_alert_window_s`` (30 days) of the new one, either side of
it (a bulk import files old complaints in any order: two complaints a week apart are a repeat
whichever is filed first), and fires by

- ``unit``: complaints about one registered unit, whatever the problem, at least
  ``repeat_alert_unit_min`` (2) with the new one;
- ``customer``: complaints from one contact (compared as repeats compare them: no spaces,
  dashes, brackets or +86), at least ``repeat_alert_customer_min`` (2); not when ``unit`` fires
  on the same complaint, whose alert already says the customer came back about their unit;
- ``batch``: complaints about one problem (the fault, or the category without one) from at
  least ``repeat_alert_batch_min`` (3) units of one batch: several units, one batch (one unit
  complaining three times is the ``unit`` key's).

A unit is one that announced itself (a serial matching none has no unit and no batch; its
complaints still count by their contact). A complaint received longer than the window before it
is filed alerts no one: it is history (an import of last year's export), not news.

**The alert** (:func:`raise_repeat_alert`, in :func:`~cloud.ticketing.complaints.file_feedback`'s
transaction, before the new feedback row is written). Each key that fires writes one outbox row
(``outbox.enqueue``) with stage ``repeat-unit``, ``repeat-customer`` or ``repeat-batch``, for
the ticket and its current cycle, and a ``repeat_alert`` entry in its history; the SLA check
(``overdue.py``) sends it through the notifier like an overdue escalation (webhook, e-mail,
retries: ``escalation.py``). The unique (ticket, cycle, stage) index makes it once per ticket,
cycle and key: a third complaint about an alerted unit is one more repeat in its history, not a
second alert, and a reopened ticket alerts again; a unit's complaint about another problem opens
a ticket of its own, which alerts its own department. A ``batch`` alert goes on the not-closed
batch ticket the complaint's ticket joined (``parent``) when there is one, so a batch is alerted
once however many complaint tickets it gathers. Otherwise it goes on the complaint's own ticket,
unless a ticket of the complaints counted carries one already: a batch without a batch ticket is
alerted again only once the complaints of its last alert have left the window, not at every
further complaint (in a large batch a common problem reaches 3 units a month easily; whether
the batch truly stands out is ``complaint_batches.py``'s test, which opens a batch ticket).

The earlier complaints are the ``feedback`` rows in the window that share the unit, the batch or
the contact, selected in SQL (the contact normalised there too) under the intake's lock; feedback
is low-volume and the window bounds them.

The payload: ``event: "repeated_complaint"``, the ticket's fields as an overdue escalation has
them (``ticket``, ``department``, ``departments``, ...), ``key``, ``matched`` (the unit, the
contact, or ``MODEL/BATCH``), ``count`` (complaints), ``units`` (distinct units among them),
``window_days``, ``department_head`` (``policy.department_heads`` of the lead department, else
of ``*``; None when none is configured), the ``channels`` and ``tickets`` of the complaints
counted, ``texts`` (the latest five, oldest first, 200 characters each) and ``escalation_id``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, literal, or_, select
from sqlalchemy.orm import Session

from cloud.ticketing.history import HistoryKind, write_history
from cloud.ticketing.joining import same_problem
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.models import Device, Feedback, SlaEscalation, Ticket
from cloud.ticketing.outbox import enqueue, ticket_payload
from cloud.ticketing.policy import SECONDS_PER_DAY, TicketPolicy

TEXTS = 5  # complaints quoted in an alert
TEXT_CHARS = 200
# what normalise_contact (complaints.py) drops from a contact, as SQL can drop it
_CONTACT_NOISE = (" ", "\t", "\n", "\r", "\u3000", "-", "(", ")")
_LIKE_SPECIAL = re.compile(r"[\\%_]")


@dataclass(frozen=True, slots=True)
class Complaint:
    """One complaint as the rule sees it."""

    received_at: datetime
    ticket: str
    channel: str
    text: str
    unit: str | None = None  # a registered unit's device id
    contact: str | None = None  # normalised
    batch: tuple[str, str] | None = None  # (model, batch) of the unit
    problem: str | None = None  # the ticket's fault, else its category


@dataclass(frozen=True, slots=True)
class Repeated:
    """A repeated complaint: by which ``key`` (unit, customer, batch), what the complaints share
    (``matched``: the unit, the contact, ``MODEL/BATCH``), and the complaints counted, oldest
    first, the new one among them."""

    key: str
    matched: str
    complaints: tuple[Complaint, ...]

    @property
    def count(self) -> int:
        return len(self.complaints)

    @property
    def units(self) -> int:
        return len({c.unit for c in self.complaints if c.unit is not None})


def repeated(new: Complaint, earlier: Iterable[Complaint], policy: TicketPolicy) -> list[Repeated]:
    """The keys by which ``new`` repeats ``earlier`` complaints (see the module's docstring).

    >>> from datetime import UTC
    >>> day = datetime(2026, 12, 1, tzinfo=UTC)
    >>> first = Complaint(day, "PF1", "hotline", "不制冷", unit="ac-1", contact="138")
    >>> again = Complaint(day + timedelta(days=9), "PF1", "ecommerce", "还是不制冷",
    ...                   unit="ac-1", contact="138")
    >>> [(r.key, r.matched, r.count) for r in repeated(again, [first], TicketPolicy())]
    [('unit', 'ac-1', 2)]
    >>> late = Complaint(day + timedelta(days=31), "PF2", "hotline", "不制冷", contact="138")
    >>> repeated(late, [first], TicketPolicy())
    []
    """
    window = timedelta(seconds=policy.repeat_alert_window_s)
    near = [c for c in earlier if abs(c.received_at - new.received_at) <= window]
    tests = (
        ("unit", new.unit, policy.repeat_alert_unit_min, lambda c: c.unit == new.unit),
        (
            "customer",
            new.contact,
            policy.repeat_alert_customer_min,
            lambda c: c.contact == new.contact,
        ),
        (
            "batch",
            None if new.batch is None else "/".join(new.batch),
            policy.repeat_alert_batch_min,
            lambda c: c.batch == new.batch and c.problem == new.problem,
        ),
    )
    hits: list[Repeated] = []
    for key, matched, least, same in tests:
        if matched is None:
            continue
        group = sorted([*(c for c in near if same(c)), new], key=lambda c: c.received_at)
        hit = Repeated(key, matched, tuple(group))
        if (hit.units if key == "batch" else hit.count) >= least:
            hits.append(hit)
    if any(h.key == "unit" for h in hits):
        hits = [h for h in hits if h.key != "customer"]
    return hits


def raise_repeat_alert(
    s: Session,
    policy: TicketPolicy,
    ticket: Ticket,
    unit: Device | None,
    complaint: dict[str, Any],
    now: datetime,
) -> list[str]:
    """Alert the department head if the complaint just filed on ``ticket`` repeats earlier
    ones; ``complaint`` is its entry in the ticket's evidence (``complaints._complaint``). In
    the caller's transaction; the stages written (``repeat-unit``, ...), if any."""
    new = Complaint(
        received_at=datetime.fromisoformat(complaint["received_at"]),
        ticket=ticket.id,
        channel=complaint["channel"],
        text=complaint["text"],
        unit=unit.device if unit else None,
        contact=complaint.get("contact_key"),
        batch=(unit.model, unit.batch) if unit else None,
        problem=ticket.fault or ticket.category,
    )
    if new.received_at < now - timedelta(seconds=policy.repeat_alert_window_s):
        return []  # history, as an import of last year's export brings: nothing to alert now
    written = []
    problem = same_problem(ticket.fault, ticket.category)
    for hit in repeated(new, _earlier(s, policy, new, problem), policy):
        target = ticket
        if hit.key == "batch" and ticket.parent:
            parent = s.get(Ticket, ticket.parent)
            if parent is not None and parent.status != Status.CLOSED:
                target = parent
        if target is ticket and hit.key == "batch" and _batch_alerted(s, hit):
            continue
        if _alert(s, policy, target, hit, now):
            written.append(f"repeat-{hit.key}")
    return written


def _earlier(
    s: Session, policy: TicketPolicy, new: Complaint, problem: ColumnElement[bool]
) -> list[Complaint]:
    """The feedback rows received within the window of ``new`` that share its unit or contact,
    or its batch and ``problem`` (on their ticket); the rule then counts them. ``near`` tests
    the feedback row alone, so the database looks up the ticket only of the rows it keeps."""
    near: list[ColumnElement[bool]] = []
    same: list[ColumnElement[bool]] = []
    if new.unit is not None:
        near.append(Feedback.device == new.unit)
        same.append(Feedback.device == new.unit)
    if new.batch is not None:
        model, batch = new.batch
        units = select(Device.device).where(Device.model == model, Device.batch == batch)
        near.append(Feedback.device.in_(units))
        same.append(Feedback.device.in_(units) & problem)
    contact = literal(False) if new.contact is None else _contact_is(new.contact)
    if new.contact is not None:
        near.append(contact)
        same.append(contact)
    if not same:
        return []
    window = timedelta(seconds=policy.repeat_alert_window_s)
    rows = s.execute(
        select(
            Feedback.received_at,
            Feedback.ticket_id,
            Feedback.channel,
            func.substr(Feedback.text, 1, TEXT_CHARS).label("text"),
            Device.device,
            Device.model,
            Device.batch,
            Ticket.fault,
            Ticket.category,
            contact.label("same_contact"),
        )
        .join(Ticket, Ticket.id == Feedback.ticket_id)
        .outerjoin(Device, Device.device == Feedback.device)
        .where(
            Feedback.received_at >= new.received_at - window,
            Feedback.received_at <= new.received_at + window,
            or_(*near),
            or_(*same),
        )
        .order_by(Feedback.received_at, Feedback.id)
    ).all()
    return [
        Complaint(
            received_at=r.received_at,
            ticket=r.ticket_id,
            channel=r.channel,
            text=r.text,
            unit=r.device,
            contact=new.contact if r.same_contact else None,
            batch=None if r.device is None else (r.model, r.batch),
            problem=r.fault or r.category,
        )
        for r in rows
    ]


_RAW_CONTACT = Feedback.customer["contact"].as_string()
_FLAT_CONTACT = func.lower(
    functools.reduce(lambda e, noise: func.replace(e, noise, ""), _CONTACT_NOISE, _RAW_CONTACT)
)


def _batch_alerted(s: Session, hit: Repeated) -> bool:
    """Whether a ticket of the complaints counted already carries a batch alert."""
    tickets = {c.ticket for c in hit.complaints}
    seen = select(SlaEscalation.id).where(
        SlaEscalation.stage == "repeat-batch", SlaEscalation.ticket_id.in_(tickets)
    )
    return s.execute(seen.limit(1)).first() is not None


def _contact_is(contact: str) -> ColumnElement[bool]:
    """Feedback whose contact, normalised as ``complaints.normalise_contact`` does, is
    ``contact`` (already normalised). A LIKE of its characters in order goes first: it is
    cheap, and only the few contacts it lets through are normalised by the database."""
    spread = "%" + "%".join(_LIKE_SPECIAL.sub(r"\\\g<0>", ch) for ch in contact) + "%"
    forms = [contact, f"+86{contact}"] if contact.isdigit() else [contact]
    return _RAW_CONTACT.ilike(spread, escape="\\") & _FLAT_CONTACT.in_(forms)


def _alert(s: Session, policy: TicketPolicy, t: Ticket, hit: Repeated, now: datetime) -> bool:
    """Write the outbox row and the history entry of ``hit`` on ``t``, once per cycle."""
    stage = f"repeat-{hit.key}"
    heads = policy.department_heads
    payload = ticket_payload(t) | {
        "event": "repeated_complaint",
        "stage": stage,
        "category": t.category,
        "key": hit.key,
        "matched": hit.matched,
        "count": hit.count,
        "units": hit.units,
        "window_days": round(policy.repeat_alert_window_s / SECONDS_PER_DAY, 2),
        "department_head": heads.get(t.department, heads.get("*")),
        "channels": list(dict.fromkeys(c.channel for c in hit.complaints)),
        "tickets": list(dict.fromkeys(c.ticket for c in hit.complaints)),
        "texts": [c.text[:TEXT_CHARS] for c in hit.complaints[-TEXTS:]],
    }
    # the overdue check passes over a ticket whose outbox holds a row due when the ticket is
    # (overdue.check_sla): the alert, due now, must never share the ticket's own deadline
    due = now if now != t.due_at else now - timedelta(microseconds=1)
    row = enqueue(s, t, stage, due, payload, now)
    if row is None:  # alerted before in this cycle, maybe by another process
        return False
    note = f"repeated complaint by {hit.key} {hit.matched}: {hit.count} within"
    note += f" {payload['window_days']:g} days; {t.department} alerted"
    if payload["department_head"]:
        note += f" ({payload['department_head']})"
    data = {"key": hit.key, "count": hit.count, "escalation": row.id}
    write_history(s, t, now, HistoryKind.REPEAT_ALERT, note=note, data=data)
    return True
