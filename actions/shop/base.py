"""What the assistant needs from a shop's order system.

The demo shop (`actions.shop.demo`) implements it on its own database; a real shop
implements the same protocol over Shopify, WooCommerce or an in-house API and names its
class in SHOP_BACKEND.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
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

    @property
    def flags(self) -> tuple[str, ...]:
        """The item's flags as the return policy names them (non_returnable.flags)."""
        return ("personalised",) if self.personalised else ()


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
    payment_method: str = "card"  # card | paypal | wallet | gift_card

    @property
    def total(self) -> Decimal:
        return sum((item.price * item.quantity for item in self.items), Decimal("0"))

    def owned_by(self, email: str | None) -> bool:
        return bool(email) and self.customer_email.lower() == str(email).strip().lower()


# A return's life: requested, then label_sent (drop-off) or pickup_scheduled, received,
# and refunded (or exchanged), or rejected at any point.
RETURN_STATUSES = (
    "requested",
    "label_sent",
    "pickup_scheduled",
    "received",
    "refunded",
    "exchanged",
    "rejected",
)
# A finished return's status does not change any more.
FINAL_STATUSES = frozenset({"refunded", "exchanged", "rejected"})
# Finished without the items staying with the shop: they may be returned again (an
# exchanged item is a new one; a rejected return sent nothing back).
RELEASED_STATUSES = frozenset({"rejected", "exchanged"})


def return_key(order_number: str, item_names: Iterable[str]) -> str:
    """The same items of the same order: at most one return holds them."""
    return f"{order_number}:{'|'.join(sorted(item_names))}"


@dataclass(frozen=True)
class StatusChange:
    status: str
    at: dt.datetime


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
    resolution: str = "refund"  # refund | exchange | replacement
    method: str = "pickup"  # pickup | drop_off | none (nothing to send back)
    fee: Decimal = Decimal("0")
    history: tuple[StatusChange, ...] = ()


@dataclass(frozen=True)
class NewReturn:
    """What the return form collected, after the policy allowed it."""

    order_number: str
    item_names: tuple[str, ...]
    reason: str
    resolution: str
    method: str
    fee: Decimal
    refund_amount: Decimal | None  # what the customer gets back; None for an exchange
    pickup_date: dt.date | None = None

    @property
    def key(self) -> str:
        """One open return for these items, however often it is submitted."""
        return return_key(self.order_number, self.item_names)


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

    async def orders_of(self, email: str) -> list[Order]:
        """The customer's orders, newest first (for the agent who takes the conversation)."""
        ...

    async def get_return(self, rma: str) -> ReturnRequest | None: ...

    async def returns_for_order(self, number: str) -> list[ReturnRequest]: ...

    async def create_return(self, request: NewReturn) -> tuple[ReturnRequest, bool]:
        """Opens a return (`requested`, then `pickup_scheduled` or `label_sent`); returns it
        and whether it is new. The same items of the same order, submitted again while
        that return is open, give back the open one."""
        ...

    async def set_return_status(
        self, rma: str, status: str, refund_amount: Decimal | None = None
    ) -> ReturnRequest:
        """Moves a return on (warehouse, agent); every change is timestamped."""
        ...

    async def check(self) -> None:
        """Raises when the backend cannot be reached (health checks)."""
        ...
