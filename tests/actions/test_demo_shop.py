from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from actions.settings import ROOT
from actions.shop.base import OrderNotCancellable
from actions.shop.demo import DemoShop, add_business_days

SEED = ROOT / "seeds" / "demo_shop.yml"


@pytest.fixture
async def shop(database_url: str):
    backend = DemoShop(database_url, SEED)
    yield backend
    await backend.close()


async def test_seed_orders_are_there_with_dates_relative_to_today(shop: DemoShop) -> None:
    order = await shop.get_order("100234")
    assert order is not None
    assert order.customer_email == "jane.doe@example.com"
    assert order.status == "shipped"
    assert order.carrier == "UPS"
    assert order.tracking_number == "1Z999AA10123456784"
    assert [item.name for item in order.items] == ["trail running shoes"]
    today = dt.datetime.now(dt.timezone.utc).date()
    assert order.shipped_at and order.shipped_at.date() == today - dt.timedelta(days=2)
    assert order.expected_delivery == (
        add_business_days(today - dt.timedelta(days=2), 3),
        add_business_days(today - dt.timedelta(days=2), 5),
    )
    mixed = await shop.get_order("100239")
    assert mixed is not None and mixed.total == Decimal("349.00")
    assert await shop.get_order("999999") is None


async def test_seeding_is_idempotent_across_instances(shop: DemoShop, database_url: str) -> None:
    await shop.prepare()
    second = DemoShop(database_url, SEED)
    try:
        await second.prepare()
        assert len(await second.returns_for_order("100242")) == 1
    finally:
        await second.close()


async def test_only_a_processing_order_can_be_cancelled(shop: DemoShop) -> None:
    cancelled = await shop.cancel_order("100237")
    assert cancelled.status == "cancelled"
    assert cancelled.cancelled_at is not None
    with pytest.raises(OrderNotCancellable):
        await shop.cancel_order("100237")  # twice: still one cancellation
    with pytest.raises(OrderNotCancellable) as blocked:
        await shop.cancel_order("100234")
    assert blocked.value.order.status == "shipped"
    with pytest.raises(LookupError):
        await shop.cancel_order("999999")


async def test_returns_from_the_seed(shop: DemoShop) -> None:
    pickup = await shop.get_return("rma-20431")
    assert pickup is not None and pickup.status == "pickup_scheduled"
    assert pickup.pickup_date == dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)
    refunded = await shop.get_return("RMA-88120")
    assert refunded is not None and refunded.refund_amount == Decimal("420.00")
    assert refunded.order_number == "100243"
    assert await shop.get_return("RMA-1") is None


def test_business_days_skip_weekends() -> None:
    friday = dt.date(2026, 11, 20)
    assert add_business_days(friday, 1) == dt.date(2026, 11, 23)
    assert add_business_days(friday, 5) == dt.date(2026, 11, 27)
