"""The helpdesk database: one declarative base, an engine, units of work, migrations.

Units of work are short transactions with SQLAlchemy's synchronous engine. On PostgreSQL
each one runs in a small thread pool, so network round trips never block the event loop.
On SQLite (a local file, WAL) they run on the event loop itself: measured here, storing a
customer message takes 0.2 ms of SQL but 0.6 ms through the pool, because each hand-off to
a thread and back costs a wake-up, and those wake-ups were most of the gateway's latency
budget. The asyncio drivers hand every cursor call to a thread and were slower still.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session, declarative_base, sessionmaker

from serving import one_process_at_a_time

Base: Any = declarative_base()

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The embedded default: a SQLite file under var/ (DATABASE_URL overrides it everywhere).
DEFAULT_URL = f"sqlite:///{Path(__file__).resolve().parent.parent / 'var' / 'helpdesk.db'}"

T = TypeVar("T")


def _backend(url: str) -> str:
    backend = sa.engine.make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return backend


def ensure_sqlite_folder(url: str) -> None:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy, not the driver, begins transactions (see _sqlite_begin); WAL lets readers
    # and the writer work at once; synchronous=NORMAL still survives a process crash.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # The driver's deferred BEGIN lets two first messages of one sender both read "no
    # such customer" and both create one; IMMEDIATE makes writers queue instead. It also
    # makes SAVEPOINT work, which the driver's own transaction handling breaks.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str) -> sa.engine.Engine:
    if _backend(url) == "sqlite":
        ensure_sqlite_folder(url)
        # A file SQLite database gets no connection pool by default: reopening it for
        # every transaction also checkpoints the WAL, 1-2 ms each time.
        engine = sa.create_engine(
            url,
            future=True,
            poolclass=sa.pool.QueuePool,
            connect_args={"check_same_thread": False, "timeout": 15},
        )
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, future=True, pool_pre_ping=True)


class Database:
    """Runs units of work off the event loop, each in its own committed transaction."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.engine = create_engine(url)
        self.sessions = sessionmaker(self.engine, future=True, expire_on_commit=False)
        self.on_event_loop = _backend(url) == "sqlite"
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="helpdesk-db")

    def _transaction(self, work: Callable[..., T], *args: Any) -> T:
        with self.sessions.begin() as session:
            return work(session, *args)

    def _statements(self, work: Callable[..., T], *args: Any) -> T:
        with self.engine.begin() as connection:
            return work(connection, *args)

    async def _submit(self, call: Callable[[], T]) -> T:
        if self.on_event_loop:
            return call()
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(session, *args)` in a transaction, committed before this returns."""
        return await self._submit(functools.partial(self._transaction, work, *args))

    async def execute(self, work: Callable[..., T], *args: Any) -> T:
        """`work(connection, *args)` in a transaction: Core statements without the ORM session,
        which costs twice what SQLite takes to run the statements that every message needs."""
        return await self._submit(functools.partial(self._statements, work, *args))

    async def ping(self) -> None:
        await self.run(lambda session: session.execute(sa.text("SELECT 1")))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()


def migrate(url: str, revision: str = "head") -> None:
    """Brings the schema to `revision` (blocking: call it before serving, or in a thread)."""
    _backend(url)
    ensure_sqlite_folder(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    with one_process_at_a_time(url, "helpdesk migrations"):
        command.upgrade(config, revision)


__all__ = ["Base", "Database", "Session", "create_engine", "migrate"]
