"""The running demo shop's database, written by tests that need an order of their own: the
stack is shared by the whole session, so a test that returns or cancels something works on
an order nobody else touches."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from actions.shop.demo import CustomerRow, OrderItemRow, OrderRow, migrate
from tests.support.stack import Stack


def add_order(
    stack: Stack,
    delivered: dt.timedelta,
    items: list[tuple[str, str, str]],
    payment_method: str = "card",
    status: str = "delivered",
    email: str | None = None,
) -> tuple[str, str]:
    """An order in the running shop, of the customer with `email` or of a new one, delivered
    `delivered` ago unless `status` says otherwise: (order number, email)."""
    url = f"sqlite:///{stack.shop_db}"
    migrate(url)  # idempotent; no shop request is in flight while a test sets up
    number = str(uuid.uuid4().int % 9_000_000 + 1_000_000)
    now = dt.datetime.now(dt.timezone.utc)
    engine = sa.create_engine(url)
    try:
        with Session(engine) as session, session.begin():
            existing = sa.select(CustomerRow).where(CustomerRow.email == email)
            known = session.scalar(existing) if email else None
            email = email or f"buyer-{number}@example.com"
            customer = known or CustomerRow(email=email, name="Test Buyer", vip=False, spent_last_12_months=0)
            session.add(
                OrderRow(
                    number=number,
                    customer=customer,
                    status=status,
                    placed_at=now - delivered - dt.timedelta(days=3),
                    shipped_at=now - delivered - dt.timedelta(days=2) if status != "cancelled" else None,
                    delivered_at=now - delivered if status == "delivered" else None,
                    cancelled_at=now - delivered if status == "cancelled" else None,
                    shipping_method="standard",
                    carrier="UPS",
                    ship_to_country="US",
                    payment_method=payment_method,
                    items=[
                        OrderItemRow(name=name, category=category, price=Decimal(price), quantity=1)
                        for name, category, price in items
                    ],
                )
            )
    finally:
        engine.dispose()
    return number, email
