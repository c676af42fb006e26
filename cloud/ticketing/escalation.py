"""Escalations of overdue tickets, POSTed as JSON to a webhook.

The SLA check (``overdue.py``) writes one ``sla_escalations`` row per (ticket, cycle, stage) that
went overdue; the row is the outbox. The check claims due rows (bumping ``attempts`` and pushing
``next_attempt_at`` out by :func:`cloud.ticketing.sla.backoff` *before* sending, so two callers
never send one row at the same time and a crash retries later) and calls a :class:`Notifier`.
Delivery is at least once: receivers deduplicate on ``escalation_id``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from contract.errors import QloopError


class DeliveryError(QloopError):
    """The receiver did not accept the escalation (network error or non-2xx answer)."""


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
