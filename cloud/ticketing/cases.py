"""Past cases: closed tickets worth learning from, found by what a new ticket says.

**Which tickets are cases.** Closed tickets whose problem was solved: a fix verified (by the
units' data or the quality engineer's check), or the customer's callback satisfied (a complaint
that joined a batch ticket is fixed by the batch's fix and has none of its own). Left out: tickets
dismissed (closed from ``acknowledged``: not a defect) and device tickets merged into a batch
ticket (the batch ticket is the case).

**What is searched** (:class:`~cloud.feedback.bm25.Index`, three weighted fields):

- *problem* (weight 1): the customers' words (``evidence.complaints[].text``), the fault and the
  category as their code name and a bilingual label (``cooling_decline cooling decline
  制冷下降``), so a telemetry ticket, which has no words, meets complaints about its fault in
  either language; and the model;
- *cause* (0.7): the 5-Why chain, the fishbone's causes and the summary;
- *measures* (0.5): the measures' actions and records, and the fixes' descriptions.

A new ticket's similar cases (:func:`similar_cases`) are searched with all of its own text (its
problem, and its cause and measures once recorded); :func:`search_cases` takes a person's query.

**Whether it worked.** A fix worked if it was verified and the problem did not come back after
(no regression, no re-dispatch after a low callback score, later in the ticket's history). A
case worked if its last fix did, or, with no fix of its own, if its last satisfied callback was
not followed by a recurrence.

**Cost.** The cases are read in four queries (the cases, their measures, their fixes, the
history entries that decide "worked"), none per ticket, and indexed in memory. Building takes
about 1 s of CPU with 3 000 cases (0.4 s with 1 000, 3.9 s with 10 000; half reading, half
indexing), too slow for every ticket page, so each context keeps its latest :class:`Library`
(:func:`library`) with the version it was built from: a digest of every case's id and
``updated_at`` (one query, about 40 ms with 3 000 cases). A ticket becoming a case or ceasing
to be one changes the set, and everything that changes a case (its cause, a measure's status)
moves its ``updated_at`` (a clock that stands still hides a change), so the next call rebuilds;
otherwise a search takes 50 ms with 3 000 cases and 150 ms with 10 000, most of it the version
query. The library holds about 18 MB with 3 000 cases.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Exists, Row, Select, select
from sqlalchemy.orm import Session, aliased

from cloud.feedback.bm25 import Index
from cloud.ticketing.context import Context
from cloud.ticketing.errors import TicketNotFound
from cloud.ticketing.history import HistoryKind
from cloud.ticketing.lifecycle import Status
from cloud.ticketing.models import Measure, Ticket, TicketFix, TicketHistory
from cloud.ticketing.verification import Outcome

WEIGHTS = {"problem": 1.0, "cause": 0.7, "measures": 0.5}
EXCERPT_CHARS = 160
#: A ticket's similar cases score at least this share of the best one's; below it a case shares
#: a word or two with the ticket (空调, the model), not its problem.
MIN_SHARE = 0.1
#: The fault and category names in the words people use (English, Chinese).
LABELS = {
    "cooling_decline": "cooling decline 制冷下降", "noise_rise": "noise rise 噪音增大",
    "vibration_rise": "vibration rise 振动增大", "overcurrent": "overcurrent 过流",
    "overheat": "overheat 过热", "sensor_stuck": "sensor stuck 传感器卡滞",
    "clock_skew": "clock skew 时钟偏差", "device_offline": "device offline 设备离线",
    "anomaly": "anomaly 异常", "functional": "functional 功能", "performance": "performance 性能",
    "workmanship": "workmanship 工艺", "material": "material 材料", "service": "service 服务",
    "safety": "safety 安全", "sensor": "sensor 传感器", "connectivity": "connectivity 通信",
}  # fmt: skip
_RECURRED = (HistoryKind.REGRESSION.value, HistoryKind.REDISPATCHED.value)
_DECIDING = (HistoryKind.VERIFIED.value, HistoryKind.SATISFIED.value, *_RECURRED)


@dataclass(frozen=True, slots=True)
class CaseMeasure:
    term: str
    kind: str
    action: str
    status: str
    record: str | None


@dataclass(frozen=True, slots=True)
class CaseFix:
    description: str
    outcome: str  # pending | verified | failed | withdrawn
    worked: bool  # verified, and the problem did not come back after


@dataclass(frozen=True, slots=True)
class Case:
    """A past case as a search answers it; ``fixes`` oldest first."""

    id: str
    model: str | None
    fault: str | None
    category: str
    source: str
    score: float
    problem: str
    root_cause: str | None
    measures: tuple[CaseMeasure, ...]
    fixes: tuple[CaseFix, ...]
    worked: bool

    @property
    def fix(self) -> CaseFix | None:
        """The last fix: the one that closed the case."""
        return self.fixes[-1] if self.fixes else None


@dataclass(frozen=True, slots=True)
class _Record:
    """A ticket with what the search and the summary need; ``ticket`` is a row of
    :data:`_TICKET_COLUMNS`, ``fixes`` rows of (id, description, outcome)."""

    ticket: Row[Any]
    measures: tuple[CaseMeasure, ...]
    fixes: tuple[Row[Any], ...]
    decisions: tuple[tuple[str, dict[str, Any]], ...]  # (action, data), in history order


@dataclass(frozen=True, slots=True)
class Library:
    """The cases (scored 0) and their index as of ``version`` (see :func:`library`)."""

    version: str
    cases: Mapping[str, Case]
    index: Index


#: Each context's latest library: rebuilt when the cases change.
_LIBRARIES: weakref.WeakKeyDictionary[Context, Library] = weakref.WeakKeyDictionary()
_TICKET_COLUMNS = (
    Ticket.id, Ticket.scope, Ticket.model, Ticket.batch, Ticket.device, Ticket.fault,
    Ticket.category, Ticket.source, Ticket.affected_devices, Ticket.cause_analysis,
    Ticket.evidence["complaints"].label("complaints"),  # not a batch ticket's list of units
)  # fmt: skip


# --- the texts -----------------------------------------------------------------------------------
def complaint_texts(complaints: Iterable[Mapping[str, Any]] | None) -> list[str]:
    """The customers' words in a ticket's ``evidence.complaints``."""
    return [str(c["text"]) for c in complaints or () if isinstance(c, Mapping) and c.get("text")]


def problem_text(t: Row[Any]) -> str:
    """What the problem is: the customers' words, the fault and category with their labels, the
    model."""
    names = [n for n in (t.fault, t.category) if n]
    words = [f"{n} {LABELS.get(n, '')}" for n in names]
    return "\n".join([*complaint_texts(t.complaints), *words, t.model or ""])


def cause_text(cause: Mapping[str, Any] | None) -> str:
    """The cause analysis as text: the 5 whys, the fishbone's causes, the summary."""
    if not cause:
        return ""
    branches = (cause.get("fishbone") or {}).values()
    parts = [*(cause.get("five_why") or []), *(c for b in branches for c in b)]
    return "\n".join(str(p) for p in [*parts, cause.get("summary") or ""])


