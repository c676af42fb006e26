"""qloop's tickets in an evaluation run: what the cloud's findings become in a real
:class:`~cloud.ticketing.service.TicketService` (batch test, device tickets, folding), over a
SQLite database in the run's temporary directory.

:class:`EvalTickets` is called as the worker calls the service (``cloud/worker.py``): a birth
registers its unit, a finding first moves its unit's judged event time on and is then recorded,
and after every delivered batch the units the ingest processed are touched, so the batch test
weighs units by their time in the field as it does in production; then the pooled batch test's
findings (``cloud/ingest/pooling.py``) are recorded. The service's clock is the
fleet's event time, so a ticket's ``opened_at`` is the simulated time at which it opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.base import Finding
from cloud.anomaly.peers import PeerFinding
from cloud.anomaly.pooled import BatchFinding
from cloud.ingest.registry import DeviceInfo
from cloud.ticketing.db import make_engine
from cloud.ticketing.intake import DeviceRecord
from cloud.ticketing.models import Ticket
from cloud.ticketing.service import TicketService


@dataclass(frozen=True)
class OpenedTicket:
    """A ticket the run opened: its key and when (event time, Unix seconds)."""

    scope: str  # "batch" or "device"
    model: str
    batch: str
    device: str | None
    fault: str
    opened_ts: float
    opened_by: str = ""  # the batch test that opened a batch ticket (evidence ``opened_by``)


class EvalTickets:
    """A ticket service for one evaluation run, fed as the worker feeds it."""

    def __init__(self, directory: Path, event_time: Callable[[], float]) -> None:
        engine = make_engine(f"sqlite:///{directory / 'tickets.db'}")
        self.service = TicketService(
            engine, lambda: datetime.fromtimestamp(event_time(), UTC)
        )  # fmt: skip

    def birth(self, info: DeviceInfo) -> None:
        seen = info.birth_ts if info.birth_ts is not None else 0.0
        first = info.first_ts if info.first_ts is not None else seen
        last = info.last_ts if info.last_ts is not None else seen
        record = (info.product, info.model, info.batch, info.serial, info.firmware)
        self.service.register_device(DeviceRecord(info.device, *record, first, last))

    def finding(self, finding: Finding, bank: DetectorBank) -> None:
        self.touch([finding.device], bank)
        self.service.record_finding(finding)

    def batch_finding(self, finding: BatchFinding | PeerFinding) -> None:
        """A batch test's finding (pooled shift, peer levels), recorded as the worker does."""
        self.service.record_batch_finding(finding)

    def touch(self, devices: Iterable[str], bank: DetectorBank) -> None:
        """Move each device's event time in ticketing to what its detectors have judged."""
        judged = {d: bank.last_ts(d) for d in devices}
        self.service.touch_devices({d: ts for d, ts in judged.items() if ts > float("-inf")})

    def opened(self) -> list[OpenedTicket]:
        """Every ticket the run opened (closed ones too: a folded device ticket counts)."""
        with Session(self.service.engine) as s:
            rows = s.scalars(select(Ticket).order_by(Ticket.opened_at, Ticket.id)).all()
            return [
                OpenedTicket(
                    t.scope,
                    t.model or "",
                    t.batch or "",
                    t.device,
                    t.fault or "",
                    _aware(t.opened_at).timestamp(),
                    str(t.evidence.get("opened_by", "")),
                )
                for t in rows
            ]

    def close(self) -> None:
        self.service.engine.dispose()


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)
