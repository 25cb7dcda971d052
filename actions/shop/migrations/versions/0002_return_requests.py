"""return requests: resolution, method, fee, one open return per item set, status history;
how an order was paid

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shop_orders") as batch:
        batch.add_column(sa.Column("payment_method", sa.String(20), nullable=False, server_default="card"))
    with op.batch_alter_table("shop_returns") as batch:
        batch.add_column(sa.Column("resolution", sa.String(20), nullable=False, server_default="refund"))
        batch.add_column(sa.Column("method", sa.String(20), nullable=False, server_default="pickup"))
        batch.add_column(sa.Column("fee", sa.Numeric(12, 2), nullable=False, server_default="0"))
        # Set while the return is open (not rejected): the same items cannot be returned twice.
        batch.add_column(sa.Column("open_key", sa.String(400), nullable=True))
        batch.create_unique_constraint("uq_shop_returns_open_key", ["open_key"])
    op.create_table(
        "shop_return_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("return_id", sa.Integer(), sa.ForeignKey("shop_returns.id"), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    # Returns from before: their request, and their present status when it came later.
    op.execute(
        "INSERT INTO shop_return_events (return_id, status, at) "
        "SELECT id, 'requested', requested_at FROM shop_returns"
    )
    op.execute(
        "INSERT INTO shop_return_events (return_id, status, at) "
        "SELECT id, status, COALESCE(refunded_at, requested_at) FROM shop_returns WHERE status <> 'requested'"
    )
    # Returns from before hold their items like new ones (actions/shop/base.py NewReturn.key).
    returns = sa.table(
        "shop_returns",
        sa.column("id", sa.Integer),
        sa.column("order_id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("item_names", sa.JSON),
        sa.column("open_key", sa.String),
    )
    orders = sa.table("shop_orders", sa.column("id", sa.Integer), sa.column("number", sa.String))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(returns.c.id, orders.c.number, returns.c.item_names)
        .select_from(returns.join(orders, returns.c.order_id == orders.c.id))
        .where(returns.c.status.notin_(["rejected", "exchanged"]))
        .order_by(returns.c.id)
    ).all()
    taken: set[str] = set()
    for return_id, number, names in rows:
        key = f"{number}:{'|'.join(sorted(names))}"
        if key not in taken:  # two open returns of the same items before: the first keeps them
            taken.add(key)
            bind.execute(returns.update().where(returns.c.id == return_id).values(open_key=key))


def downgrade() -> None:
    op.drop_table("shop_return_events")
    with op.batch_alter_table("shop_returns") as batch:
        batch.drop_constraint("uq_shop_returns_open_key", type_="unique")
        for column in ("open_key", "fee", "method", "resolution"):
            batch.drop_column(column)
    with op.batch_alter_table("shop_orders") as batch:
        batch.drop_column("payment_method")
