"""Device identity changes: ``device_changes`` keeps a birth that announced another model,
batch or product than the unit had, for a person to accept or reject; ``devices.serial`` gets
an index (a complaint names its unit by serial).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "device_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("announced_at", sa.DateTime(), nullable=False),
        sa.Column("birth_ts", sa.Float(), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=False),
        sa.Column("announced", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("device_changes", schema=None) as batch_op:
        batch_op.create_index("ix_device_changes_status", ["status", "device"], unique=False)
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index("ix_devices_serial", ["serial"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_serial")
    with op.batch_alter_table("device_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_device_changes_status")
    op.drop_table("device_changes")
