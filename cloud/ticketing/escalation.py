"""Escalations and alerts, POSTed as JSON to a webhook and e-mailed to department heads.

The SLA check (``overdue.py``) writes one ``sla_escalations`` row per (ticket, cycle, stage) that
went overdue, and filing feedback one per (ticket, cycle, key) of a repeated complaint
(``alerts.py``); the row is the outbox. The check claims due rows (bumping ``attempts`` and
pushing ``next_attempt_at`` out by :func:`cloud.ticketing.sla.backoff` *before* sending, so two
callers never send one row at the same time and a crash retries later) and calls a
:class:`Notifier`. Delivery is at least once: receivers deduplicate on ``escalation_id``.

Notifiers:

- :class:`WebhookNotifier`: the payload as JSON; any 2xx answer counts as delivered.
- :class:`EmailNotifier`: one plain-text e-mail over SMTP (optionally STARTTLS and a login) to
  the head of the payload's ``department`` (``R&D=rd-head@example.com,*=qm@example.com``:
  :func:`parse_recipients`; ``*`` is everyone else's), a summary with the payload as JSON
  below it, a UTF-8 subject like ``[qloop] 重复投诉 repeated complaint PF202612003 (R&D)``. Its
  ``Message-ID`` is made of the ``escalation_id``, so a mail system that deduplicates by it
  drops a retry's second copy.
- :class:`FanOut`: several notifiers (the webhook and e-mail) as one. An escalation counts as
  delivered only when every one of them took it; when one fails the row fails and is retried
  later, to all of them: the outbox has one delivery state per row, and a copy too many is what
  at-least-once delivery allows, while a head never told is what it must not.
"""

from __future__ import annotations

import json
import re
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from contract.clock import utcnow
from contract.errors import QloopError

#: subjects of the events qloop sends, Chinese as the procedures say it, then English
SUBJECTS: dict[str, str] = {
    "repeated_complaint": "重复投诉 repeated complaint",
    "sla_overdue": "超期 overdue",
    "sla_due_soon": "即将到期 due soon",
    "measure_overdue": "措施超期 measure overdue",
    "measure_due_soon": "措施即将到期 measure due soon",
    "target_missed": "目标未达成 target missed",
}
_WITH_STAGE = ("sla_overdue", "sla_due_soon")  # their subject names the SLA stage
ANYONE = "*"  # in a recipients mapping: the address of every department not named
_ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+")


class DeliveryError(QloopError):
    """The receiver did not accept the escalation (network error, non-2xx answer, SMTP error)."""


class RecipientsError(QloopError, ValueError):
    """A recipients list that is not ``DEPARTMENT=ADDRESS`` pairs."""


class Notifier(Protocol):
    max_attempts: int
    retry_base: timedelta
    retry_cap: timedelta

    def send(self, payload: Mapping[str, Any]) -> None:
        """Deliver ``payload`` or raise :class:`DeliveryError`."""


