"""Engine creation for the ticketing database.

One URL decides the backend: SQLite (the default, a single file shared by a cloud worker process and
the API process) or PostgreSQL. For SQLite every connection runs in WAL mode with a busy timeout,
so readers never block the writer and a second writer waits instead of failing. Transactions
on an engine from :func:`for_writing` start with ``BEGIN IMMEDIATE``: a transaction that reads and
then writes (opening a ticket after computing batch statistics) takes the write lock up front, so it
can never fail halfway with ``database is locked`` because another process committed in between.
Plain transactions start with a deferred ``BEGIN`` and, in WAL mode, never wait for a writer.
SQLAlchemy emits these BEGINs itself (the stdlib driver's own transaction handling is switched
off), which also makes savepoints work.

The schema is owned by Alembic (``migrations/``): :func:`make_engine` upgrades the database to the
newest revision before handing the engine out. The upgrade runs in one transaction that first
takes the write lock (SQLite) or an advisory lock (PostgreSQL), so a worker and an API starting
together on a fresh database migrate it once and the second finds it done.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_TIMEOUT_MS = 10_000
_WRITE_OPTION = "qloop_write"
MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATE_ATTEMPTS = 6
_MIGRATION_LOCK = 0x716C6F6F70  # PostgreSQL advisory lock key of migrations ("qloop")


class SchemaError(RuntimeError):
    """The database holds tables that Alembic does not manage."""


def make_engine(url: str, *, echo: bool = False, upgrade: bool = True) -> Engine:
    """An engine for ``url``, its schema upgraded to the newest revision unless ``upgrade`` is
    False (idempotent)."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        # The API serves requests from a thread pool; a pooled connection may change threads.
        kwargs["connect_args"] = {"check_same_thread": False}
        if parsed.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool  # one shared connection, or each would see its own db
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        _configure_sqlite(engine)
    if upgrade:
        migrate(engine)
    return engine


def alembic_config() -> Config:
    """Alembic's configuration for the ticketing migrations (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database of ``engine`` (from :func:`make_engine`) to ``revision``, once even
    with concurrent callers."""
    for attempt in range(_MIGRATE_ATTEMPTS):
        try:
            return _migrate_once(engine, revision)
        except OperationalError as e:
            # SQLite answers "database is locked" at once, without waiting, where waiting could
            # deadlock (two starters on a brand-new file); the upgrade is idempotent: go again
            if "locked" not in str(e) or attempt == _MIGRATE_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)


def _migrate_once(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with for_writing(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        tables = set(inspect(conn).get_table_names())
        if "tickets" in tables and "alembic_version" not in tables:
            raise SchemaError(
                f"{engine.url.render_as_string(hide_password=True)} has ticketing tables but no "
                "Alembic version: it was made by an older qloop; move it away to start afresh"
            )
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see below)
        cursor = dbapi_conn.cursor()
        # the busy timeout first: switching a fresh file to WAL needs a lock that a concurrent
        # starter may hold for a moment
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def for_writing(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions take SQLite's write lock when they begin."""
    return engine.execution_options(**{_WRITE_OPTION: True})
