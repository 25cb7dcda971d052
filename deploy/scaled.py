"""make run-scaled: scale mode on one machine. Two gateways, two Rasa servers and two action
servers behind nginx, on PostgreSQL and Redis, under supervisord, which restarts any process
that dies.

Scale mode is configuration only; this module writes that configuration and starts it:

- PostgreSQL holds the helpdesk (`<prefix>_helpdesk`), the demo shop (`<prefix>_shop`) and
  Rasa's SQL tracker store (`<prefix>_rasa`); the databases are created when missing.
- Redis holds Rasa's lock store, the gateways' publish/subscribe, their Socket.IO manager,
  the rate limits and the action servers' guessing and code limits.
- nginx (Debian's package) listens on the public port: Socket.IO pinned to one gateway per
  client address, everything else to any gateway; and in front of the action servers for
  Rasa (deploy/nginx.conf.j2).
- supervisord (from PyPI) runs every process and restarts one that exits
  (deploy/supervisord.conf.j2); the secrets reach the processes through its environment
  and are written to no file.

The tests start the same on free ports (tests/support/scaled.py); `python -m deploy.scaled
--help` lists the options.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import sqlalchemy as sa

from serving import SERVING_ENV

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DATABASE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Generated when the environment has none: the same for every process of the run.
SECRETS = ("RASA_TOKEN", "HELPDESK_SECRET_KEY")


@dataclass(frozen=True)
class Scaled:
    run_dir: Path
    host: str = "127.0.0.1"  # where nginx listens for customers and agents
    public_port: int = 8080
    gateway_ports: tuple[int, ...] = (8081, 8082)
    rasa_ports: tuple[int, ...] = (5005, 5006)
    action_ports: tuple[int, ...] = (5055, 5056)
    actions_port: int = 5054  # nginx in front of the action servers, for Rasa
    mail_port: int = 8025
    postgres_url: str = "postgresql://127.0.0.1:5432"
    database_prefix: str = "harbor"
    redis_url: str = "redis://127.0.0.1:6379/0"
    model: Path = ROOT / "models" / "current.tar.gz"
    environment: dict[str, str] = field(default_factory=dict)  # for every program (the tests' limits)

    def __post_init__(self) -> None:
        for name in ("helpdesk", "shop", "rasa"):
            if not DATABASE_NAME.match(self.database_name(name)):
                raise ValueError(f"not a database name: {self.database_name(name)!r}")

    def database_name(self, name: str) -> str:
        return f"{self.database_prefix}_{name}"

    def database_url(self, name: str) -> str:
        url = sa.engine.make_url(self.postgres_url)
        if not url.username:
            url = url.set(username=getpass.getuser())
        return url.set(database=self.database_name(name)).render_as_string(hide_password=False)

    @property
    def public_url(self) -> str:
        return f"http://{self.host}:{self.public_port}"

    @property
    def conf(self) -> Path:
        return self.run_dir / "supervisord.conf"

    def programs(self) -> list[dict[str, Any]]:
        serving = dict(SERVING_ENV)
        rasa_urls = ",".join(f"http://127.0.0.1:{port}" for port in self.rasa_ports)
        redis = {"REDIS_URL": self.redis_url}
        programs = []
        for n, port in enumerate(self.rasa_ports, 1):
            command = (
                f"{BIN / 'rasa'} run --enable-api --auth-token=%(ENV_RASA_TOKEN)s -i 127.0.0.1 "
                f"--port {port} --model {self.model} --endpoints {self.run_dir / 'endpoints.yml'} "
                f"--credentials {ROOT / 'credentials.yml'}"
            )
            programs.append({"name": f"rasa-{n}", "command": command, "env": serving})
        for n, port in enumerate(self.action_ports, 1):
            env = {
                **serving,
                **redis,
                "SANIC_HOST": "127.0.0.1",
                "SHOP_DATABASE_URL": self.database_url("shop"),
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.mail_port),
            }
            command = f"{BIN / 'rasa'} run actions --port {port} --actions actions"
            programs.append({"name": f"actions-{n}", "command": command, "env": env})
        for n, port in enumerate(self.gateway_ports, 1):
            env = {
                **serving,
                **redis,
                "GATEWAY_HOST": "127.0.0.1",
                "GATEWAY_PORT": str(port),
                "DATABASE_URL": self.database_url("helpdesk"),
                "RASA_URL": rasa_urls,
                "ACTION_SERVER_URL": f"http://127.0.0.1:{self.actions_port}",
                # nginx on this machine: its X-Forwarded-For names the customer.
                "TRUSTED_PROXIES": "127.0.0.1,::1",
            }
            command = f"{BIN / 'python'} -m bot serve"
            programs.append({"name": f"gateway-{n}", "command": command, "env": env})
        nginx = (
            f"{NGINX} -p {self.run_dir / 'nginx'}/ -c {self.run_dir / 'nginx.conf'} "
            f"-e {self.run_dir / 'nginx' / 'error.log'} -g 'daemon off;'"
        )
        programs.append({"name": "nginx", "command": nginx, "env": {}})
        mail = f"{BIN / 'python'} -m aiosmtpd -n -l 127.0.0.1:{self.mail_port} -c aiosmtpd.handlers.Debugging"
        programs.append({"name": "mail", "command": mail, "env": {}})
        for program in programs:
            program["environment"] = _supervisor_environment({**program["env"], **self.environment})
        return programs

    def render(self) -> None:
        """Writes supervisord.conf, nginx.conf and Rasa's endpoints.yml into the run folder."""
        for folder in ("logs", "nginx/tmp"):
            (self.run_dir / folder).mkdir(parents=True, exist_ok=True)
        templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
        )
        database = sa.engine.make_url(self.database_url("rasa"))
        redis = sa.engine.make_url(self.redis_url.replace("redis://", "redis+x://", 1))
        values = {
            "root": ROOT,
            "run_dir": self.run_dir,
            "host": self.host,
            "public_port": self.public_port,
            "gateway_ports": self.gateway_ports,
            "action_ports": self.action_ports,
            "actions_port": self.actions_port,
            "programs": self.programs(),
            "database": {
                "host": database.host or "127.0.0.1",
                "port": database.port or 5432,
                "rasa_db": self.database_name("rasa"),
                "username": database.username,
                "password": database.password,
            },
            "redis": {
                "host": redis.host or "127.0.0.1",
                "port": redis.port or 6379,
                "db": int(redis.database or 0),
                "password": redis.password,
            },
            # Rasa's lock store takes letters and digits only.
            "key_prefix": re.sub(r"[^A-Za-z0-9]", "", self.database_prefix),
            "worker_user": getpass.getuser() if os.geteuid() == 0 else None,
        }
        for template, target in (
            ("supervisord.conf.j2", self.conf),
            ("nginx.conf.j2", self.run_dir / "nginx.conf"),
            ("endpoints.yml.j2", self.run_dir / "endpoints.yml"),
        ):
            target.write_text(templates.get_template(template).render(values), encoding="utf-8")

    @contextlib.contextmanager
    def _server(self) -> Iterator[sa.engine.Connection]:
        """A connection to the PostgreSQL server's maintenance database, outside transactions."""
        maintenance = sa.engine.make_url(self.database_url("helpdesk")).set(database="postgres")
        engine = sa.create_engine(maintenance, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()

    def create_databases(self) -> list[str]:
        """Creates the missing databases; returns the names of those it created."""
        created = []
        with self._server() as connection:
            for name in ("helpdesk", "shop", "rasa"):
                database = self.database_name(name)
                exists = connection.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
                ).first()
                if not exists:
                    connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
                    created.append(database)
        return created

    def drop_databases(self) -> None:
        with self._server() as connection:
            for name in ("helpdesk", "shop", "rasa"):
                connection.execute(
                    sa.text(f'DROP DATABASE IF EXISTS "{self.database_name(name)}" WITH (FORCE)')
                )

    def environment_with_secrets(self, environ: dict[str, str]) -> dict[str, str]:
        """The environment supervisord runs with: the caller's, and any missing secret made."""
        env = dict(environ)
        for name in SECRETS:
            if not env.get(name):
                env[name] = secrets.token_urlsafe(32)
        return env


