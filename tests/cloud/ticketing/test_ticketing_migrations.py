"""Alembic owns the ticketing schema: a fresh database upgraded to head equals the models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from cloud.ticketing.audit import AuditReport, verify
from cloud.ticketing.db import SchemaError, alembic_config, make_engine, migrate
from cloud.ticketing.models import Base
from cloud.ticketing.service import TicketService
from tests import ticketing_support as support
from tests.ticketing_support import Clock, run_together

db_url = support.db_url  # fixture: SQLite and PostgreSQL
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_upgraded_database_equals_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
        indexes = {i["name"]: i for i in inspect(conn).get_indexes("tickets")}
    engine.dispose()
    assert diff == []
    assert indexes["uq_tickets_open_batch"]["unique"]
    options = indexes["uq_tickets_open_batch"]["dialect_options"].values()  # a partial index
    assert any("closed" in str(getattr(value, "text", value)) for value in options)


def test_migrating_twice_and_concurrently_is_harmless(db_url: str) -> None:
    engines = [make_engine(db_url, upgrade=False) for _ in range(3)]
    errors = run_together(migrate, [(e,) for e in engines])
    migrate(engines[0])
    assert errors == []
    with engines[0].connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == HEAD
    for e in engines:
        e.dispose()


def test_tables_without_alembic_version_are_refused(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    Base.metadata.create_all(old)  # how the first version of qloop made its schema
    old.dispose()
    with pytest.raises(SchemaError, match="no Alembic version"):
        make_engine(url)


def test_tickets_of_the_first_schema_survive_the_upgrade(db_url: str) -> None:
    """A database at revision 0001 with a telemetry ticket in it upgrades to the head: the
    ticket keeps its fields, becomes ``source = 'telemetry'`` with no repeats, and the
    one-open-ticket rule still holds."""
    engine = make_engine(db_url, upgrade=False)
    migrate(engine, "0001")
    row = {
        "id": "PF202405001", "scope": "batch", "model": "KFR-35GW", "batch": "B1",
        "device": None, "fault": "cooling_decline", "category": "performance",
        "severity": "II", "priority": "normal", "department": "R&D",
        "departments": '["R&D"]', "status": "open", "affected_devices": 3,
        "batch_devices": 20, "evidence": "{}", "cycle": 0,
    }  # fmt: skip
    times = ", ".join(f"'2024-05-17 08:00:00' AS {c}" for c in _TIMES)
    columns = ", ".join(f":{k} AS {k}" for k in row)
    with engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO tickets ({', '.join([*row, *_TIMES])}) SELECT {columns}, {times}"),
            row,
        )
    migrate(engine)
    with engine.connect() as conn:
        got = conn.execute(text("SELECT id, model, source, repeats, parent FROM tickets")).one()
        assert tuple(got) == ("PF202405001", "KFR-35GW", "telemetry", 0, None)
    with pytest.raises(Exception, match="(?i)unique"), engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO tickets ({', '.join([*row, *_TIMES])}) "
                f"SELECT 'PF202405002' AS id, {columns.split(', ', 1)[1]}, {times}"
            ),
            row,
        )
    engine.dispose()


def test_history_written_before_the_chain_is_chained_by_the_upgrade(db_url: str) -> None:
    """A database at revision 0002 with history entries upgrades to the head: each ticket's
    entries are numbered in the order they were written and hashed, the audit verifies them,
    and qloop's next entry continues the chain."""
    engine = make_engine(db_url, upgrade=False)
    migrate(engine, "0002")
    row = {
        "scope": "batch", "model": "KFR-35GW", "batch": "B1", "device": None,
        "fault": "cooling_decline", "category": "performance", "severity": "II",
        "priority": "normal", "department": "R&D", "departments": '["R&D"]', "status": "open",
        "affected_devices": 3, "batch_devices": 20, "evidence": "{}", "cycle": 0,
    }  # fmt: skip
    times = ", ".join(f"'2024-05-17 08:00:00' AS {c}" for c in _TIMES)
    columns = ", ".join(f":{k} AS {k}" for k in row)
    entries = [  # (ticket, at, action, note, data) in the order written, two tickets interleaved
        ("PF202405001", "2024-05-17 08:00:00", "opened", "3/20 units", '{"units": 3}'),
        ("PF202405002", "2024-05-17 08:00:00.250000", "opened", None, "{}"),
        ("PF202405001", "2024-05-17 09:30:00", "comment", "制冷效果下降 — checked", "{}"),
        ("PF202405001", "2024-05-18 10:00:00", "updated", None, '{"ratio": 0.15, "x": [1]}'),
        ("PF202405002", "2024-05-19 10:00:00", "transition", "ack", "{}"),
    ]
    with engine.begin() as conn:
        for n, batch in ((1, "B1"), (2, "B2")):
            conn.execute(
                text(
                    f"INSERT INTO tickets (id, {', '.join([*row, *_TIMES])}) "
                    f"SELECT 'PF20240500{n}' AS id, {columns}, {times}"
                ),
                row | {"batch": batch},
            )
        for ticket, at, action, note, data in entries:
            conn.execute(
                text(
                    "INSERT INTO ticket_history (ticket_id, at, actor, action, note, data) "
                    f"VALUES (:ticket, '{at}', 'system', :action, :note, '{data}')"
                ),
                {"ticket": ticket, "action": action, "note": note},
            )
    migrate(engine)
    with engine.connect() as conn:
        got = conn.execute(
            text("SELECT ticket_id, seq, action FROM ticket_history ORDER BY id")
        ).all()
    assert [tuple(r) for r in got] == [
        ("PF202405001", 1, "opened"),
        ("PF202405002", 1, "opened"),
        ("PF202405001", 2, "comment"),
        ("PF202405001", 3, "updated"),
        ("PF202405002", 2, "transition"),
    ]
    assert verify(engine) == AuditReport(2, 5, ())

    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    TicketService(engine, clock).comment("PF202405001", "after the upgrade", actor="ann")
    report = verify(engine)
    assert report.ok and report.entries == 6
    with engine.begin() as conn:
        conn.execute(text("UPDATE ticket_history SET note = 'ack!' WHERE seq = 2"))
    assert {b.ticket_id for b in verify(engine).broken} == {"PF202405001", "PF202405002"}
    engine.dispose()


_TIMES = ("detected_at", "opened_at", "due_at", "updated_at", "cycle_at")
