"""What the ticket service hands out: tickets as CONTRACTS.md §4 shows them, with their history
and fix, one page at a time.

Plain frozen values, detached from the database session, so the API and the pages can read them
after the transaction is gone. ``queries.py`` builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FixView:
    """A fix record and where its verification stands (per unit while pending, as decided after)."""

    id: int
    recorded_at: datetime
    actor: str
    description: str
    devices: list[str]
    effective_from: float
    outcome: str
    decided_at: datetime | None
    summary: str
    units: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class TicketView:
    """A ticket as CONTRACTS.md §4 describes it, plus its history when asked for."""

    id: str
    scope: str
    model: str | None
    batch: str | None
    device: str | None
    fault: str | None
    category: str
    severity: str
    priority: str
    department: str
    departments: list[str]
    status: str
    affected_devices: int
    batch_devices: int
    detected_at: datetime
    opened_at: datetime
    due_at: datetime
    evidence: dict[str, Any]
    stage: str | None = None
    overdue: bool = False
    overdue_stage: str | None = None
    cycle: int = 0
    source: str = "telemetry"
    channel: str | None = None
    classification: dict[str, Any] | None = None
    parent: str | None = None
    repeats: int = 0
    cause_analysis: dict[str, Any] | None = None
    measures: list[dict[str, Any]] = field(default_factory=list)  # with the history only
    measure_figures: dict[str, Any] | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    fix: FixView | None = None


@dataclass(frozen=True, slots=True)
class TicketPage:
    items: list[TicketView]
    next: str | None
