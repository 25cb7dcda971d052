from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from actions.dates import add_business_days
from actions.settings import ROOT
from actions.shop.base import NewReturn, OrderNotCancellable
from actions.shop.demo import VERSION_TABLE, DemoShop, migrate

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
    assert [change.status for change in refunded.history] == [
        "requested",
        "pickup_scheduled",
        "received",
        "refunded",
    ]
    assert refunded.history[-1].at == refunded.refunded_at
    assert await shop.get_return("RMA-1") is None


def sweater_return(method: str = "pickup") -> NewReturn:
    return NewReturn(
        order_number="100235",
        item_names=("merino wool sweater",),
        reason="doesnt_fit",
        resolution="refund",
        method=method,
        fee=Decimal("5.95"),
        refund_amount=Decimal("114.05"),
        pickup_date=dt.date.today() + dt.timedelta(days=1) if method == "pickup" else None,
    )


async def test_a_return_request_gets_an_rma_and_its_next_step(shop: DemoShop) -> None:
    created, new = await shop.create_return(sweater_return())
    assert new
    assert created.rma.startswith("RMA-") and created.rma[4:].isdigit()
    assert created.status == "pickup_scheduled"
    assert [change.status for change in created.history] == ["requested", "pickup_scheduled"]
    assert created.fee == Decimal("5.95") and created.refund_amount == Decimal("114.05")
    assert [r.rma for r in await shop.returns_for_order("100235")] == [created.rma]

    label, _ = await shop.create_return(
        NewReturn(
            "100235", ("wool socks 3-pack",), "changed_mind", "refund", "drop_off", Decimal("5.95"), None
        )
    )
    assert label.status == "label_sent" and label.rma != created.rma


async def test_submitting_the_same_return_twice_gives_back_the_open_one(shop: DemoShop) -> None:
    first, _ = await shop.create_return(sweater_return())
    again, new = await shop.create_return(sweater_return(method="drop_off"))
    assert not new
    assert again.rma == first.rma and again.method == "pickup"
    assert len(await shop.returns_for_order("100235")) == 1


async def test_every_status_change_is_timestamped_and_a_rejection_frees_the_items(shop: DemoShop) -> None:
    request, _ = await shop.create_return(sweater_return())
    await shop.set_return_status(request.rma, "received")
    refunded = await shop.set_return_status(request.rma, "refunded", Decimal("114.05"))
    assert [change.status for change in refunded.history] == [
        "requested",
        "pickup_scheduled",
        "received",
        "refunded",
    ]
    times = [change.at for change in refunded.history]
    assert times == sorted(times) and refunded.refunded_at == times[-1]
    with pytest.raises(ValueError, match="unknown return status"):
        await shop.set_return_status(request.rma, "lost")
    with pytest.raises(LookupError):
        await shop.set_return_status("RMA-1", "received")

    other, _ = await shop.create_return(
        NewReturn("100235", ("wool socks 3-pack",), "changed_mind", "refund", "pickup", Decimal("5.95"), None)
    )
    await shop.set_return_status(other.rma, "rejected")
    again, new = await shop.create_return(
        NewReturn("100235", ("wool socks 3-pack",), "changed_mind", "refund", "pickup", Decimal("5.95"), None)
    )
    assert new and again.rma != other.rma


async def test_a_database_from_before_migrations_is_upgraded_in_place(database_url: str) -> None:
    """A shop database created before return requests had a history (tables, no version
    table) keeps its returns, and each gets the history it implies."""
    migrate(database_url, "0001")
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
        connection.execute(
            sa.text(
                "INSERT INTO shop_customers (id, email, name, vip, spent_last_12_months) "
                "VALUES (1, 'old@example.com', 'Old Customer', false, 0)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO shop_orders (id, number, customer_id, status, placed_at, delivered_at, "
                "shipping_method, ship_to_country) VALUES (1, '900001', 1, 'delivered', :placed, :placed, "
                "'standard', 'US')"
            ),
            {"placed": dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)},
        )
        connection.execute(
            sa.text(
                "INSERT INTO shop_returns (rma, order_id, status, reason, item_names, requested_at, "
                "refund_amount, refunded_at) VALUES ('RMA-900', 1, 'refunded', 'defective', '[\"kettle\"]', "
                ":requested, 20, :refunded)"
            ),
            {
                "requested": dt.datetime(2026, 1, 8, tzinfo=dt.timezone.utc),
                "refunded": dt.datetime(2026, 1, 12, tzinfo=dt.timezone.utc),
            },
        )
    engine.dispose()
    upgraded = DemoShop(database_url, SEED)
    try:
        old = await upgraded.get_return("RMA-900")
        order = await upgraded.get_order("900001")
        again, new = await upgraded.create_return(
            NewReturn("900001", ("kettle",), "defective", "refund", "pickup", Decimal("0"), Decimal("20"))
        )
    finally:
        await upgraded.close()
    assert old is not None and old.status == "refunded" and old.item_names == ("kettle",)
    assert [(change.status, change.at.day) for change in old.history] == [("requested", 8), ("refunded", 12)]
    assert order is not None and order.payment_method == "card"
    assert (again.rma, new) == ("RMA-900", False)  # the old return still holds its items
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        version = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one()
    engine.dispose()
    assert version == "0002"


def test_business_days_skip_weekends() -> None:
    friday = dt.date(2026, 11, 20)
    assert add_business_days(friday, 1) == dt.date(2026, 11, 23)
    assert add_business_days(friday, 5) == dt.date(2026, 11, 27)


async def test_the_first_requests_after_a_start_wait_for_one_migration(database_url: str) -> None:
    fresh = DemoShop(database_url, SEED)
    try:
        orders = await asyncio.gather(
            *(fresh.get_order(number) for number in ("100234", "100235", "100236", "100237"))
        )
        assert [order.number for order in orders if order] == ["100234", "100235", "100236", "100237"]
    finally:
        await fresh.close()


async def test_a_finished_return_keeps_its_status_and_an_exchange_frees_the_items(shop: DemoShop) -> None:
    with pytest.raises(ValueError, match="cannot change any more"):
        await shop.set_return_status("RMA-88120", "received")  # refunded already
    exchange = NewReturn(
        "100235", ("wool socks 3-pack",), "doesnt_fit", "exchange", "pickup", Decimal("0"), None
    )
    first, _ = await shop.create_return(exchange)
    await shop.set_return_status(first.rma, "exchanged")
    second, new = await shop.create_return(exchange)  # the new pair does not fit either
    assert new and second.rma != first.rma
