from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from actions.orders import normalise_email, normalise_order_number, status_response
from actions.shop.base import Order, OrderItem

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100234", "100234"),
        ("#100234", "100234"),
        (" 100234 ", "100234"),
        (["1", "100238"], "100238"),
        ("12-34", None),
        ("1234", None),
        ("abc", None),
        (None, None),
        ([], None),
    ],
)
def test_order_numbers(value, expected) -> None:
    assert normalise_order_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Jane.Doe@Example.com", "jane.doe@example.com"),
        ("jane@example.com.", "jane@example.com"),
        ("jane@", None),
        ("not an email", None),
        (None, None),
    ],
)
def test_emails(value, expected) -> None:
    assert normalise_email(value) == expected


def make_order(**changes) -> Order:
    base = dict(
        number="100234",
        customer_email="jane.doe@example.com",
        status="shipped",
        placed_at=dt.datetime(2026, 11, 19, 9, tzinfo=UTC),
        items=(OrderItem("trail running shoes", "footwear", Decimal("89.00")),),
        shipping_method="standard",
        carrier="UPS",
        tracking_number="1Z999AA10123456784",
        shipped_at=dt.datetime(2026, 11, 21, 9, tzinfo=UTC),
        expected_delivery=(dt.date(2026, 11, 25), dt.date(2026, 11, 27)),
    )
    return Order(**{**base, **changes})


def test_shipped_order_tells_carrier_tracking_and_window() -> None:
    response, variables = status_response(make_order())
    assert response == "utter_order_shipped"
    assert variables["carrier"] == "UPS"
    assert variables["tracking_number"] == "1Z999AA10123456784"
    assert variables["expected_delivery"] == "between Wednesday 25 November and Friday 27 November"


def test_each_status_has_its_own_answer() -> None:
    assert status_response(make_order(status="processing"))[0] == "utter_order_processing"
    delivered = make_order(status="delivered", delivered_at=dt.datetime(2026, 11, 18, tzinfo=UTC))
    assert status_response(delivered) == (
        "utter_order_delivered",
        {"order_id": "100234", "items": "trail running shoes", "delivered_date": "Wednesday 18 November"},
    )


def test_ownership_compares_emails_without_case() -> None:
    order = make_order()
    assert order.owned_by(" JANE.DOE@example.com")
    assert not order.owned_by("sam.patel@example.net")
    assert not order.owned_by(None)
