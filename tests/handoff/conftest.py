"""The helpdesk database, migrated, on SQLite and on PostgreSQL (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from handoff import db


@pytest.fixture
def database(database_url: str) -> Iterator[db.Database]:
    db.migrate(database_url)
    database = db.Database(database_url)
    yield database
    database.close()
