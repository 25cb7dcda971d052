"""What the assistant needs from a shop's order system.

The demo shop (`actions.shop.demo`) implements it on its own database; a real shop
implements the same protocol over Shopify, WooCommerce or an in-house API and names its
class in SHOP_BACKEND.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class OrderItem:
    name: str
    category: str
    price: Decimal
    quantity: int = 1
    personalised: bool = False


@dataclass(frozen=True)
class Order:
    number: str
    customer_email: str
    status: str  # processing | shipped | delivered | cancelled
    placed_at: dt.datetime
    items: tuple[OrderItem, ...]
    shipping_method: str
    carrier: str | None = None
    tracking_number: str | None = None
    ship_to_country: str = "US"
    shipped_at: dt.datetime | None = None
    delivered_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    expected_delivery: tuple[dt.date, dt.date] | None = None
    customer_vip: bool = False  # served first within their priority tier

    @property
    def total(self) -> Decimal:
        return sum((item.price * item.quantity for item in self.items), Decimal("0"))

    def owned_by(self, email: str | None) -> bool:
        return bool(email) and self.customer_email.lower() == str(email).strip().lower()


@dataclass(frozen=True)
class ReturnRequest:
    rma: str
    order_number: str
    status: str
    reason: str
    item_names: tuple[str, ...]
    requested_at: dt.datetime
    pickup_date: dt.date | None = None
    refund_amount: Decimal | None = None
    refunded_at: dt.datetime | None = None


class OrderNotCancellable(Exception):
    """The order left the `processing` state before the cancellation arrived."""

    def __init__(self, order: Order) -> None:
        super().__init__(f"order {order.number} is {order.status}")
        self.order = order


class ShopBackend(Protocol):
    async def get_order(self, number: str) -> Order | None: ...

    async def cancel_order(self, number: str) -> Order:
        """Cancels a `processing` order; raises OrderNotCancellable otherwise."""
        ...

    async def get_return(self, rma: str) -> ReturnRequest | None: ...

    async def returns_for_order(self, number: str) -> list[ReturnRequest]: ...

    async def check(self) -> None:
        """Raises when the backend cannot be reached (health checks)."""
        ...
