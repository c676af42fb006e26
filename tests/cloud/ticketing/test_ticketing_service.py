"""TicketService, policy, ids and lifecycle, against SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.ticketing import decisions
from cloud.ticketing.db import make_engine
from cloud.ticketing.errors import TicketConflict
from cloud.ticketing.history import ChangeKind
from cloud.ticketing.ids import format_ticket_id, parse_ticket_id
from cloud.ticketing.lifecycle import (
    Action,
    IllegalAction,
    IllegalTransition,
    Status,
    check_action,
    check_transition,
    legal_targets,
)
from cloud.ticketing.models import Device, FindingRecord, Ticket
from cloud.ticketing.policy import (
    TEST_BEYOND_BACKGROUND,
    BatchCounts,
    TicketPolicy,
    adjust,
    compare_batches,
)
from cloud.ticketing.service import TicketService
from tests import ticketing_support as support
from tests.ticketing_support import (
    DAY,
    MODEL,
    NOW_TS,
    T0,
    Clock,
    dev_id,
    finding,
    open_tickets,
    record,
    register_fleet,
)

clock, db_url, engine, svc = support.clock, support.db_url, support.engine, support.svc  # fixtures


# --- batch statistics --------------------------------------------------------------------------
def test_batch_with_8_of_20_affected_gets_one_batch_ticket(svc: TicketService) -> None:
    register_fleet(svc)
    for u in range(8):
        svc.record_finding(finding(dev_id(0, u), ts=NOW_TS + u))

    batch_tickets = open_tickets(svc, scope="batch")
    assert len(batch_tickets) == 1
    t = svc.get_ticket(batch_tickets[0].id)
    assert (t.model, t.batch, t.device, t.fault) == (MODEL, "B0", None, "cooling_decline")
    assert (t.affected_devices, t.batch_devices) == (8, 20)
    assert t.category == "performance"
    assert (t.severity, t.priority) == ("III", "urgent")  # 40 % of the batch
    assert (t.department, t.departments) == ("R&D", ["R&D", "Production"])
    assert t.evidence["p_adjusted"] < 0.01
    assert t.evidence["share"] == pytest.approx(0.4)
    assert {e["device"] for e in t.evidence["devices"]} == {dev_id(0, u) for u in range(8)}
    assert t.detected_at == datetime.fromtimestamp(NOW_TS, UTC)
    assert t.due_at - t.opened_at == timedelta(hours=1)
    # the device tickets opened before the batch stood out were folded into it
    assert open_tickets(svc, scope="device") == []
    merged = [x for x in svc.tickets(scope="device").items]
    assert merged and all(x.status == "closed" for x in merged)
    assert svc.get_ticket(merged[0].id).history[-1].note == f"merged into {t.id}"
    assert sorted(t.evidence["merged_tickets"]) == sorted(x.id for x in merged)


def test_healthy_batch_with_one_false_finding_gets_no_batch_ticket(svc: TicketService) -> None:
    register_fleet(svc)
    changes = svc.record_finding(finding(dev_id(0, 0)))
    assert [c.kind for c in changes] == [ChangeKind.OPENED]
    assert changes[0].scope == "device"
    assert open_tickets(svc, scope="batch") == []
    (ticket,) = open_tickets(svc)
    assert (ticket.device, ticket.severity, ticket.priority) == (dev_id(0, 0), "I", "low")


def test_device_tickets_can_be_switched_off(engine, clock) -> None:
    svc = TicketService(engine, clock, TicketPolicy(device_tickets=False))
    register_fleet(svc)
    assert svc.record_finding(finding(dev_id(0, 0))) == []
    assert open_tickets(svc) == []


def test_new_affected_units_update_the_ticket_never_a_second(svc: TicketService) -> None:
    register_fleet(svc)
    for u in range(5):
        svc.record_finding(finding(dev_id(0, u)))
    (ticket,) = open_tickets(svc, scope="batch")
    assert (ticket.affected_devices, ticket.severity) == (5, "II")

    changes = svc.record_finding(finding(dev_id(0, 5)))
    kinds = [c.kind for c in changes]
    assert kinds == [ChangeKind.UPDATED, ChangeKind.SEVERITY_RAISED]
    assert {c.ticket_id for c in changes} == {ticket.id}
    (again,) = open_tickets(svc, scope="batch")
    assert again.id == ticket.id
    assert (again.affected_devices, again.severity, again.priority) == (6, "III", "urgent")
    # the same unit reporting again changes nothing
    assert svc.record_finding(finding(dev_id(0, 5), ts=NOW_TS + 60)) == []


def test_recovered_unit_stays_listed_and_is_noted(svc: TicketService) -> None:
    register_fleet(svc)
    for u in range(6):
        svc.record_finding(finding(dev_id(0, u)))
    changes = svc.record_finding(finding(dev_id(0, 0), ts=NOW_TS + 3600, active=False))
    assert [c.kind for c in changes] == [ChangeKind.RECOVERED]
    t = svc.get_ticket(changes[0].ticket_id)
    assert t.affected_devices == 6
    entry = next(e for e in t.evidence["devices"] if e["device"] == dev_id(0, 0))
    assert entry["active"] is False
    # a late, older finding does not undo the recovery
    assert svc.record_finding(finding(dev_id(0, 0), ts=NOW_TS)) == []


def test_finding_for_unregistered_device_waits_for_registration(svc: TicketService, engine) -> None:
    register_fleet(svc)
    assert svc.record_finding(finding("ac-new")) == []
    with Session(engine) as s:
        row = s.scalars(select(FindingRecord).where(FindingRecord.device == "ac-new")).one()
        assert (row.model, row.batch) == (None, None)
    changes = svc.register_device(record("ac-new", "B3"))
    assert [(c.kind, c.device) for c in changes] == [(ChangeKind.OPENED, "ac-new")]
    with Session(engine) as s:
        row = s.scalars(select(FindingRecord).where(FindingRecord.device == "ac-new")).one()
        assert (row.model, row.batch) == (MODEL, "B3")
    assert svc.register_device(record("ac-new", "B3")) == []  # idempotent


def test_touch_devices_only_moves_forward(svc: TicketService, engine) -> None:
    register_fleet(svc, batches=1, units=2)
    svc.touch_devices({dev_id(0, 0): NOW_TS + DAY, dev_id(0, 1): T0, "unknown": 1.0})
    with Session(engine) as s:
        assert s.get(Device, dev_id(0, 0)).last_seen_ts == NOW_TS + DAY
        assert s.get(Device, dev_id(0, 1)).last_seen_ts == NOW_TS


def test_safety_fault_is_urgent_and_routed(svc: TicketService) -> None:
    register_fleet(svc)
    (change,) = svc.record_finding(finding(dev_id(2, 3), fault="overcurrent"))
    t = svc.get_ticket(change.ticket_id)
    assert (t.category, t.severity, t.priority) == ("safety", "III", "urgent")
    assert (t.department, t.departments) == ("R&D", ["R&D", "Quality"])


@pytest.mark.parametrize(
    ("fault", "departments"),
    [
        ("noise_rise", ("Production",)),
        ("vibration_rise", ("Production",)),
        ("sensor_stuck", ("Purchasing",)),
        ("device_offline", ("Service",)),
        ("something_new", ("Quality",)),
    ],
)
def test_routing_table(fault: str, departments: tuple[str, ...]) -> None:
    from contract.faults import category

    assert TicketPolicy().departments(fault, category(fault), MODEL) == departments


def test_grading_table() -> None:
    p = TicketPolicy()
    assert p.severity("performance", 6, 0.30) == "III"
    assert p.severity("performance", 20, 0.05) == "III"
    assert p.severity("performance", 3, 0.10) == "II"
    assert p.severity("performance", 3, 0.09) == "I"
    assert p.severity("safety", 1, 0.0) == "III"
    assert [p.priority("performance", s) for s in ("I", "II", "III")] == ["low", "normal", "urgent"]


def test_exposure_matters() -> None:
    # 3 of 20 affected: a batch with far more days in the field than the rest is not suspicious
    young = [BatchCounts("B0", 20, 20 * 30.0, 3)] + [
        BatchCounts(f"B{i}", 20, 20 * 30.0, 0) for i in range(1, 8)
    ]
    old = [BatchCounts("B0", 20, 20 * 3000.0, 3)] + young[1:]
    assert compare_batches(young, TicketPolicy(alpha=0.05))[0].p_value < 0.01
    assert compare_batches(old, TicketPolicy(alpha=0.05))[0].p_value > 0.5


def test_single_batch_model_uses_background_rate() -> None:
    (r,) = compare_batches([BatchCounts("B0", 20, 600.0, 5)], TicketPolicy())
    assert r.stands_out and "background" in r.test


def test_a_batch_beside_one_small_reference_stands_out_by_the_background_rate_too() -> None:
    """3 of 20 units alarmed over 4 days against 0 of 20 in the model's one other batch: the
    conditional test cannot tell (p 0.125), the background rate (5e-4 per unit-day) can; with
    it, a problem every batch of a model shares shows on each, and one alarm does not."""
    policy = TicketPolicy()
    counts = [BatchCounts("A", 20, 80.0, 3), BatchCounts("B", 20, 80.0, 0)]
    alone = compare_batches(counts, policy)
    assert not alone[0].stands_out and alone[0].p_value == pytest.approx(0.125)
    both = compare_batches(counts, policy, background=True)
    assert both[0].stands_out and both[0].test == TEST_BEYOND_BACKGROUND
    assert both[0].p_adjusted < 0.01 and not both[1].stands_out
    shared = [BatchCounts("A", 20, 80.0, 4), BatchCounts("B", 20, 80.0, 4)]
    assert [r.stands_out for r in compare_batches(shared, policy)] == [False, False]
    assert [r.stands_out for r in compare_batches(shared, policy, background=True)] == [True] * 2
    one = [BatchCounts("A", 20, 80.0, 1), BatchCounts("B", 20, 80.0, 0)]
    assert not any(r.stands_out for r in compare_batches(one, policy, background=True))
    # a long-fielded batch: 3 alarms in 20 units over 100 days is what healthy units give
    old = [BatchCounts("A", 20, 2000.0, 3), BatchCounts("B", 20, 2000.0, 0)]
    assert not any(r.stands_out for r in compare_batches(old, policy, background=True))


def test_adjustments() -> None:
    p = [0.01, 0.04, 0.03, 0.5]
    assert adjust(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert adjust(p, "bh") == pytest.approx([0.04, 0.05333333, 0.05333333, 0.5])


# --- database rules ----------------------------------------------------------------------------
def _ticket(tid: str, *, scope: str = "batch", device: str | None = None, status: str = "open"):
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return Ticket(
        id=tid, scope=scope, model=MODEL, batch="B0", device=device, fault="noise_rise",
        category="workmanship", severity="I", priority="low", department="Production",
        departments=["Production"], status=status, affected_devices=1, batch_devices=20,
        detected_at=at, opened_at=at, due_at=at, updated_at=at, evidence={}, cycle_at=at,
    )  # fmt: skip


def test_database_allows_one_open_batch_ticket_per_key(engine) -> None:
    with Session(engine) as s, s.begin():
        s.add(_ticket("PF202611001", status="closed"))
        s.add(_ticket("PF202611002"))  # a closed one does not count
    with pytest.raises(IntegrityError), Session(engine) as s, s.begin():
        s.add(_ticket("PF202611003", status="in_progress"))


def test_database_allows_one_open_device_ticket_per_key(engine) -> None:
    with Session(engine) as s, s.begin():
        s.add(_ticket("PF202611001", scope="device", device="ac-1"))
        s.add(_ticket("PF202611002", scope="device", device="ac-2"))
    with pytest.raises(IntegrityError), Session(engine) as s, s.begin():
        s.add(_ticket("PF202611003", scope="device", device="ac-1", status="reopened"))


def test_two_services_on_one_sqlite_file_share_the_key(tmp_path, clock) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    worker, api = make_engine(url), make_engine(url)
    a, b = TicketService(worker, clock), TicketService(api, clock)
    register_fleet(a)
    a.record_finding(finding(dev_id(1, 1)))
    b.record_finding(finding(dev_id(1, 1), ts=NOW_TS + 5))
    assert len(open_tickets(b)) == 1
    worker.dispose()
    api.dispose()


# --- ids ---------------------------------------------------------------------------------------
def test_ids_count_per_month_and_restart(svc: TicketService, clock: Clock) -> None:
    register_fleet(svc)
    clock.now = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    first = svc.record_finding(finding(dev_id(0, 0)))[0].ticket_id
    second = svc.record_finding(finding(dev_id(1, 0)))[0].ticket_id
    clock.now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
    third = svc.record_finding(finding(dev_id(2, 0)))[0].ticket_id
    assert (first, second, third) == ("PF202611001", "PF202611002", "PF202612001")


def test_id_format() -> None:
    at = datetime(2024, 5, 17, tzinfo=UTC)
    assert format_ticket_id(at, 1) == "PF202405001"
    assert format_ticket_id(at, 1234) == "PF2024051234"
    assert parse_ticket_id("PF2024051234") == (2024, 5, 1234)
    with pytest.raises(ValueError):
        parse_ticket_id("PF20241301")


# --- lifecycle ---------------------------------------------------------------------------------
def test_lifecycle_table() -> None:
    path = ["open", "acknowledged", "in_progress", "resolved", "reopened", "in_progress"]
    for a, b in zip(path, path[1:], strict=False):
        assert check_transition(a, b) == Status(b)
    # verifying is entered by recording a fix and left by the data, never by naming the status
    with pytest.raises(IllegalTransition):
        check_transition("resolved", "verifying")
    with pytest.raises(IllegalTransition):
        check_transition("verifying", "closed")
    assert check_action("in_progress", Action.FIX) is Status.VERIFYING
    with pytest.raises(IllegalAction, match="allowed from: in_progress, resolved"):
        check_action("open", Action.FIX, "PF202611001")
    with pytest.raises(IllegalTransition) as err:
        check_transition("open", "closed", "PF202611001")
    assert err.value.allowed == (Status.ACKNOWLEDGED,)
    assert "legal from 'open': acknowledged" in str(err.value)
    assert legal_targets("reopened") == (Status.ACKNOWLEDGED, Status.IN_PROGRESS)


def test_transitions_are_recorded_and_reopen_respects_the_key(svc: TicketService) -> None:
    register_fleet(svc)
    tid = svc.record_finding(finding(dev_id(0, 0)))[0].ticket_id
    for to in ("acknowledged", "closed"):  # dismissed: not a defect
        svc.transition(tid, to, actor="eng", note=f"-> {to}")
    t = svc.get_ticket(tid)
    assert t.status == "closed"
    assert [(h.actor, h.to_status) for h in t.history[-2:]][-1] == ("eng", "closed")
    # the fault comes back: a dismissed ticket is not a verified fix, so a new ticket opens, and
    # the old one cannot be reopened beside it
    svc.record_finding(finding(dev_id(0, 0), ts=NOW_TS + 10, active=False))
    new = svc.record_finding(finding(dev_id(0, 0), ts=NOW_TS + 20))[0].ticket_id
    assert new != tid
    with pytest.raises(TicketConflict):
        svc.transition(tid, "reopened", actor="eng")
    with pytest.raises(IllegalTransition):
        svc.transition(new, "resolved", actor="eng")


def test_losing_the_race_to_open_updates_the_winner(svc: TicketService, monkeypatch) -> None:
    """Another worker opens the batch ticket between our statistics and our insert."""
    register_fleet(svc)
    for u in range(3):  # the batch stands out at its 4th unit
        svc.record_finding(finding(dev_id(0, u), fault="noise_rise"))
    original = decisions._active_states

    def racing(s: Session, model: str, batch: str, fault: str):
        rival = _ticket("PF209901001")  # open batch ticket for (MODEL, B0, noise_rise)
        rival.batch_devices = 19
        s.add(rival)
        s.flush()
        return original(s, model, batch, fault)

    monkeypatch.setattr(decisions, "_active_states", racing)
    changes = svc.record_finding(finding(dev_id(0, 3), fault="noise_rise"))
    assert {c.ticket_id for c in changes} == {"PF209901001"}
    (ticket,) = open_tickets(svc, scope="batch")
    assert (ticket.id, ticket.affected_devices, ticket.batch_devices) == ("PF209901001", 4, 20)
