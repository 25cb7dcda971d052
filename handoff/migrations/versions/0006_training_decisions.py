"""trainers' decisions on unresolved messages (label, knowledge-base gap, dismissed)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unresolved_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("intent", sa.String(length=100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["unresolved_id"], ["unresolved_messages.id"]),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("unresolved_id"),
    )


def downgrade() -> None:
    op.drop_table("training_decisions")
