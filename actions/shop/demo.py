"""The demo shop's order system: its own database, seeded from seeds/demo_shop.yml.

SQLite file by default (SHOP_DATABASE_URL for PostgreSQL). The schema is brought up to
date by Alembic (actions/shop/migrations) and the seed loaded the first time the backend is
used; seeding is idempotent and safe with several action servers (a unique marker row
decides who seeds).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import declarative_base, relationship, selectinload, sessionmaker

from actions.dates import add_business_days
from actions.shop.base import (
    FINAL_STATUSES,
    RELEASED_STATUSES,
    RETURN_STATUSES,
    NewReturn,
    Order,
    OrderItem,
    OrderNotCancellable,
    ReturnRequest,
    StatusChange,
    return_key,
)
from serving import one_process_at_a_time

logger = logging.getLogger(__name__)

ShopBase: Any = declarative_base()
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "shop_alembic_version"
# Alembic's context is global to the process: one migration at a time.
_MIGRATING = threading.Lock()


class CustomerRow(ShopBase):
    __tablename__ = "shop_customers"
    id = sa.Column(sa.Integer, primary_key=True)
    email = sa.Column(sa.String(320), nullable=False, unique=True)
    name = sa.Column(sa.String(200), nullable=False)
    vip = sa.Column(sa.Boolean, nullable=False, default=False)
    spent_last_12_months = sa.Column(sa.Numeric(12, 2), nullable=False, default=0)


class OrderRow(ShopBase):
    __tablename__ = "shop_orders"
    id = sa.Column(sa.Integer, primary_key=True)
    number = sa.Column(sa.String(32), nullable=False, unique=True)
    customer_id = sa.Column(sa.ForeignKey("shop_customers.id"), nullable=False)
    status = sa.Column(sa.String(20), nullable=False)
    placed_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    shipped_at = sa.Column(sa.DateTime(timezone=True))
    delivered_at = sa.Column(sa.DateTime(timezone=True))
    cancelled_at = sa.Column(sa.DateTime(timezone=True))
    shipping_method = sa.Column(sa.String(32), nullable=False)
    carrier = sa.Column(sa.String(32))
    tracking_number = sa.Column(sa.String(64))
    ship_to_country = sa.Column(sa.String(2), nullable=False, default="US")
    payment_method = sa.Column(sa.String(20), nullable=False, default="card")
    eta_min_business_days = sa.Column(sa.Integer)
    eta_max_business_days = sa.Column(sa.Integer)
    customer = relationship(CustomerRow, lazy="joined")
    items = relationship("OrderItemRow", order_by="OrderItemRow.id", lazy="selectin")


class OrderItemRow(ShopBase):
    __tablename__ = "shop_order_items"
    id = sa.Column(sa.Integer, primary_key=True)
    order_id = sa.Column(sa.ForeignKey("shop_orders.id"), nullable=False, index=True)
    name = sa.Column(sa.String(200), nullable=False)
    category = sa.Column(sa.String(50), nullable=False)
    price = sa.Column(sa.Numeric(12, 2), nullable=False)
    quantity = sa.Column(sa.Integer, nullable=False, default=1)
    personalised = sa.Column(sa.Boolean, nullable=False, default=False)


class ReturnRow(ShopBase):
    __tablename__ = "shop_returns"
    id = sa.Column(sa.Integer, primary_key=True)
    rma = sa.Column(sa.String(32), nullable=False, unique=True)
    order_id = sa.Column(sa.ForeignKey("shop_orders.id"), nullable=False, index=True)
    status = sa.Column(sa.String(20), nullable=False)
    reason = sa.Column(sa.String(32), nullable=False)
    item_names = sa.Column(sa.JSON, nullable=False)
    requested_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    pickup_date = sa.Column(sa.Date)
    refund_amount = sa.Column(sa.Numeric(12, 2))
    refunded_at = sa.Column(sa.DateTime(timezone=True))
    resolution = sa.Column(sa.String(20), nullable=False, default="refund")
    method = sa.Column(sa.String(20), nullable=False, default="pickup")
    fee = sa.Column(sa.Numeric(12, 2), nullable=False, default=0)
    # NewReturn.key while the return holds its items; NULL once released (RELEASED_STATUSES).
    open_key = sa.Column(sa.String(400), unique=True)
    order = relationship(OrderRow, lazy="joined")
    events = relationship("ReturnEventRow", order_by="ReturnEventRow.id", lazy="selectin")


class ReturnEventRow(ShopBase):
    __tablename__ = "shop_return_events"
    id = sa.Column(sa.Integer, primary_key=True)
    return_id = sa.Column(sa.ForeignKey("shop_returns.id"), nullable=False, index=True)
    status = sa.Column(sa.String(20), nullable=False)
    at = sa.Column(sa.DateTime(timezone=True), nullable=False)


class SeedMarker(ShopBase):
    __tablename__ = "shop_seed"
    name = sa.Column(sa.String(64), primary_key=True)
    seeded_at = sa.Column(sa.DateTime(timezone=True), nullable=False)


def migrate(url: str, revision: str = "head") -> None:
    """Brings the shop schema to `revision` (blocking). A database created before the shop
    had migrations (tables, no version table) is recognised as revision 0001 first."""
    with _MIGRATING, one_process_at_a_time(url, "shop migrations"):
        _migrate(url, revision)


def _migrate(url: str, revision: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    if "shop_orders" in tables and VERSION_TABLE not in tables:
        command.stamp(config, "0001")
    command.upgrade(config, revision)


def async_url(url: str) -> str:
    """Maps a plain database URL onto the asyncio driver SQLAlchemy uses here."""
    for plain, driver in (("sqlite://", "sqlite+aiosqlite://"), ("postgresql://", "postgresql+asyncpg://")):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands datetimes back without their zone; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.timezone.utc)


def _order_from_row(row: OrderRow) -> Order:
    expected = None
    shipped_at = _utc(row.shipped_at)
    if row.status == "shipped" and shipped_at and row.eta_min_business_days is not None:
        shipped = shipped_at.date()
        expected = (
            add_business_days(shipped, row.eta_min_business_days),
            add_business_days(shipped, row.eta_max_business_days),
        )
    return Order(
        number=row.number,
        customer_email=row.customer.email,
        status=row.status,
        placed_at=_utc(row.placed_at),
        items=tuple(
            OrderItem(i.name, i.category, Decimal(i.price), i.quantity, i.personalised) for i in row.items
        ),
        shipping_method=row.shipping_method,
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        ship_to_country=row.ship_to_country,
        shipped_at=shipped_at,
        delivered_at=_utc(row.delivered_at),
        cancelled_at=_utc(row.cancelled_at),
        expected_delivery=expected,
        customer_vip=bool(row.customer.vip),
        payment_method=row.payment_method or "card",
    )


def _return_from_row(row: ReturnRow) -> ReturnRequest:
    return ReturnRequest(
        rma=row.rma,
        order_number=row.order.number,
        status=row.status,
        reason=row.reason,
        item_names=tuple(row.item_names),
        requested_at=_utc(row.requested_at),
        pickup_date=row.pickup_date,
        refund_amount=Decimal(row.refund_amount) if row.refund_amount is not None else None,
        refunded_at=_utc(row.refunded_at),
        resolution=row.resolution,
        method=row.method,
        fee=Decimal(row.fee),
        history=tuple(StatusChange(event.status, _utc(event.at)) for event in row.events),
    )


def seed_rows(seed: dict[str, Any], now: dt.datetime) -> list[Any]:
    """Builds the rows of the seed file, every date counted back from `now`."""

    def ago(days: int | None) -> dt.datetime | None:
        return None if days is None else now - dt.timedelta(days=days)

    methods = seed["shipping_methods"]
    customers = {
        c["email"]: CustomerRow(
            email=c["email"],
            name=c["name"],
            vip=bool(c.get("vip", False)),
            spent_last_12_months=Decimal(str(c.get("spent_last_12_months", "0"))),
        )
        for c in seed["customers"]
    }
    orders: dict[str, OrderRow] = {}
    for o in seed["orders"]:
        method = methods[o["shipping_method"]]
        orders[o["number"]] = OrderRow(
            number=o["number"],
            customer=customers[o["customer"]],
            status=o["status"],
            placed_at=ago(o["placed_days_ago"]),
            shipped_at=ago(o.get("shipped_days_ago")),
            delivered_at=ago(o.get("delivered_days_ago")),
            shipping_method=o["shipping_method"],
            carrier=method["carrier"] if o.get("shipped_days_ago") is not None else None,
            tracking_number=o.get("tracking_number"),
            ship_to_country=o.get("ship_to_country", "US"),
            payment_method=o.get("payment_method", "card"),
            eta_min_business_days=method["min_business_days"],
            eta_max_business_days=method["max_business_days"],
            items=[
                OrderItemRow(
                    name=i["name"],
                    category=i["category"],
                    price=Decimal(str(i["price"])),
                    quantity=int(i.get("quantity", 1)),
                    personalised=bool(i.get("personalised", False)),
                )
                for i in o["items"]
            ],
        )
    returns = []
    for r in seed.get("returns", []):
        # The history as seeded: each status with the day it was reached (`<status>_days_ago`,
        # the request's day when the seed does not say).
        history = [
            (status, ago(r.get(f"{status}_days_ago", r["requested_days_ago"]))) for status in r["history"]
        ]
        returns.append(
            ReturnRow(
                rma=r["rma"],
                order=orders[r["order"]],
                status=r["history"][-1],
                reason=r["reason"],
                resolution=r.get("resolution", "refund"),
                method=r.get("method", "pickup"),
                fee=Decimal(str(r.get("fee", "0"))),
                item_names=list(r["items"]),
                requested_at=ago(r["requested_days_ago"]),
                pickup_date=(now + dt.timedelta(days=r["pickup_in_days"])).date()
                if "pickup_in_days" in r
                else None,
                refund_amount=Decimal(str(r["refund_amount"])) if "refund_amount" in r else None,
                refunded_at=ago(r.get("refunded_days_ago")),
                open_key=None
                if r["history"][-1] in RELEASED_STATUSES
                else return_key(r["order"], r["items"]),
                events=[ReturnEventRow(status=status, at=at) for status, at in history],
            )
        )
    return [*customers.values(), *orders.values(), *returns]


class DemoShop:
    """ShopBackend over the demo shop's own database."""

    def __init__(self, database_url: str, seed_file: Path) -> None:
        self._url = database_url
        # pool_pre_ping: after PostgreSQL restarts, a pooled connection is found dead and replaced
        # before a customer's request uses it.
        self._engine: AsyncEngine = create_async_engine(async_url(database_url), pool_pre_ping=True)
        self._sessions = sessionmaker(self._engine, class_=AsyncSession, expire_on_commit=False)
        self._seed_file = seed_file
        self._ready = False
        self._preparing: asyncio.Lock | None = None

    async def prepare(self) -> None:
        """Creates the tables and seeds them once per database (idempotent)."""
        if self._ready:
            return
        self._preparing = self._preparing or asyncio.Lock()
        async with self._preparing:  # the first requests after a start wait for one migration
            if not self._ready:
                await self._migrate_and_seed()

    async def _migrate_and_seed(self) -> None:
        await asyncio.to_thread(migrate, self._url)
        now = dt.datetime.now(dt.timezone.utc)
        try:
            async with self._sessions.begin() as session:
                session.add(SeedMarker(name=self._seed_file.name, seeded_at=now))
                await session.flush()
                seed = yaml.safe_load(self._seed_file.read_text(encoding="utf-8"))
                session.add_all(seed_rows(seed, now))
            logger.info("Seeded the demo shop from %s", self._seed_file)
        except IntegrityError:
            logger.debug("Demo shop already seeded")
        self._ready = True

    async def close(self) -> None:
        await self._engine.dispose()

    async def _order_row(self, session: AsyncSession, number: str) -> OrderRow | None:
        result = await session.execute(
            sa.select(OrderRow).where(OrderRow.number == number).options(selectinload(OrderRow.items))
        )
        return result.scalars().first()

    async def get_order(self, number: str) -> Order | None:
        await self.prepare()
        async with self._sessions() as session:
            row = await self._order_row(session, number)
            return _order_from_row(row) if row else None

    async def orders_of(self, email: str) -> list[Order]:
        await self.prepare()
        async with self._sessions() as session:
            result = await session.execute(
                sa.select(OrderRow)
                .join(CustomerRow)
                .where(sa.func.lower(CustomerRow.email) == email.strip().lower())
                .options(selectinload(OrderRow.items))
                .order_by(OrderRow.placed_at.desc())
            )
            return [_order_from_row(row) for row in result.scalars()]

    async def cancel_order(self, number: str) -> Order:
        await self.prepare()
        async with self._sessions.begin() as session:
            # One conditional UPDATE: a concurrent shipment or cancellation cannot slip in.
            result = await session.execute(
                sa.update(OrderRow)
                .where(OrderRow.number == number, OrderRow.status == "processing")
                .values(status="cancelled", cancelled_at=dt.datetime.now(dt.timezone.utc))
            )
            row = await self._order_row(session, number)
            if row is None:
                raise LookupError(number)
            if result.rowcount != 1:
                raise OrderNotCancellable(_order_from_row(row))
            await session.refresh(row)
            return _order_from_row(row)

    async def get_return(self, rma: str) -> ReturnRequest | None:
        await self.prepare()
        async with self._sessions() as session:
            result = await session.execute(sa.select(ReturnRow).where(ReturnRow.rma == rma.upper()))
            row = result.scalars().first()
            return _return_from_row(row) if row else None

    async def returns_for_order(self, number: str) -> list[ReturnRequest]:
        await self.prepare()
        async with self._sessions() as session:
            result = await session.execute(
                sa.select(ReturnRow).join(OrderRow).where(OrderRow.number == number).order_by(ReturnRow.id)
            )
            return [_return_from_row(row) for row in result.scalars()]

    async def _return_row(
        self, session: AsyncSession, condition: Any, lock: bool = False
    ) -> ReturnRow | None:
        statement = sa.select(ReturnRow).where(condition)
        if lock:  # PostgreSQL: concurrent status changes queue (SQLite's writer lock does the same)
            statement = statement.with_for_update(of=ReturnRow)
        result = await session.execute(statement)
        return result.scalars().first()

    async def create_return(self, request: NewReturn) -> tuple[ReturnRequest, bool]:
        await self.prepare()
        for _ in range(5):  # a fresh RMA number if a random one is taken
            try:
                async with self._sessions.begin() as session:
                    existing = await self._return_row(session, ReturnRow.open_key == request.key)
                    if existing is not None:
                        return _return_from_row(existing), False
                    order = await self._order_row(session, request.order_number)
                    if order is None:
                        raise LookupError(request.order_number)
                    now = dt.datetime.now(dt.timezone.utc)
                    next_status = {"pickup": "pickup_scheduled", "drop_off": "label_sent"}.get(request.method)
                    statuses = ["requested", *([next_status] if next_status else [])]
                    row = ReturnRow(
                        rma=f"RMA-{secrets.randbelow(90000) + 10000}",
                        order_id=order.id,
                        status=statuses[-1],
                        reason=request.reason,
                        resolution=request.resolution,
                        method=request.method,
                        fee=request.fee,
                        item_names=list(request.item_names),
                        requested_at=now,
                        pickup_date=request.pickup_date,
                        refund_amount=request.refund_amount,
                        open_key=request.key,
                        events=[ReturnEventRow(status=status, at=now) for status in statuses],
                    )
                    session.add(row)
                    await session.flush()
                    rma = row.rma
            except IntegrityError:
                # Either the same items were submitted at the same moment (the open one wins)
                # or the RMA number was taken (try another).
                async with self._sessions() as session:
                    existing = await self._return_row(session, ReturnRow.open_key == request.key)
                    if existing is not None:
                        return _return_from_row(existing), False
                continue
            created = await self.get_return(rma)
            assert created is not None
            return created, True
        raise RuntimeError("could not allocate an RMA number")

    async def set_return_status(
        self, rma: str, status: str, refund_amount: Decimal | None = None
    ) -> ReturnRequest:
        if status not in RETURN_STATUSES:
            raise ValueError(f"unknown return status {status!r} (known: {', '.join(RETURN_STATUSES)})")
        if status == "requested":
            raise ValueError("a return is requested once, when it is created")
        await self.prepare()
        async with self._sessions.begin() as session:
            row = await self._return_row(session, ReturnRow.rma == rma.upper(), lock=True)
            if row is None:
                raise LookupError(rma)
            if row.status in FINAL_STATUSES:
                raise ValueError(f"return {row.rma} is {row.status}: its status cannot change any more")
            now = dt.datetime.now(dt.timezone.utc)
            row.status = status
            row.events.append(ReturnEventRow(status=status, at=now))
            if status == "refunded":
                row.refunded_at = now
                if refund_amount is not None:
                    row.refund_amount = refund_amount
            if status in RELEASED_STATUSES:
                row.open_key = None  # its items may be returned again
        returned = await self.get_return(rma)
        assert returned is not None
        return returned

    async def check(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
