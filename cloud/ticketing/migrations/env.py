"""Alembic environment: migrate the connection handed over by ``db.migrate``, or a URL.

From code, :func:`cloud.ticketing.db.migrate` passes an open connection (inside its own locked
transaction) in ``config.attributes["connection"]``. From the command line
(``alembic -c cloud/ticketing/alembic.ini upgrade head``) the URL comes from ``-x db=URL``,
else ``QLOOP_DB``, else ``sqlalchemy.url`` of the ini file.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from cloud.ticketing.models import Base

target_metadata = Base.metadata


def _run(connection) -> None:  # noqa: ANN001 - alembic's Connection
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = (
        context.get_x_argument(as_dictionary=True).get("db")
        or os.environ.get("QLOOP_DB")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise SystemExit("no database: pass -x db=URL or set QLOOP_DB")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if hasattr(context, "config"):  # run by alembic (pytest's doctest collection merely imports it)
    main()
