"""The ticketing database: an engine (``cloud/store/sql.py``) with its schema upgraded.

The schema is owned by Alembic (``migrations/``): :func:`make_engine` upgrades the database to the
newest revision before handing the engine out. The upgrade runs in one transaction that first
takes the write lock (SQLite) or an advisory lock (PostgreSQL), so a worker and an API starting
together on a fresh database migrate it once and the second finds it done.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from cloud.store.sql import connect, for_writing
from contract.errors import QloopError

MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATE_ATTEMPTS = 6
_MIGRATION_LOCK = 0x716C6F6F70  # PostgreSQL advisory lock key of migrations ("qloop")

__all__ = [
    "DatabaseUnavailable",
    "SchemaError",
    "alembic_config",
    "for_writing",
    "make_engine",
    "migrate",
    "schema_head",
    "schema_revision",
]


class SchemaError(QloopError, RuntimeError):
    """The database holds tables that Alembic does not manage."""


class DatabaseUnavailable(QloopError, RuntimeError):
    """The ticket database cannot be opened: a missing directory, no permission, a server that
    does not answer, a URL that is not one."""


def make_engine(url: str, *, echo: bool = False, upgrade: bool = True) -> Engine:
    """An engine for ``url``, its schema upgraded to the newest revision unless ``upgrade`` is
    False (idempotent)."""
    try:
        engine = connect(url, echo=echo)
        if upgrade:
            migrate(engine)
    except (ArgumentError, OperationalError) as e:
        shown = make_url(url).render_as_string(hide_password=True) if "://" in url else url
        reason = str(getattr(e, "orig", None) or e).splitlines()[0]
        raise DatabaseUnavailable(
            f"cannot open the ticket database {shown}: {reason} (check the URL, that its"
            " directory exists and is writable, or that the server is up)"
        ) from None
    return engine


def alembic_config() -> Config:
    """Alembic's configuration for the ticketing migrations (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def schema_head() -> str:
    """The revision of the newest migration this code ships (read from disk once)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_revision(engine: Engine) -> str | None:
    """The revision the database of ``engine`` is at; None when Alembic never ran there."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


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
