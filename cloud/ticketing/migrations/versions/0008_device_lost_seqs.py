"""Lost data per unit: ``devices.lost_seqs``, the seqs between the unit's first and newest
message that never came in an accepted message, as the worker serving its partition counts them
(the worker hands the count over with its device touches; 0 for units it has not counted).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lost_seqs", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("lost_seqs")
