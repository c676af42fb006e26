"""Feedback from people in: every piece becomes a ticket of its own, a repeat of an open one, or
evidence on its unit's batch ticket (CONTRACTS.md §4.1).

Flow of :func:`file_feedback`, one transaction:

1. **Checked and kept verbatim.** The channel and demand must be the contract's; the text must
   not be empty. The feedback row keeps the customer's words as given and a digest of the content
   (channel, time, text, contact, model, serial): the same feedback filed again (a re-import of
   an export, a client retrying) answers the ticket it made and creates nothing.
2. **Read.** Fields the form left empty are taken from the text (``cloud.feedback.extract``:
   model, serial, dates, temperatures, error codes, demand). A serial or device id that a unit
   announced in its birth message identifies the unit, hence its model and batch; one that
   matches nothing is kept and marked ``matched: false``. The classifier gives category, fault,
   severity, priority, departments and a confidence; below its threshold ``needs_triage`` asks a
   person to confirm.
3. **Repeat or new.** A not-closed ticket about the same problem (the same fault, or the same
   category when there is no fault) for the same unit or from the same contact, or a
   near-identical text (trigram Jaccard ≥ ``policy.repeat_similarity``) about the same unit from
   any channel, takes the feedback as a repeat: its ``repeats`` count goes up, the complaint is
   added to its evidence, and the answer is that ticket (HTTP 200). A telemetry ticket of the
   unit for the same fault counts: the customer is describing what the data already showed.
   Otherwise a new ticket opens: scope ``device`` when the unit is known, else ``customer``;
   ``detected_at`` is when the feedback was received.
4. **Batch.** A new ticket of a unit whose batch has an open batch ticket for the same fault
   joins it (``parent``); the batch ticket counts its complaints by channel. A batch ticket that
   opens later adopts the batch's open complaint tickets the same way (``opening.py``).

On PostgreSQL, intakes take one advisory lock (feedback is low-volume; repeat detection must see
what the previous intake committed) and then the (model, fault) lock before touching a batch
ticket, the order telemetry never reverses.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.feedback.classify import PRIORITY, Classification, departments
from cloud.feedback.extract import DEMANDS, Extracted, extract
from cloud.feedback.labelled import CHANNELS
from cloud.feedback.similar import similarity
from cloud.feedback.sources import MAX_TEXT
from cloud.ticketing.alerts import raise_repeat_alert
from cloud.ticketing.complaint_batches import open_if_standing_out
from cloud.ticketing.context import Context, lock_ticket, serialize
from cloud.ticketing.errors import InvalidFeedback, TicketConflict, TicketNotFound
from cloud.ticketing.history import HistoryKind, write_history
from cloud.ticketing.ids import next_ticket_id
from cloud.ticketing.joining import adopt, count_complaint, find_batch_ticket, same_problem
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.models import Device, Feedback, FeedbackCorrection, Ticket
from cloud.ticketing.policy import TicketPolicy
from cloud.ticketing.queries import detail
from cloud.ticketing.views import TicketView
from contract.faults import FAULTS, FEEDBACK_CATEGORIES

_FEEDBACK_LOCK = ("\0feedback", "")
_SPACE = re.compile(r"[\s\-()]+")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class FeedbackIn:
    """One piece of feedback as a person gave it (CONTRACTS.md §4.1's body)."""

    channel: str
    text: str
    received_at: datetime | None = None
    customer_name: str | None = None
    contact: str | None = None
    model: str | None = None
    serial: str | None = None
    device: str | None = None  # extension: the unit's id, when the caller knows it
    purchase_date: date | None = None
    demand: str | None = None


@dataclass(frozen=True, slots=True)
class Filed:
    """What became of a piece of feedback: ``outcome`` is ``opened`` (a new ticket, HTTP 201),
    ``repeat`` (an open ticket took it, 200) or ``duplicate`` (filed before, nothing new)."""

    ticket: TicketView
    outcome: str

    @property
    def created(self) -> bool:
        return self.outcome == "opened"


def normalise_contact(contact: str | None) -> str | None:
    """A contact as compared for repeats: lower case, without spaces, dashes, brackets or a
    leading +86 country code.

    >>> normalise_contact(" +86 138-0013-8000 "), normalise_contact("Li@Example.COM")
    ('13800138000', 'li@example.com')
    """
    if contact is None or not contact.strip():
        return None
    flat = _SPACE.sub("", contact.strip().lower())
    return flat[3:] if flat.startswith("+86") and flat[3:].isdigit() else flat


def digest(fb: FeedbackIn, received_at: datetime) -> str:
    """The content digest that makes filing the same feedback twice harmless."""
    key = [
        fb.channel,
        received_at.isoformat(),
        fb.text,
        normalise_contact(fb.contact),
        fb.model,
        fb.serial,
        fb.device,
    ]
    return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode()).hexdigest()