def root_cause(cause: Mapping[str, Any] | None) -> str | None:
    """The deepest why, else the summary.

    >>> root_cause({"five_why": ["no cooling", "gas low", "brazed joint leaks"], "summary": "x"})
    'brazed joint leaks'
    >>> root_cause({"five_why": [], "summary": "packing"}), root_cause(None)
    ('packing', None)
    """
    whys = (cause or {}).get("five_why") or []
    return str(whys[-1]) if whys else (cause or {}).get("summary") or None


def measures_text(measures: Iterable[CaseMeasure], fixes: Iterable[Row[Any]]) -> str:
    actions = [f"{m.action}\n{m.record or ''}" for m in measures]
    return "\n".join([*actions, *(f.description for f in fixes)])


def _excerpt(t: Row[Any]) -> str:
    words = " / ".join(complaint_texts(t.complaints))
    if not words:
        what = t.fault or t.category
        where = f"batch {t.batch} of {t.model}" if t.scope == "batch" else t.device or t.model
        words = f"{what} ({LABELS.get(what, what)}) on {where}, {t.affected_devices} unit(s)"
    return words if len(words) <= EXCERPT_CHARS else words[: EXCERPT_CHARS - 1] + "…"


# --- whether it worked -------------------------------------------------------------------------
def fixes_that_held(decisions: Iterable[tuple[str, Mapping[str, Any]]]) -> set[int]:
    """The ids of the fixes verified and not followed by a recurrence, from the deciding
    history entries in order.

    >>> fixes_that_held([("verified", {"fix": 1}), ("redispatched", {}), ("verified", {"fix": 2})])
    {2}
    >>> fixes_that_held([("verified", {"fix": 1}), ("regression", {"fix": 1})])
    set()
    """
    held: dict[int, bool] = {}
    for action, data in decisions:
        if action == HistoryKind.VERIFIED and isinstance(data.get("fix"), int):
            held[data["fix"]] = True
        elif action in _RECURRED:
            held = dict.fromkeys(held, False)
    return {fix for fix, ok in held.items() if ok}


