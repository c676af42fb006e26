"""Findings and devices in: detector findings and birth messages become stored state, and the
fault's tickets are evaluated (``decisions.py``).

Flow of :func:`record_finding`: store the finding (``findings`` log), update the device's current
state for that fault (``device_faults``; an older finding arriving late does not overwrite a newer
state), judge the pending fixes it concerns, then re-evaluate the finding's (model, fault) across
all batches of the model and open or update tickets. Everything happens in one transaction and
the changes are returned so the worker can log them.

**At most once.** A finding's identity is (device, fault, ts, active): what a detector
concludes about one unit at one event time, which a replay of the same readings concludes again.
A worker that crashed replays what it had journaled but not yet seen through to the ticket
database (``cloud/worker.py``), so a finding may come twice; the second is ignored (no row, no
state, no ticket change), and the unique index ``uq_findings_identity`` makes that a database
rule for workers writing at once. ``score``, ``onset_ts`` and the evidence are not part of it:
they are the same on a replay, and a finding that differed only in them would still be one
statement about the unit at that time.

**Unregistered devices.** A finding for a device with no birth message yet is stored with model
and batch unknown and opens no ticket: without a batch there is nothing to compare with. When the
device registers, its earlier findings get its model and batch and its active faults are
evaluated then (:func:`register_device` returns the resulting changes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.anomaly.base import Finding
from cloud.ticketing import identity
from cloud.ticketing.context import Context, serialize
from cloud.ticketing.decisions import evaluate
from cloud.ticketing.history import TicketChange
from cloud.ticketing.models import Device, DeviceFault, FindingRecord
from cloud.ticketing.verification import verify_pending


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device's identity as announced in its birth message (CONTRACTS.md §1)."""

    device: str
    product: str
    model: str
    batch: str
    serial: str
    firmware: str
    first_seen_ts: float
    last_seen_ts: float


def register_device(ctx: Context, record: DeviceRecord) -> list[TicketChange]:
    """Insert or update a device from its birth message (idempotent).

    A new device adopts its earlier findings and has its active faults evaluated; the resulting
    ticket changes are returned. A known device that announces another product, model or batch
    keeps its identity: the announcement waits for a person (``identity.py``).
    """
    now = ctx.now()
    with ctx.sessions.begin() as s:
        dev = s.get(Device, record.device)
        if dev is None:
            dev = Device(**{f: getattr(record, f) for f in DeviceRecord.__slots__})
            s.add(dev)
            return identity.place(s, ctx, dev, now)
        identity.hold(s, dev, identity.identity_of(record), record.last_seen_ts, now)
        dev.serial, dev.firmware = record.serial, record.firmware
        dev.first_seen_ts = min(dev.first_seen_ts, record.first_seen_ts)
        dev.last_seen_ts = max(dev.last_seen_ts, record.last_seen_ts)
        return []


def touch_devices(
    ctx: Context, last_seen: Mapping[str, float], lost_seqs: Mapping[str, int] | None = None
) -> list[TicketChange]:
    """Advance each device's last event time seen (never moves it back); unknown ids ignored.

    A unit under verification that has now run past the window without clearing fails its
    fix; the resulting changes are returned. ``lost_seqs``: units' lost seq counts as the
    worker now counts them (``Ingestor.lost_seqs``; the worker passes only changed ones).
    """
    if lost_seqs:
        _record_lost_seqs(ctx, lost_seqs)
    if not last_seen:
        return []
    with ctx.sessions.begin() as s:
        conn = s.connection()
        sql, params_of = _touch_statement(conn.dialect)
        # the statement as the dialect's driver takes it, its parameters built here: a worker
        # touches every unit whose judged time moved, once per micro-batch, and SQLAlchemy's
        # own processing of each row's parameters cost as much as the update itself
        conn.exec_driver_sql(sql, [params_of(d, float(ts)) for d, ts in last_seen.items()])
        return verify_pending(s, ctx.policy, ctx.now(), devices=set(last_seen))


_TOUCH = (
    update(Device.__table__)
    .where(Device.__table__.c.device == bindparam("b_device"))
    .where(Device.__table__.c.last_seen_ts < bindparam("b_ts"))
    .values(last_seen_ts=bindparam("b_ts"))
)
_touch_compiled: dict[tuple[str, str], tuple[str, Callable[[str, float], object]]] = {}