def check(fb: FeedbackIn) -> None:
    """Raise :class:`InvalidFeedback` naming the field that is wrong."""
    if fb.channel not in CHANNELS:
        raise InvalidFeedback("channel", f"unknown channel {fb.channel!r}; one of {CHANNELS}")
    if fb.demand is not None and fb.demand not in DEMANDS:
        raise InvalidFeedback("demand", f"unknown demand {fb.demand!r}; one of {DEMANDS}")
    if not fb.text.strip():
        raise InvalidFeedback("text", "the text is empty: say what the customer reported")
    if len(fb.text) > MAX_TEXT:
        raise InvalidFeedback("text", f"the text is over {MAX_TEXT} characters")


def file_feedback(
    ctx: Context,
    fb: FeedbackIn,
    *,
    actor: str = "system",
    classification: Classification | None = None,
) -> Filed:
    """Record ``fb`` and open, repeat or find its ticket (see the module's docstring); the
    answer holds the ticket as it stands after this feedback.

    ``classification`` is the classifier's answer for ``fb.text`` when the caller already has
    it; otherwise it is computed here."""
    view, outcome = _file(ctx, fb, actor, classification, lambda s, tid: _detail(ctx, s, tid))
    return Filed(view, outcome)


def record_feedback(
    ctx: Context,
    fb: FeedbackIn,
    *,
    actor: str = "system",
    classification: Classification | None = None,
) -> tuple[str, str]:
    """:func:`file_feedback` without reading the ticket back: its id and the outcome. A bulk
    import files thousands of rows and needs only the counts."""
    return _file(ctx, fb, actor, classification, lambda s, tid: tid)


def _file(
    ctx: Context,
    fb: FeedbackIn,
    actor: str,
    classification: Classification | None,
    answer: Callable[[Session, str], _T],
) -> tuple[_T, str]:
    check(fb)
    now = ctx.now()
    received_at = fb.received_at or now
    key = digest(fb, received_at)
    read = extract(fb.text)  # the text's work before the write lock: it needs no database
    c = classification or ctx.classifier().predict(fb.text)
    with ctx.sessions.begin() as s:
        serialize(s, *_FEEDBACK_LOCK)
        seen = s.scalars(select(Feedback).where(Feedback.digest == key)).first()
        if seen is not None:
            return answer(s, seen.ticket_id), "duplicate"
        dev = _unit(s, fb, read)
        model = dev.model if dev else (fb.model or read.model)
        contact = normalise_contact(fb.contact)
        complaint = _complaint(fb, received_at, read, contact)
        ticket = _repeat_of(s, ctx.policy.repeat_similarity, dev, contact, c, fb.text)
        if ticket is not None:
            _add_repeat(s, ticket, complaint, now, actor)
            outcome = "repeat"
        else:
            ticket = _open(s, ctx, fb, received_at, read, dev, model, c, contact, complaint, now)
            _opened_by(s, ticket, now, c, fb.channel, actor)
            _join_batch(s, ctx.policy, ticket, complaint, now)
            outcome = "opened"
        raise_repeat_alert(s, ctx.policy, ticket, dev, complaint, now)
        s.add(
            Feedback(
                digest=key,
                ticket_id=ticket.id,
                outcome=outcome,
                channel=fb.channel,
                received_at=received_at,
                recorded_at=now,
                actor=actor,
                text=fb.text,
                customer={"name": fb.customer_name, "contact": fb.contact},
                model=fb.model or read.model,
                serial=fb.serial or read.serial,
                device=dev.device if dev else fb.device,
                purchase_date=None if fb.purchase_date is None else fb.purchase_date.isoformat(),
                demand=fb.demand or read.demand,
                extracted=_extracted(read),
                classification=_classification(c),
            )
        )
        s.flush()
        return answer(s, ticket.id), outcome


def _detail(ctx: Context, s: Session, ticket_id: str) -> TicketView:
    t = s.get(Ticket, ticket_id)
    if t is None:  # pragma: no cover - the feedback row's foreign key keeps it
        raise TicketNotFound(ticket_id)
    return detail(s, ctx.policy, t, ctx.now())