def _satisfied_last(decisions: Iterable[tuple[str, Mapping[str, Any]]]) -> bool:
    last = None
    for action, _ in decisions:
        if action == HistoryKind.SATISFIED or action in _RECURRED:
            last = action
    return last == HistoryKind.SATISFIED


def _case(r: _Record) -> Case:
    """The summary of a case, scored 0 (a search scores it)."""
    t, held = r.ticket, fixes_that_held(r.decisions)
    fixes = tuple(CaseFix(f.description, f.outcome, f.id in held) for f in r.fixes)
    worked = fixes[-1].worked if fixes else _satisfied_last(r.decisions)
    return Case(
        id=t.id, model=t.model, fault=t.fault, category=t.category,
        source=t.source or "telemetry", score=0.0, problem=_excerpt(t),
        root_cause=root_cause(t.cause_analysis), measures=r.measures, fixes=fixes, worked=worked,
    )  # fmt: skip


# --- loading and searching ---------------------------------------------------------------------
def case_ids() -> Select[tuple[str]]:
    """The ids of the closed tickets that are cases (see the module), over aliases, so the
    query nests in one over the same tables."""
    t, h, f = aliased(Ticket), aliased(TicketHistory), aliased(TicketFix)

    def entry(action: HistoryKind) -> Exists:
        return select(h.id).where(h.ticket_id == t.id, h.action == action.value).exists()

    verified = select(f.id).where(f.ticket_id == t.id, f.outcome == Outcome.VERIFIED.value)
    return select(t.id).where(
        t.status == Status.CLOSED.value,
        ~entry(HistoryKind.MERGED),
        verified.exists() | entry(HistoryKind.SATISFIED),
    )


