"""A finding is taken into the ticket database at most once (``intake.py``): a worker that
replays what it journaled after a crash hands the same findings over again."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, text

from cloud.ticketing.db import make_engine, migrate
from cloud.ticketing.models import DeviceFault, FindingRecord
from cloud.ticketing.service import TicketService
from tests import ticketing_support as support
from tests.ticketing_support import (
    DAY,
    NOW_TS,
    dev_id,
    finding,
    open_tickets,
    register_fleet,
    run_together,
)

clock, db_url, engine, svc = support.clock, support.db_url, support.engine, support.svc  # fixtures


def _rows(svc: TicketService) -> list[tuple]:
    with svc.engine.connect() as conn:
        return conn.execute(
            select(
                FindingRecord.device, FindingRecord.fault, FindingRecord.ts, FindingRecord.active
            )
        ).all()


def test_the_same_finding_twice_is_stored_and_decided_once(svc: TicketService) -> None:
    register_fleet(svc)
    first = [svc.record_finding(finding(dev_id(0, u), ts=NOW_TS + u)) for u in range(8)]
    assert any(first), "the batch ticket opened"
    (ticket,) = open_tickets(svc, scope="batch")
    history = len(svc.get_ticket(ticket.id).history)
    # the replay: the same findings again, and once more in another order
    again = [svc.record_finding(finding(dev_id(0, u), ts=NOW_TS + u)) for u in range(8)]
    again += [svc.record_finding(finding(dev_id(0, u), ts=NOW_TS + u)) for u in reversed(range(8))]
    assert again == [[]] * 16
    assert len(_rows(svc)) == 8
    assert [t.id for t in open_tickets(svc, scope="batch")] == [ticket.id]
    assert len(svc.get_ticket(ticket.id).history) == history


def test_what_is_not_the_same_finding_is_kept(svc: TicketService) -> None:
    register_fleet(svc)
    d = dev_id(1, 0)
    svc.record_finding(finding(d, ts=NOW_TS))
    svc.record_finding(finding(d, ts=NOW_TS + 1))  # a later time
    svc.record_finding(finding(d, fault="noise_rise", ts=NOW_TS))  # another fault
    svc.record_finding(finding(d, ts=NOW_TS + 2, active=False))  # cleared...
    changes = svc.record_finding(finding(d, ts=NOW_TS + 2))  # ...and back at the same time
    assert len(_rows(svc)) == 5
    assert changes is not None
    with svc.engine.connect() as conn:
        state = conn.execute(
            select(DeviceFault.active, DeviceFault.last_ts).where(
                DeviceFault.device == d, DeviceFault.fault == "cooling_decline"
            )
        ).one()
    assert tuple(state) == (True, NOW_TS + 2)


def test_workers_storing_the_same_finding_at_once_store_it_once(db_url: str, clock) -> None:
    engines = [make_engine(db_url) for _ in range(3)]
    services = [TicketService(e, clock) for e in engines]
    register_fleet(services[0], batches=1, units=4)
    f = finding(dev_id(0, 1), ts=NOW_TS + 5)
    errors = run_together(TicketService.record_finding, [(s, f) for s in services])
    assert errors == []
    assert _rows(services[0]) == [(f.device, f.fault, f.ts, True)]
    for e in engines:
        e.dispose()


def test_the_upgrade_removes_copies_stored_before(db_url: str) -> None:
    engine = make_engine(db_url, upgrade=False)
    migrate(engine, "0008")
    received = datetime(2026, 11, 30, tzinfo=UTC).replace(tzinfo=None)
    rows = [  # the same finding three times, another one once
        ("ac-1", NOW_TS, True),
        ("ac-1", NOW_TS, True),
        ("ac-2", NOW_TS, True),
        ("ac-1", NOW_TS, True),
        ("ac-1", NOW_TS, False),
    ]
    with engine.begin() as conn:
        for device, ts, active in rows:
            conn.execute(
                text(
                    "INSERT INTO findings (device, fault, ts, onset_ts, score, evidence, active,"
                    " received_at) VALUES (:d, 'cooling_decline', :ts, :onset, 0.9, '{}', :a, :r)"
                ),
                {"d": device, "ts": ts, "onset": ts - DAY, "a": active, "r": received},
            )
    migrate(engine)
    with engine.connect() as conn:
        kept = conn.execute(
            select(FindingRecord.id, FindingRecord.device, FindingRecord.active).order_by(
                FindingRecord.id
            )
        ).all()
        n = conn.execute(select(func.count()).select_from(FindingRecord)).scalar_one()
    engine.dispose()
    assert n == 3
    assert [(d, a) for _, d, a in kept] == [("ac-1", True), ("ac-2", True), ("ac-1", False)]
    assert kept[0][0] == 1, "the first received copy is the one kept"
