"""History chain: every ``ticket_history`` entry gets its place in its ticket's history
(``seq``), the previous entry's hash (``prev_hash``) and its own (``hash``); a unique index on
(ticket_id, seq) replaces the plain index on ticket_id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Existing entries are numbered and hashed here, per ticket in the order they were written (by
id), so a database from before the chain verifies too (``qloop audit verify``); what was done to
them before this upgrade cannot be told, of course. The hash is ``cloud/ticketing/chain.py``'s.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from cloud.ticketing.chain import GENESIS, entry_hash

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TICKETS_PER_PAGE = 500

history = sa.table(
    "ticket_history",
    sa.column("id", sa.Integer),
    sa.column("ticket_id", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("at", sa.DateTime),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("from_status", sa.String),
    sa.column("to_status", sa.String),
    sa.column("note", sa.Text),
    sa.column("data", sa.JSON),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("ticket_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))

    _chain_existing_entries(op.get_bind())

    with op.batch_alter_table("ticket_history", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_index(batch_op.f("ix_ticket_history_ticket_id"))
        batch_op.create_index("uq_ticket_history_seq", ["ticket_id", "seq"], unique=True)


def _chain_existing_entries(conn: sa.Connection) -> None:
    """Number and hash every entry, a page of tickets at a time."""
    after = ""
    while True:
        tickets = list(
            conn.scalars(
                sa.select(history.c.ticket_id)
                .where(history.c.ticket_id > after)
                .group_by(history.c.ticket_id)
                .order_by(history.c.ticket_id)
                .limit(_TICKETS_PER_PAGE)
            )
        )
        if not tickets:
            return
        rows = conn.execute(
            sa.select(history)
            .where(history.c.ticket_id.in_(tickets))
            .order_by(history.c.ticket_id, history.c.id)
        ).all()
        updates: list[dict[str, Any]] = []
        seq, prev, ticket = 0, GENESIS, None
        for row in rows:
            if row.ticket_id != ticket:
                seq, prev, ticket = 0, GENESIS, row.ticket_id
            seq += 1
            digest = entry_hash(
                ticket_id=row.ticket_id,
                seq=seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                from_status=row.from_status,
                to_status=row.to_status,
                note=row.note,
                data=row.data,
                prev_hash=prev,
            )
            updates.append({"row_id": row.id, "to_seq": seq, "to_prev": prev, "to_hash": digest})
            prev = digest
        conn.execute(
            history.update()
            .where(history.c.id == sa.bindparam("row_id"))
            .values(
                seq=sa.bindparam("to_seq"),
                prev_hash=sa.bindparam("to_prev"),
                hash=sa.bindparam("to_hash"),
            ),
            updates,
        )
        after = tickets[-1]


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("ticket_history", schema=None) as batch_op:
        batch_op.drop_index("uq_ticket_history_seq")
        batch_op.create_index(
            batch_op.f("ix_ticket_history_ticket_id"), ["ticket_id"], unique=False
        )
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
