"""agents, their sessions, ticket life cycle (claim, reply, hand-back, close, CSAT), notes

Tickets opened before this revision keep their rows: each gets an `opened` event at its
creation time, and a conversation with a waiting ticket is switched to the `queued` mode so
the bot stays quiet until an agent answers it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "agent_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_agent_sessions_agent_id", "agent_sessions", ["agent_id"])
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assigned_agent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("csat", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("csat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key("fk_tickets_assigned_agent_id", "agents", ["assigned_agent_id"], ["id"])
        batch_op.create_index("ix_tickets_assigned_agent_id", ["assigned_agent_id"])
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key("fk_messages_agent_id", "agents", ["agent_id"], ["id"])
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("csat_ticket_id", sa.Integer(), nullable=True))
    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_events_ticket_id", "ticket_events", ["ticket_id"])
    op.create_table(
        "ticket_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_notes_ticket_id", "ticket_notes", ["ticket_id"])
    # Earlier tickets: their history starts with the opening, and their conversations wait
    # for an agent. Replies already sent with their requests count as delivered.
    op.execute(
        "INSERT INTO ticket_events (ticket_id, action, from_status, to_status, actor, at) "
        "SELECT id, 'opened', NULL, status, 'system', created_at FROM tickets"
    )
    op.execute(
        "UPDATE conversations SET mode = 'queued' WHERE id IN "
        "(SELECT conversation_id FROM tickets WHERE status = 'queued')"
    )
    op.execute("UPDATE messages SET delivered_at = created_at")
    # One open ticket per conversation, from now on enforced by the database. Earlier races
    # could leave two: the later ones are merged into the first (resolved, outcome merged).
    op.execute(
        "UPDATE tickets SET status = 'resolved', outcome = 'merged', resolved_at = created_at "
        "WHERE status IN ('queued', 'assigned') AND id NOT IN "
        "(SELECT MIN(id) FROM tickets WHERE status IN ('queued', 'assigned') GROUP BY conversation_id)"
    )
    op.execute(
        "INSERT INTO ticket_events (ticket_id, action, from_status, to_status, actor, at) "
        "SELECT id, 'merged', 'queued', 'resolved', 'system', created_at FROM tickets "
        "WHERE outcome = 'merged'"
    )
    op.create_index(
        "uq_tickets_one_open_per_conversation",
        "tickets",
        ["conversation_id"],
        unique=True,
        sqlite_where=sa.text("status IN ('queued', 'assigned')"),
        postgresql_where=sa.text("status IN ('queued', 'assigned')"),
    )


def downgrade() -> None:
    op.drop_index("uq_tickets_one_open_per_conversation", table_name="tickets")
    op.drop_index("ix_ticket_notes_ticket_id", table_name="ticket_notes")
    op.drop_table("ticket_notes")
    op.drop_index("ix_ticket_events_ticket_id", table_name="ticket_events")
    op.drop_table("ticket_events")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("csat_ticket_id")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("fk_messages_agent_id", type_="foreignkey")
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("agent_id")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_assigned_agent_id")
        batch_op.drop_constraint("fk_tickets_assigned_agent_id", type_="foreignkey")
        for column in ("csat_at", "csat", "outcome", "resolved_at", "first_response_at", "claimed_at"):
            batch_op.drop_column(column)
        batch_op.drop_column("assigned_agent_id")
    op.drop_index("ix_agent_sessions_agent_id", table_name="agent_sessions")
    op.drop_table("agent_sessions")
    op.drop_table("agents")
