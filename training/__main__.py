"""Command line: `python -m training train | evaluate | export-nlu`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from bot.settings import ROOT, Settings


@click.group()
@click.option("--log-level", default="INFO", show_default=True, help="For train and evaluate.")
@click.pass_context
def cli(context: click.Context, log_level: str) -> None:
    """The trainer's commands: train and evaluate the model, export the trainers' labels."""
    context.obj = log_level.upper()


def log_at(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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
@click.pass_obj
def train(log_level: str, force: bool, project: Path | None) -> None:
    """Train the Rasa model if config, domain or data changed."""
    from training.model import ensure_model

    log_at(log_level)
    click.echo(ensure_model(project_dir(project), force=force))


@cli.command()
@PROJECT
@click.option(
    "--model", type=click.Path(dir_okay=False, path_type=Path), help="Another model than the project's."
)
@click.pass_obj
def evaluate(log_level: str, project: Path | None, model: Path | None) -> None:
    """Evaluate the serving model on the held-out NLU set and compare with the previous one."""
    from training.evaluation import compare
    from training.evaluation import evaluate as run_evaluation
    from training.model import current_model

    log_at(log_level)
    root = project_dir(project)
    result = run_evaluation(model or current_model(root), reports=root / "reports")
    click.echo(compare(result["current"], result["previous"]))


@cli.command("export-nlu")
@click.option("--nlu-dir", type=click.Path(path_type=Path), default=ROOT / "data" / "nlu", show_default=True)
@click.option("--domain", type=click.Path(path_type=Path), default=ROOT / "domain.yml", show_default=True)
def export_nlu(nlu_dir: Path, domain: Path) -> None:
    """Write the trainers' labels as Rasa NLU data (the trainer console's Export does the same)."""
    from handoff import db
    from training.curation import export

    url = os.environ.get("DATABASE_URL", db.DEFAULT_URL)
    db.migrate(url)
    engine = db.create_engine(url)
    try:
        with db.sessionmaker(engine, future=True).begin() as session:
            result = export(session, nlu_dir, domain)
    finally:
        engine.dispose()
    click.echo(f"{result['examples_added']} new examples in {result['file']}")
    if result["new_intents"]:
        click.echo(
            f"New intents in {domain}: {', '.join(result['new_intents'])}; write their responses there."
        )


if __name__ == "__main__":
    cli()
