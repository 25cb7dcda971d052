"""Command line: `python -m bot serve | train | migrate`."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from aiohttp import web

from bot.settings import Settings


@click.group()
@click.option("--log-level", default="INFO", show_default=True)
def cli(log_level: str) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command()
def serve() -> None:
    """Run the gateway (settings from the environment: see README)."""
    from bot.app import create_app

    settings = Settings.from_env()
    web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log=None)


PROJECT = click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The project folder (config.yml, domain.yml, data/, models/); PROJECT_DIR, or this repository.",
)


def project_dir(project: Path | None) -> Path:
    return (project or Settings.from_env().project_dir).resolve()


@cli.command()
@click.option("--force", is_flag=True, help="Train even if the inputs did not change.")
@PROJECT
def train(force: bool, project: Path | None) -> None:
    """Train the Rasa model if config, domain or data changed."""
    from bot.training import ensure_model

    click.echo(ensure_model(project_dir(project), force=force))


@cli.command()
@PROJECT
@click.option(
    "--model", type=click.Path(dir_okay=False, path_type=Path), help="Another model than the project's."
)
def evaluate(project: Path | None, model: Path | None) -> None:
    """Evaluate the serving model on the held-out NLU set and compare with the previous one."""
    from bot.evaluation import compare
    from bot.evaluation import evaluate as run_evaluation
    from bot.training import current_model

    root = project_dir(project)
    result = run_evaluation(model or current_model(root), reports=root / "reports")
    click.echo(compare(result["current"], result["previous"]))


@cli.command()
def migrate() -> None:
    """Bring the helpdesk database schema up to date."""
    from handoff.db import migrate as run_migrations

    run_migrations(Settings.from_env().database_url)


if __name__ == "__main__":
    cli()
