"""Command line: `python -m bot serve | migrate` (the trainer's commands: `python -m training`)."""

from __future__ import annotations

import logging

import click
from aiohttp import web

from bot.settings import Settings


@click.group()
@click.option("--log-level", default="INFO", show_default=True)
def cli(log_level: str) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command()
def serve() -> None:
    """Run the gateway (settings from the environment: see docs/operations.md, "Configuration")."""
    from bot.app import create_app

    settings = Settings.from_env()
    web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log=None)


@cli.command()
def migrate() -> None:
    """Bring the helpdesk database schema up to date."""
    from handoff.db import migrate as run_migrations

    run_migrations(Settings.from_env().database_url)


if __name__ == "__main__":
    cli()