def _load(s: Session, ids: Select[tuple[str]] | list[str]) -> dict[str, _Record]:
    """The tickets named by ``ids`` (a query of ids, or a list) with their measures, fixes and
    deciding history entries: four queries whatever the number of tickets, columns rather than
    objects (a third of the time at 3 000 cases)."""
    tickets = s.execute(select(*_TICKET_COLUMNS).where(Ticket.id.in_(ids))).all()
    measures: dict[str, list[CaseMeasure]] = {t.id: [] for t in tickets}
    fixes: dict[str, list[Row[Any]]] = {t.id: [] for t in tickets}
    decisions: dict[str, list[tuple[str, dict[str, Any]]]] = {t.id: [] for t in tickets}
    m, f, h = Measure, TicketFix, TicketHistory
    for ticket_id, *measure in s.execute(
        select(m.ticket_id, m.term, m.kind, m.action, m.status, m.record)
        .where(m.ticket_id.in_(ids))
        .order_by(m.id)
    ):
        measures[ticket_id].append(CaseMeasure(*measure))
    for fix in s.execute(
        select(f.ticket_id, f.id, f.description, f.outcome)
        .where(f.ticket_id.in_(ids))
        .order_by(f.id)
    ):
        fixes[fix.ticket_id].append(fix)
    for ticket_id, action, data in s.execute(
        select(h.ticket_id, h.action, h.data)
        .where(h.ticket_id.in_(ids), h.action.in_(_DECIDING))
        .order_by(h.ticket_id, h.seq)
    ):
        decisions[ticket_id].append((action, dict(data or {})))
    return {
        t.id: _Record(t, tuple(measures[t.id]), tuple(fixes[t.id]), tuple(decisions[t.id]))
        for t in tickets
    }


def _fields(r: _Record) -> dict[str, str]:
    return {
        "problem": problem_text(r.ticket),
        "cause": cause_text(r.ticket.cause_analysis),
        "measures": measures_text(r.measures, r.fixes),
    }


def _version(s: Session) -> str:
    """A digest of every case's id and last change: it moves when a ticket becomes a case or
    stops being one, and when a case changes (everything that changes a ticket, its cause and
    its measures included, sets ``updated_at``)."""
    digest = hashlib.blake2b(digest_size=16)
    cases = case_ids().subquery()
    for ticket_id, updated_at in s.execute(
        select(Ticket.id, Ticket.updated_at)
        .join(cases, cases.c.id == Ticket.id)
        .order_by(Ticket.id)
    ):
        digest.update(f"{ticket_id}\0{updated_at.isoformat()}\n".encode())
    return digest.hexdigest()


def library(ctx: Context, s: Session) -> Library:
    """The cases and their index: the context's, unless the cases changed since it was built.

    Two requests that find it stale may both rebuild it; the last one built stays."""
    version = _version(s)
    current = _LIBRARIES.get(ctx)
    if current is None or current.version != version:
        records = _load(s, case_ids())
        index = Index(WEIGHTS)
        for ticket_id, r in records.items():
            index.add(ticket_id, _fields(r))
        cases = {ticket_id: _case(r) for ticket_id, r in records.items()}
        current = _LIBRARIES[ctx] = Library(version, cases, index)
    return current


def _search(
    lib: Library, query: str, k: int, *, leave_out: str | None = None, min_share: float = 0.0
) -> list[Case]:
    hits = [(i, s) for i, s in lib.index.search(query, k + 1) if i != leave_out][:k]
    floor = hits[0][1] * min_share if hits else 0.0
    return [replace(lib.cases[i], score=round(s, 3)) for i, s in hits if s >= floor]


def similar_cases(ctx: Context, ticket_id: str, k: int = 5) -> list[Case]:
    """The ``k`` past cases most like ticket ``ticket_id``, best first (never itself, none
    scoring under :data:`MIN_SHARE` of the best); raises :class:`TicketNotFound`."""
    if k < 1:
        raise ValueError("k must be >= 1")
    with ctx.readers() as s:
        own = _load(s, [ticket_id]).get(ticket_id)
        if own is None:
            raise TicketNotFound(ticket_id)
        query = "\n".join(_fields(own).values())
        return _search(library(ctx, s), query, k, leave_out=ticket_id, min_share=MIN_SHARE)


def search_cases(ctx: Context, query: str, k: int = 20) -> list[Case]:
    """The ``k`` past cases that best match ``query`` (Chinese or English), best first; none
    for a query without a word."""
    if k < 1:
        raise ValueError("k must be >= 1")
    if not query.strip():
        return []
    with ctx.readers() as s:
        return _search(library(ctx, s), query, k)
