"""Command line: `python -m handoff create-agent EMAIL --role agent|trainer|admin`.

The password is read from standard input (typed twice, hidden, at a terminal; the first
line of a pipe otherwise), never from the command line, where `ps` and shell history would
show it. The database is DATABASE_URL (the gateway's), brought up to date first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from handoff import db, trainer
from handoff.auth import MIN_PASSWORD_CHARS, ROLES, AgentError, create_agent

ROOT = Path(__file__).resolve().parent.parent


@click.group()
def cli() -> None:
    """The helpdesk's administration commands."""


def read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@cli.command(
    "create-agent",
    help=f"Create a console user; the password (at least {MIN_PASSWORD_CHARS} characters) comes from stdin.",
)
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the person may do.")
@click.option("--name", help="Shown to customers and colleagues (default: the email's local part).")
def create_agent_command(email: str, role: str, name: str | None) -> None:
    url = os.environ.get("DATABASE_URL", db.DEFAULT_URL)
    password = read_password()
    db.migrate(url)
    engine = db.create_engine(url)
    try:
        with db.sessionmaker(engine, future=True).begin() as session:
            agent = create_agent(session, email, password, role, name)
    except AgentError as error:
        raise click.ClickException(str(error)) from error
    finally:
        engine.dispose()
    click.echo(f"Created {agent.role} {agent.email} ({agent.name}), id {agent.id}")


@cli.command("export-nlu")
@click.option("--nlu-dir", type=click.Path(path_type=Path), default=ROOT / "data" / "nlu", show_default=True)
@click.option("--domain", type=click.Path(path_type=Path), default=ROOT / "domain.yml", show_default=True)
def export_nlu_command(nlu_dir: Path, domain: Path) -> None:
    """Write the trainers' labels as Rasa NLU data (the trainer console's Export does the same)."""
    url = os.environ.get("DATABASE_URL", db.DEFAULT_URL)
    db.migrate(url)
    engine = db.create_engine(url)
    try:
        with db.sessionmaker(engine, future=True).begin() as session:
            result = trainer.export(session, nlu_dir, domain)
    finally:
        engine.dispose()
    click.echo(f"{result['examples_added']} new examples in {result['file']}")
    if result["new_intents"]:
        click.echo(
            f"New intents in {domain}: {', '.join(result['new_intents'])}; write their responses there."
        )


if __name__ == "__main__":
    cli()