@dataclass(frozen=True, slots=True)
class WebhookNotifier:
    """POSTs each escalation as JSON to ``url``; any 2xx answer counts as delivered."""

    url: str
    timeout_s: float = 5.0
    max_attempts: int = 8
    retry_base: timedelta = timedelta(minutes=1)
    retry_cap: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"escalation webhook must be an http(s) URL, got {self.url!r}")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def send(self, payload: Mapping[str, Any]) -> None:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "qloop-escalation/1"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:  # a non-2xx answer
            raise DeliveryError(f"{self.url} answered {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryError(f"{self.url} unreachable: {exc}") from exc


def parse_recipients(text: str) -> dict[str, str]:
    """Who is e-mailed for which department: ``DEPARTMENT=ADDRESS`` pairs separated by commas,
    ``*`` for every department not named. Raises :class:`RecipientsError` naming the bad pair.

    >>> parse_recipients("R&D=rd-head@example.com, *=quality-manager@example.com")
    {'R&D': 'rd-head@example.com', '*': 'quality-manager@example.com'}
    >>> parse_recipients("R&D:rd@example.com")
    Traceback (most recent call last):
    ...
    cloud.ticketing.escalation.RecipientsError: 'R&D:rd@example.com' is not DEPARTMENT=ADDRESS
    """
    out: dict[str, str] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        department, sep, address = (part.strip() for part in pair.partition("="))
        if not sep or not department or not address:
            raise RecipientsError(f"{pair.strip()!r} is not DEPARTMENT=ADDRESS")
        if not _ADDRESS.fullmatch(address):
            raise RecipientsError(f"{address!r} (for {department}) is not an e-mail address")
        if department in out:
            raise RecipientsError(f"department {department!r} is named twice")
        out[department] = address
    return out


def subject(payload: Mapping[str, Any]) -> str:
    """The e-mail subject of an escalation.

    >>> subject({"event": "sla_overdue", "ticket": "PF202612003", "stage": "cause",
    ...          "department": "R&D"})
    '[qloop] 超期 overdue PF202612003 cause (R&D)'
    """
    event = str(payload.get("event", "escalation"))
    words = ["[qloop]", SUBJECTS.get(event, event), str(payload.get("ticket", ""))]
    if event in _WITH_STAGE and payload.get("stage"):
        words.append(str(payload["stage"]))
    if payload.get("department"):
        words.append(f"({payload['department']})")
    return " ".join(w for w in words if w)


def body(payload: Mapping[str, Any]) -> str:
    """The e-mail text: the payload's plain fields one a line, the complaints' words, then the
    whole payload as JSON (what the webhook receives)."""
    lines = [subject(payload).removeprefix("[qloop] "), ""]
    for key, value in payload.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            lines.append(f"{key}: {value}")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value) and key != "texts":
            lines.append(f"{key}: {', '.join(value)}")
    texts = payload.get("texts") or []
    if texts:
        lines += ["", "complaints:"] + [f"- {t}" for t in texts]
    lines += ["", "-- ", json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True)]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class EmailNotifier:
    """E-mails each escalation to the head of its ``department`` through an SMTP server.

    ``recipients`` maps departments to addresses and must name one for ``*`` (every other
    department); ``clock`` dates the message. Any SMTP or network error, including a refused
    recipient or a server without STARTTLS when ``starttls`` is set, is a :class:`DeliveryError`.
    """

    host: str
    recipients: Mapping[str, str]
    sender: str = "qloop@localhost"
    port: int = 25
    starttls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    max_attempts: int = 8
    retry_base: timedelta = timedelta(minutes=1)
    retry_cap: timedelta = timedelta(hours=1)
    clock: Callable[[], datetime] = field(default=utcnow, repr=False)

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("an SMTP host is needed to send e-mail")
        if ANYONE not in self.recipients:
            raise RecipientsError(
                f"the e-mail recipients need a default ({ANYONE}=ADDRESS) for the departments"
                " they do not name"
            )
        if not _ADDRESS.fullmatch(self.sender):
            raise RecipientsError(f"sender {self.sender!r} is not an e-mail address")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def recipient(self, payload: Mapping[str, Any]) -> str:
        """The address of the head of the payload's department."""
        return self.recipients.get(str(payload.get("department")), self.recipients[ANYONE])

    def message(self, payload: Mapping[str, Any]) -> EmailMessage:
        """The e-mail for ``payload`` (no I/O but the clock)."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = self.recipient(payload)
        msg["Subject"] = subject(payload)
        msg["Date"] = format_datetime(self.clock())
        if "escalation_id" in payload:
            domain = self.sender.rpartition("@")[2]
            msg["Message-ID"] = f"<qloop-escalation-{payload['escalation_id']}@{domain}>"
            msg["X-Qloop-Escalation"] = str(payload["escalation_id"])
        msg.set_content(body(payload), charset="utf-8")
        return msg

    def send(self, payload: Mapping[str, Any]) -> None:
        msg = self.message(payload)
        where = f"smtp://{self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
            raise DeliveryError(f"{where} to {msg['To']}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class FanOut:
    """Sends each escalation through every one of ``notifiers`` (all are tried each time); it
    is delivered when all took it, else :class:`DeliveryError` names those that failed and the
    row is retried for all (see the module's docstring)."""

    notifiers: Sequence[Notifier]
    max_attempts: int = 8
    retry_base: timedelta = timedelta(minutes=1)
    retry_cap: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if not self.notifiers:
            raise ValueError("FanOut needs at least one notifier")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def send(self, payload: Mapping[str, Any]) -> None:
        failed: list[str] = []
        for notifier in self.notifiers:
            try:
                notifier.send(payload)
            except DeliveryError as exc:
                failed.append(f"{type(notifier).__name__}: {exc}")
        if failed:
            raise DeliveryError("; ".join(failed))
