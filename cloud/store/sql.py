"""SQL engines for the databases qloop shares between processes (tickets, checkpoints).

One URL decides the backend: SQLite (a single file shared by a cloud worker process and the API
process) or PostgreSQL. For SQLite every connection runs in WAL mode with a busy timeout, so
readers never block the writer and a second writer waits instead of failing. Transactions on an
engine from :func:`for_writing` start with ``BEGIN IMMEDIATE``: a transaction that reads and then
writes (opening a ticket after computing batch statistics) takes the write lock up front, so it
can never fail halfway with ``database is locked`` because another process committed in between.
Plain transactions start with a deferred ``BEGIN`` and, in WAL mode, never wait for a writer.
SQLAlchemy emits these BEGINs itself (the stdlib driver's own transaction handling is switched
off), which also makes savepoints work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_TIMEOUT_MS = 10_000
_WRITE_OPTION = "qloop_write"


def connect(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url`` configured as the module docstring says (no schema is touched)."""
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
    return engine


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
