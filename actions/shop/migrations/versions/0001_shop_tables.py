"""the demo shop's tables: customers, orders, items, returns, seed marker

Revision ID: 0001
Revises:
Create Date: 2026-11-23 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_customers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("vip", sa.Boolean(), nullable=False),
        sa.Column("spent_last_12_months", sa.Numeric(12, 2), nullable=False),
    )
    op.create_table(
        "shop_orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("shop_customers.id"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True)),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("cancelled_at", sa.DateTime(timezone=True)),
        sa.Column("shipping_method", sa.String(32), nullable=False),
        sa.Column("carrier", sa.String(32)),
        sa.Column("tracking_number", sa.String(64)),
        sa.Column("ship_to_country", sa.String(2), nullable=False),
        sa.Column("eta_min_business_days", sa.Integer()),
        sa.Column("eta_max_business_days", sa.Integer()),
    )
    op.create_table(
        "shop_order_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("shop_orders.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("category", sa.String(50), nullable=False),
        sa.Column("price", sa.Numeric(12, 2), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("personalised", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "shop_returns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rma", sa.String(32), nullable=False, unique=True),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("shop_orders.id"), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("item_names", sa.JSON(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pickup_date", sa.Date()),
        sa.Column("refund_amount", sa.Numeric(12, 2)),
        sa.Column("refunded_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "shop_seed",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("seeded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("shop_seed", "shop_returns", "shop_order_items", "shop_orders", "shop_customers"):
        op.drop_table(table)
