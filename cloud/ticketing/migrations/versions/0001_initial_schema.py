"""Initial schema: devices, findings, device faults, tickets with history, fix records, SLA
escalations, API tokens and ticket serials (see ``cloud/ticketing/models.py``).

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Wall-clock columns are naive UTC ``DateTime`` here; the models wrap them in ``UTCDateTime``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "api_tokens",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_sha256"),
    )
    op.create_table(
        "device_faults",
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("fault", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("first_ts", sa.Float(), nullable=False),
        sa.Column("onset_ts", sa.Float(), nullable=False),
        sa.Column("last_ts", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("device", "fault"),
    )
    op.create_index(
        "ix_device_faults_fault_active", "device_faults", ["fault", "active"], unique=False
    )

    op.create_table(
        "devices",
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("product", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("batch", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.String(length=128), nullable=False),
        sa.Column("firmware", sa.String(length=64), nullable=False),
        sa.Column("first_seen_ts", sa.Float(), nullable=False),
        sa.Column("last_seen_ts", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("device"),
    )
    op.create_index(op.f("ix_devices_model"), "devices", ["model"], unique=False)
    op.create_index("ix_devices_model_batch", "devices", ["model", "batch"], unique=False)

    op.create_table(
        "findings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("batch", sa.String(length=64), nullable=True),
        sa.Column("fault", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("onset_ts", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_findings_device_fault", "findings", ["device", "fault"], unique=False)
    op.create_index(
        "ix_findings_model_batch_fault", "findings", ["model", "batch", "fault"], unique=False
    )

    op.create_table(
        "ticket_serials",
        sa.Column("month", sa.String(length=6), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month"),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("batch", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("fault", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=4), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("affected_devices", sa.Integer(), nullable=False),
        sa.Column("batch_devices", sa.Integer(), nullable=False),
        sa.Column("detected_at", sa.DateTime(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("cycle_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_tickets_model_batch_fault", "tickets", ["model", "batch", "fault"], unique=False
    )
    op.create_index("ix_tickets_opened_at_id", "tickets", ["opened_at", "id"], unique=False)
    op.create_index(op.f("ix_tickets_status"), "tickets", ["status"], unique=False)
    op.create_index(
        "uq_tickets_open_batch",
        "tickets",
        ["model", "batch", "fault"],
        unique=True,
        sqlite_where=sa.text("scope = 'batch' AND status != 'closed'"),
        postgresql_where=sa.text("scope = 'batch' AND status != 'closed'"),
    )
    op.create_index(
        "uq_tickets_open_device",
        "tickets",
        ["device", "fault"],
        unique=True,
        sqlite_where=sa.text("scope = 'device' AND status != 'closed'"),
        postgresql_where=sa.text("scope = 'device' AND status != 'closed'"),
    )

    op.create_table(
        "sla_escalations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_sla_escalations_pending",
        "sla_escalations",
        ["delivered_at", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        "uq_sla_escalations_stage", "sla_escalations", ["ticket_id", "cycle", "stage"], unique=True
    )

    op.create_table(
        "ticket_fixes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("devices", sa.JSON(), nullable=False),
        sa.Column("effective_from", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("units", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_ticket_fixes_ticket_id"), "ticket_fixes", ["ticket_id"], unique=False)
    op.create_index(
        "uq_ticket_fixes_pending",
        "ticket_fixes",
        ["ticket_id"],
        unique=True,
        sqlite_where=sa.text("outcome = 'pending'"),
        postgresql_where=sa.text("outcome = 'pending'"),
    )

    op.create_table(
        "ticket_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_ticket_history_ticket_id"), "ticket_history", ["ticket_id"], unique=False
    )


def downgrade() -> None:
    """Drop everything (indexes go with their tables)."""
    for table in (
        "ticket_history", "ticket_fixes", "sla_escalations", "tickets", "ticket_serials",
        "findings", "devices", "device_faults", "api_tokens",
    ):  # fmt: skip
        op.drop_table(table)
