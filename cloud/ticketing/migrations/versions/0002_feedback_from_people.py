"""Feedback from people: the ``feedback`` and ``feedback_corrections`` tables; tickets get a
source, channel, classification, parent, repeat count and the customer's contact, and their
model, batch and fault may be unknown (a complaint that names no unit).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Existing tickets become ``source = 'telemetry'`` with no repeats.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("customer", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("serial", sa.String(length=128), nullable=True),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("purchase_date", sa.String(length=10), nullable=True),
        sa.Column("demand", sa.String(length=16), nullable=True),
        sa.Column("extracted", sa.JSON(), nullable=False),
        sa.Column("classification", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "feedback_corrections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("fault", sa.String(length=64), nullable=True),
        sa.Column("severity", sa.String(length=4), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("feedback_corrections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feedback_corrections_ticket_id"), ["ticket_id"], unique=False
        )

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), server_default="telemetry", nullable=False)
        )
        batch_op.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("classification", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("parent", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("repeats", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("contact", sa.String(length=128), nullable=True))
        batch_op.alter_column("model", existing_type=sa.VARCHAR(length=64), nullable=True)
        batch_op.alter_column("batch", existing_type=sa.VARCHAR(length=64), nullable=True)
        batch_op.alter_column("fault", existing_type=sa.VARCHAR(length=64), nullable=True)
        batch_op.create_index(batch_op.f("ix_tickets_contact"), ["contact"], unique=False)
        batch_op.create_index("ix_tickets_device", ["device"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_parent"), ["parent"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_parent"))
        batch_op.drop_index("ix_tickets_device")
        batch_op.drop_index(batch_op.f("ix_tickets_contact"))
        batch_op.alter_column("fault", existing_type=sa.VARCHAR(length=64), nullable=False)
        batch_op.alter_column("batch", existing_type=sa.VARCHAR(length=64), nullable=False)
        batch_op.alter_column("model", existing_type=sa.VARCHAR(length=64), nullable=False)
        batch_op.drop_column("contact")
        batch_op.drop_column("repeats")
        batch_op.drop_column("parent")
        batch_op.drop_column("classification")
        batch_op.drop_column("channel")
        batch_op.drop_column("source")

    with op.batch_alter_table("feedback_corrections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_corrections_ticket_id"))

    op.drop_table("feedback_corrections")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_ticket_id"))

    op.drop_table("feedback")