def _supervisor_environment(env: dict[str, str]) -> str:
    # supervisord's KEY="value",... with its own expansion: a literal % is written %%.
    return ",".join(
        f'{key}="{value.replace("%", "%%").replace(chr(34), chr(92) + chr(34))}"'
        for key, value in env.items()
    )


def check_prerequisites() -> None:
    missing = [path for path in (NGINX, str(BIN / "supervisord")) if not Path(path).exists()]
    if missing:
        raise SystemExit(f"Scale mode needs {', '.join(missing)}: `make run-scaled` installs them")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run-dir", type=Path, default=ROOT / "var" / "scaled", help="configuration and logs"
    )
    parser.add_argument("--port", type=int, default=8080, help="nginx's public port")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SCALED_POSTGRES_URL", "postgresql://127.0.0.1:5432"),
        help="the PostgreSQL server (env SCALED_POSTGRES_URL)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("SCALED_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the Redis server (env SCALED_REDIS_URL)",
    )
    parser.add_argument("--render-only", action="store_true", help="write the configuration, start nothing")
    args = parser.parse_args(argv)
    scaled = Scaled(
        run_dir=args.run_dir.resolve(),
        public_port=args.port,
        postgres_url=args.postgres,
        redis_url=args.redis,
    )
    scaled.render()
    print(f"Scale mode's configuration: {scaled.run_dir}", flush=True)
    if args.render_only:
        return
    check_prerequisites()
    for database in scaled.create_databases():
        print(f"Created the PostgreSQL database {database}", flush=True)
    print(
        f"Starting 2 gateways, 2 Rasa servers, 2 action servers and nginx: {scaled.public_url} "
        f"(logs in {scaled.run_dir / 'logs'}; Rasa takes a minute to load its model)",
        flush=True,
    )
    env = scaled.environment_with_secrets(dict(os.environ))
    supervisord = str(BIN / "supervisord")
    os.execve(supervisord, [supervisord, "-c", str(scaled.conf)], env)


if __name__ == "__main__":
    main()