def _unit(s: Session, fb: FeedbackIn, read: Extracted) -> Device | None:
    """The registered unit the feedback names by device id or serial, if any."""
    if fb.device:
        dev = s.get(Device, fb.device)
        if dev is not None:
            return dev
    for serial in (fb.serial, read.serial):
        if serial and serial.strip():
            dev = s.scalars(
                select(Device)
                .where(func.upper(Device.serial) == serial.strip().upper())
                .order_by(Device.device)
                .limit(1)
            ).first()
            if dev is not None:
                return dev
    return None


def _repeat_of(
    s: Session,
    threshold: float,
    dev: Device | None,
    contact: str | None,
    c: Classification,
    text: str,
) -> Ticket | None:
    same: list[Any] = []
    if dev is not None:
        same.append((Ticket.device == dev.device) & (Ticket.scope == "device"))
    if contact is not None:
        by_contact = Ticket.contact == contact
        if dev is not None:  # the same customer's other unit is another problem
            by_contact &= Ticket.device.is_(None) | (Ticket.device == dev.device)
        same.append(by_contact)
    if not same:
        return None
    open_ = Ticket.status != Status.CLOSED
    order = (Ticket.opened_at, Ticket.id)
    ticket = s.scalars(
        select(Ticket).where(open_, same_problem(c.fault, c.category), or_(*same)).order_by(*order)
    ).first()
    if ticket is not None or dev is None:
        return ticket
    for other in s.scalars(  # the same unit, nearly the same words, another classification
        select(Ticket)
        .where(open_, Ticket.device == dev.device, Ticket.source == "feedback")
        .order_by(*order)
    ):
        words = [e.get("text", "") for e in other.evidence.get("complaints", [])]
        if any(similarity(text, w) >= threshold for w in words):
            return other
    return None


def _complaint(
    fb: FeedbackIn, received_at: datetime, read: Extracted, contact: str | None
) -> dict[str, Any]:
    """A complaint's line in a ticket's evidence: the customer's words verbatim."""
    entry: dict[str, Any] = {
        "channel": fb.channel,
        "received_at": received_at.isoformat(),
        "text": fb.text,
        "customer": fb.customer_name,
        "contact": fb.contact,
        "demand": fb.demand or read.demand,
        "serial": fb.serial or read.serial,
        "model": fb.model or read.model,
        "purchase_date": None if fb.purchase_date is None else fb.purchase_date.isoformat(),
    }
    return {k: v for k, v in entry.items() if v is not None} | {"contact_key": contact}


def _extracted(read: Extracted) -> dict[str, Any]:
    return {
        "model": read.model,
        "serial": read.serial,
        "dates": [d.isoformat() for d in read.dates],
        "temperatures": [{"value_c": t.value_c, "kind": t.kind} for t in read.temperatures],
        "error_codes": list(read.error_codes),
        "demand": read.demand,
    }


def _classification(c: Classification) -> dict[str, Any]:
    return c.as_contract() | {
        "priority": c.priority,
        "departments": list(c.departments),
        "rule": c.rule,
    }


def _add_repeat(
    s: Session, t: Ticket, complaint: dict[str, Any], now: datetime, actor: str
) -> None:
    t.repeats = (t.repeats or 0) + 1
    complaints = [*t.evidence.get("complaints", []), complaint]
    t.evidence = {**t.evidence, "complaints": complaints}
    t.updated_at = now
    note = f"repeat #{t.repeats} via {complaint['channel']}: {complaint['text'][:200]}"
    write_history(s, t, now, HistoryKind.REPEAT, actor=actor, note=note)
    if t.parent:
        parent = s.get(Ticket, t.parent)
        if parent is not None:
            count_complaint(s, parent, t.id, complaint, now)


def _open(
    s: Session,
    ctx: Context,
    fb: FeedbackIn,
    received_at: datetime,
    read: Extracted,
    dev: Device | None,
    model: str | None,
    c: Classification,
    contact: str | None,
    complaint: dict[str, Any],
    now: datetime,
) -> Ticket:
    serial = fb.serial or read.serial
    unit: dict[str, Any] = {"device": dev.device if dev else fb.device, "serial": serial}
    if serial or fb.device:
        unit["matched"] = dev is not None
    batch_units = 0
    if dev is not None:
        unit |= {"model": dev.model, "batch": dev.batch}
        batch_units = s.scalar(
            select(func.count()).where(Device.model == dev.model, Device.batch == dev.batch)
        )
        if fb.model and fb.model.upper() != dev.model.upper():
            unit["model_given"] = fb.model  # the form and the unit disagree: keep both
    ticket = Ticket(
        id=next_ticket_id(s, now),
        scope="device" if dev else "customer",
        model=model,
        batch=dev.batch if dev else None,
        device=dev.device if dev else None,
        fault=c.fault,
        category=c.category,
        severity=c.severity,
        priority=c.priority,
        department=c.department,
        departments=list(c.departments),
        status=Status.OPEN.value,
        affected_devices=1 if dev else 0,
        batch_devices=batch_units,
        detected_at=received_at,
        opened_at=now,
        due_at=now + ctx.policy.ack_deadline(c.priority),
        updated_at=now,
        evidence={"complaints": [complaint], "unit": unit, "extracted": _extracted(read)},
        cycle=0,
        cycle_at=now,
        source="feedback",
        channel=fb.channel,
        classification=_classification(c),
        parent=None,
        repeats=0,
        contact=contact,
    )
    s.add(ticket)
    s.flush()
    return ticket


