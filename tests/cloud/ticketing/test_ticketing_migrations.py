"""Alembic owns the ticketing schema: a fresh database upgraded to head equals the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from cloud.ticketing.db import SchemaError, make_engine, migrate
from cloud.ticketing.models import Base
from tests import ticketing_support as support
from tests.ticketing_support import run_together

db_url = support.db_url  # fixture: SQLite and PostgreSQL


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
        assert MigrationContext.configure(conn).get_current_revision() == "0001"
    for e in engines:
        e.dispose()


def test_tables_without_alembic_version_are_refused(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    Base.metadata.create_all(old)  # how the first version of qloop made its schema
    old.dispose()
    with pytest.raises(SchemaError, match="no Alembic version"):
        make_engine(url)
