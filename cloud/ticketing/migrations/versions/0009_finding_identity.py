"""A finding is stored at most once: a unique index on its identity (device, fault, ts,
active) replaces the (device, fault) index it starts with. Copies a worker stored twice before
(a replay after a crash) are removed first, keeping the first received.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute(
        sa.text(
            "DELETE FROM findings WHERE id NOT IN"
            " (SELECT min(id) FROM findings GROUP BY device, fault, ts, active)"
        )
    )
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index("ix_findings_device_fault")
        batch_op.create_index(
            "uq_findings_identity", ["device", "fault", "ts", "active"], unique=True
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index("uq_findings_identity")
        batch_op.create_index("ix_findings_device_fault", ["device", "fault"], unique=False)