def _opened_by(
    s: Session, ticket: Ticket, now: datetime, c: Classification, channel: str, actor: str
) -> None:
    """The opening entry of a feedback ticket, in the name of whoever filed it."""
    note = f"{channel}: {c.category}" + (f" / {c.fault}" if c.fault else "")
    if c.needs_triage:
        note += f" (confidence {c.confidence:.2f}: needs triage)"
    write_history(s, ticket, now, HistoryKind.OPENED, actor=actor, to_status=Status.OPEN, note=note)


def _join_batch(
    s: Session, policy: TicketPolicy, t: Ticket, complaint: dict[str, Any], now: datetime
) -> None:
    """Join the open batch ticket of ``t``'s unit's batch for the same problem; without one,
    open it if the batch now stands out by its complaints (``complaint_batches.py``)."""
    if t.device is None or t.model is None or t.batch is None:
        return
    serialize(s, t.model, t.fault or t.category)
    batch = find_batch_ticket(s, t.model, t.batch, t.fault, t.category)
    if batch is not None:
        adopt(s, batch, t, now, complaints=[complaint])
    else:
        open_if_standing_out(s, policy, t, now)


def correct(
    ctx: Context,
    ticket_id: str,
    *,
    actor: str,
    category: str,
    fault: str | None,
    severity: str,
    note: str | None = None,
) -> TicketView:
    """A person's correction of a feedback ticket's classification: the ticket is regraded and
    rerouted, and the correction is kept to retrain the classifier. Raises
    :class:`InvalidFeedback` for a fault outside the category or a ticket not from feedback."""
    if category not in FEEDBACK_CATEGORIES:
        raise InvalidFeedback("category", f"unknown category {category!r}")
    if fault is not None and FAULTS.get(fault) != category:
        raise InvalidFeedback("fault", f"fault {fault!r} is not in category {category!r}")
    if severity not in ("I", "II", "III"):
        raise InvalidFeedback("severity", f"unknown severity {severity!r}; one of I, II, III")
    now = ctx.now()
    with ctx.sessions.begin() as s:
        t = lock_ticket(s, ticket_id)
        first = s.scalars(
            select(Feedback).where(Feedback.ticket_id == t.id).order_by(Feedback.id)
        ).first()
        if first is None:
            raise InvalidFeedback("ticket", f"{ticket_id} did not come from feedback")
        before = dict(t.classification or {})
        routed = departments(category, fault, first.text)
        priority = "urgent" if category == "safety" else PRIORITY[severity]
        device = t.device
        try:
            with s.begin_nested():
                t.category, t.fault, t.severity, t.priority = category, fault, severity, priority
                t.department, t.departments = routed[0], list(routed)
                t.classification = before | {
                    "category": category,
                    "fault": fault,
                    "severity": severity,
                    "department": routed[0],
                    "departments": list(routed),
                    "priority": priority,
                    "needs_triage": False,
                    "corrected_by": actor,
                }
                t.updated_at = now
                s.flush()
        except IntegrityError as exc:
            raise TicketConflict(
                f"{ticket_id}: unit {device} already has an open ticket for {fault}; "
                "work on that one"
            ) from exc
        s.add(
            FeedbackCorrection(
                ticket_id=t.id,
                at=now,
                actor=actor,
                text=first.text,
                category=category,
                fault=fault,
                severity=severity,
                before=before,
            )
        )
        was = "/".join(str(before.get(k) or "—") for k in ("category", "fault", "severity"))
        text = f"classification {was} → {category}/{fault or '—'}/{severity}"
        write_history(
            s,
            t,
            now,
            HistoryKind.RECLASSIFIED,
            actor=actor,
            note=text + (f": {note}" if note else ""),
        )
        s.flush()
        return detail(s, ctx.policy, t, now)
