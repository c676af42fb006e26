"""Token lifecycle and page sessions: ``api_tokens`` gets an optional expiry, a ``bootstrap``
mark (the administrator token from the environment) and unique names; ``page_sessions`` holds
the pages' sign-in sessions, so the cookie no longer carries the token itself.

Tokens that shared a name keep the newest under it; the older ones are renamed ``<name>~2``,
``<name>~3``… (listed by ``GET /api/v1/tokens``, for an administrator to revoke).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rename_duplicates() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT token_sha256, name FROM api_tokens ORDER BY name, created_at DESC")
    ).all()
    taken = {name for _digest, name in rows}
    seen: set[str] = set()
    for digest, name in rows:
        if name not in seen:
            seen.add(name)
            continue
        n = 2
        while (new := f"{name[:58]}~{n}") in taken:
            n += 1
        taken.add(new)
        conn.execute(
            sa.text("UPDATE api_tokens SET name = :new WHERE token_sha256 = :digest"),
            {"new": new, "digest": digest},
        )


def upgrade() -> None:
    """Upgrade schema."""
    _rename_duplicates()
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("bootstrap", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index("uq_api_tokens_name", ["name"], unique=True)
    op.create_table(
        "page_sessions",
        sa.Column("id_sha256", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["token_sha256"], ["api_tokens.token_sha256"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id_sha256"),
    )
    with op.batch_alter_table("page_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_page_sessions_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_page_sessions_token_sha256"), ["token_sha256"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("page_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_page_sessions_token_sha256"))
        batch_op.drop_index(batch_op.f("ix_page_sessions_expires_at"))
    op.drop_table("page_sessions")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index("uq_api_tokens_name")
        batch_op.drop_column("bootstrap")
        batch_op.drop_column("expires_at")
