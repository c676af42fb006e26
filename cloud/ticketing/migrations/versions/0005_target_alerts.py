"""Quality target alerts: the ``target_alerts`` table, one row per (department, figure, ISO week)
whose figure missed its target two weeks running, and the alert's outbox.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "target_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("figure", sa.String(length=16), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("target_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_target_alerts_pending", ["delivered_at", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            "uq_target_alerts_week", ["department", "figure", "week"], unique=True
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("target_alerts", schema=None) as batch_op:
        batch_op.drop_index("uq_target_alerts_week")
        batch_op.drop_index("ix_target_alerts_pending")

    op.drop_table("target_alerts")
