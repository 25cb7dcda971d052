"""Fixtures shared by the test packages: databases, and the running stack."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from handoff import db
from tests.support.stack import MAKE_RUN_RASA_SERVERS, SHARED_DEMO_ORDERS, Stack
from tests.support.telegram_api import DEFAULT_TOKEN, FakeBotApi

# The PostgreSQL server every developer and CI machine runs (trust auth on loopback).
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    name = f"harbor_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(POSTGRES_ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield str(sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database test runs on SQLite (the default) and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def database(database_url: str) -> Iterator[db.Database]:
    """The helpdesk database, migrated (the helpdesk's and the trainer's tests)."""
    db.migrate(database_url)
    database = db.Database(database_url)
    yield database
    database.close()


@pytest.fixture(scope="session")
def telegram_api() -> Iterator[FakeBotApi]:
    """A local stand-in of Telegram's Bot API, which the stack's gateway polls."""
    with FakeBotApi.running(DEFAULT_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, telegram_api: FakeBotApi) -> Iterator[Stack]:
    """Rasa with the trained model (two servers, as make run starts them), the action server
    and the gateway (with Telegram on, against the stand-in), once per session."""
    telegram = {
        "TELEGRAM_TOKEN": DEFAULT_TOKEN,
        "TELEGRAM_BASE_URL": telegram_api.base_url,
        "TELEGRAM_BASE_FILE_URL": telegram_api.base_file_url,
        # The tests share this stack and fail checks of the same demo orders (and emails) on
        # purpose; per client address the default stands (test_orders.py counts it).
        **SHARED_DEMO_ORDERS,
    }
    with Stack(tmp_path_factory.mktemp("stack"), env=telegram, rasa_servers=MAKE_RUN_RASA_SERVERS) as running:
        yield running
