"""Alembic environment for the demo shop's database (run through actions.shop.demo.migrate).

Its version table is `shop_alembic_version`, so the shop can share a database with the
helpdesk without the two migration histories meeting.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlalchemy import engine_from_config, pool

from actions.shop.demo import VERSION_TABLE, ShopBase

config = context.config


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=ShopBase.metadata,
            version_table=VERSION_TABLE,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Several action servers may start at once: one migrates, the others wait.
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext('harbor_shop_migrations'))")
                )
            context.run_migrations()


run_migrations_online()
