"""ticket vip flag; tickets opened before priorities get the default P3

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 22:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vip", sa.Boolean(), nullable=False, server_default=sa.false()))
    # NULL would sort first on SQLite and last on PostgreSQL; the queue must not depend on that.
    op.execute("UPDATE tickets SET priority = 'P3' WHERE priority IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("vip")