def _touch_statement(dialect: Dialect) -> tuple[str, Callable[[str, float], object]]:
    """:data:`_TOUCH` compiled for ``dialect``, and what makes one row's parameters for it
    from (device, ts): a tuple in the statement's order for a positional paramstyle (``?``,
    ``%s``), else a mapping by name (``%(b_ts)s``). The values are a str and a float, which
    the drivers take as they are (the columns' types have no bind processing for them)."""
    key = (dialect.name, dialect.paramstyle)
    found = _touch_compiled.get(key)
    if found is None:
        compiled = _TOUCH.compile(dialect=dialect)
        if compiled.positiontup:
            pick = itemgetter(*(0 if k == "b_device" else 1 for k in compiled.positiontup))
            found = (compiled.string, lambda d, ts: pick((d, ts)))
        else:
            found = (compiled.string, lambda d, ts: {"b_device": d, "b_ts": ts})
        _touch_compiled[key] = found
    return found


def _record_lost_seqs(ctx: Context, lost_seqs: Mapping[str, int]) -> None:
    table = Device.__table__
    stmt = (
        update(table)
        .where(table.c.device == bindparam("b_device"))
        .values(lost_seqs=bindparam("b_lost"))
    )
    with ctx.sessions.begin() as s:
        s.connection().execute(
            stmt, [{"b_device": d, "b_lost": int(n)} for d, n in lost_seqs.items()]
        )


def record_finding(ctx: Context, finding: Finding) -> list[TicketChange]:
    """Store ``finding``, re-evaluate its (model, fault) and open or update tickets; a finding
    stored before (the same identity) changes nothing and returns no changes."""
    try:
        return _record(ctx, finding)
    except IntegrityError:
        with ctx.readers() as s:  # stored by another transaction since this one looked
            if _recorded(s, finding):
                return []
        raise


def _recorded(s: Session, f: Finding) -> bool:
    """Whether a finding with ``f``'s identity is stored."""
    t = FindingRecord
    same = (t.device == f.device, t.fault == f.fault, t.ts == f.ts, t.active == f.active)
    return bool(s.scalar(select(exists().where(*same))))


def _record(ctx: Context, finding: Finding) -> list[TicketChange]:
    now = ctx.now()
    with ctx.sessions.begin() as s:
        if _recorded(s, finding):
            return []
        dev = s.get(Device, finding.device)
        s.add(
            FindingRecord(
                device=finding.device,
                model=dev.model if dev else None,
                batch=dev.batch if dev else None,
                fault=finding.fault,
                ts=finding.ts,
                onset_ts=finding.onset_ts,
                score=finding.score,
                evidence={k: float(v) for k, v in finding.evidence.items()},
                active=finding.active,
                received_at=now,
            )
        )
        state = s.get(DeviceFault, (finding.device, finding.fault))
        if state is not None and finding.ts < state.last_ts:
            # a late, older finding: the newer state stands, but the log may decide a fix
            return verify_pending(s, ctx.policy, now, {finding.device}, finding.fault)
        new_episode = finding.active and (state is None or not state.active)
        state = _apply_finding(s, state, finding)
        if dev is None:
            return []
        dev.last_seen_ts = max(dev.last_seen_ts, finding.ts)
        s.flush()
        serialize(s, dev.model, finding.fault)
        changes = verify_pending(s, ctx.policy, now, {finding.device}, finding.fault)
        relapse_ts = finding.ts if new_episode else None
        return changes + evaluate(s, ctx.policy, dev, state, now, relapse_ts)


def _apply_finding(s: Session, state: DeviceFault | None, f: Finding) -> DeviceFault:
    evidence = {k: float(v) for k, v in f.evidence.items()}
    if state is None:
        state = DeviceFault(
            device=f.device,
            fault=f.fault,
            active=f.active,
            first_ts=f.ts,
            onset_ts=f.onset_ts,
            last_ts=f.ts,
            score=f.score,
            evidence=evidence,
        )
        s.add(state)
        return state
    if f.active and not state.active:  # a new episode of the fault
        state.first_ts, state.onset_ts = f.ts, f.onset_ts
    state.active, state.last_ts, state.score, state.evidence = f.active, f.ts, f.score, evidence
    return state
