"""Command line: `python -m handoff create-agent EMAIL --role agent|trainer|admin`.

The password is read from standard input (typed twice, hidden, at a terminal; the first
line of a pipe otherwise), never from the command line, where `ps` and shell history would
show it. The database is DATABASE_URL (the gateway's), brought up to date first.
"""

from __future__ import annotations

import os
import sys

import click

from handoff import db
from handoff.auth import MIN_PASSWORD_CHARS, ROLES, AgentError, create_agent


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


if __name__ == "__main__":
    cli()
