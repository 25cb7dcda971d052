"""Starts the real stack on free ports: Rasa (trained model), action server, gateway.

Used by the end-to-end tests and by the benchmarks. Each process writes its log to the
stack's folder; a process that dies or a stack that is not healthy in time fails with
the tail of those logs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
import sqlalchemy as sa

from bot.shop_identity import identifier_hash
from serving import SERVING_ENV
from tests.support.mailbox import Mailbox
from training.model import current_model

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STARTUP_SECONDS = 240
# For the benchmarks that send at machine speed from a few senders (speed and accuracy, not
# limits, are what they measure): the per-sender rate limit out of the way.
MACHINE_SPEED = {"SENDER_MESSAGES_PER_MINUTE": "1000000", "SENDER_BURST": "1000000"}
# For the test session and the conversation benchmark, whose many customers fail checks of the
# same few demo orders and emails on purpose, and cancel the same order again and again: the
# per-order and per-email limits out of the way (the per-address one stands).
SHARED_DEMO_ORDERS = {
    "FAILED_CHECKS_PER_ORDER": "100000",
    "FAILED_CHECKS_PER_EMAIL": "100000",
    "ONE_TIME_CODES_PER_ORDER": "100000",
}
# make run (the Procfile) starts two Rasa servers, so that both cores answer messages: one
# Rasa process handles one message at a time. The benchmarks start the same.
MAKE_RUN_RASA_SERVERS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def texts(replies: list[dict[str, Any]]) -> str:
    """The text of the bot's replies, one per line."""
    return "\n".join(reply.get("text") or "" for reply in replies)


def create_agent(env: dict[str, str], email: str, password: str, role: str, name: str | None) -> None:
    """Through the command an administrator runs, the password on standard input; `env`
    names the helpdesk database (DATABASE_URL)."""
    command = [sys.executable, "-m", "handoff", "create-agent", email, "--role", role]
    subprocess.run(
        [*command, *(["--name", name] if name else [])],
        input=password + "\n",
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


class StackError(RuntimeError):
    pass


class Stack:
    def __init__(self, workdir: Path, env: dict[str, str] | None = None, rasa_servers: int = 1) -> None:
        self.workdir = workdir
        # Rasa servers "rasa", "rasa2", ...; the gateway pins each conversation to one.
        self.rasa_ports = [free_port() for _ in range(rasa_servers)]
        self.rasa_port, self.actions_port, self.gateway_port = self.rasa_ports[0], free_port(), free_port()
        self.rasa_url = f"http://127.0.0.1:{self.rasa_port}"
        self.actions_url = f"http://127.0.0.1:{self.actions_port}"
        self.gateway_url = f"http://127.0.0.1:{self.gateway_port}"
        self.helpdesk_db = workdir / "helpdesk.db"
        self.shop_db = workdir / "shop.db"
        # A copy, so a test can edit the knowledge base the running action server answers from.
        self.knowledge_base = workdir / "knowledge_base"
        self._extra_env = env or {}
        # As a deployment runs it: the REST channel needs the shop back end's secret.
        self.rest_secret = secrets.token_urlsafe(16)
        self.rest_headers = {"Authorization": f"Bearer {self.rest_secret}"}
        # The shop's key for its signed-in customers (bot/shop_identity.py).
        self.identity_secret = secrets.token_urlsafe(16)
        # And Rasa's HTTP API needs its token (`rasa run --auth-token`, the gateway's RASA_TOKEN):
        # a test or benchmark that calls it directly passes `params=stack.rasa_params`.
        self.rasa_token = secrets.token_urlsafe(24)
        self.rasa_params = {"token": self.rasa_token}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        # The customers' mailboxes: an SMTP server on loopback that the action server mails.
        self.mailbox = Mailbox(free_port())
        self._mailbox_running = False

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
            **SERVING_ENV,
            "DATABASE_URL": f"sqlite:///{self.helpdesk_db}",
            "SHOP_DATABASE_URL": f"sqlite:///{self.shop_db}",
            "KNOWLEDGE_BASE_DIR": str(self.knowledge_base),
            "RASA_URL": ",".join(f"http://127.0.0.1:{port}" for port in self.rasa_ports),
            "ACTION_SERVER_URL": self.actions_url,
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(self.gateway_port),
            "REST_CHANNEL_SECRET": self.rest_secret,
            "SHOP_IDENTITY_SECRET": self.identity_secret,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.mailbox.port),
            "SMTP_TLS": "none",
            "RASA_TOKEN": self.rasa_token,
            **self._extra_env,
        }

    def _endpoints(self) -> Path:
        path = self.workdir / "endpoints.yml"
        path.write_text(
            f'action_endpoint:\n  url: "{self.actions_url}/webhook"\n'
            f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {self.workdir / 'tracker.db'}\n",
            encoding="utf-8",
        )
        return path

    def commands(self) -> dict[str, list[str]]:
        model = current_model()
        if not model.exists():
            raise StackError(f"no trained model at {model}: run `make model` first")
        rasa = {
            ("rasa" if n == 0 else f"rasa{n + 1}"): [
                str(BIN / "rasa"),
                "run",
                "--enable-api",
                # One argument: a token that starts with "-" would read as an option.
                f"--auth-token={self.rasa_token}",
                "--interface",
                "127.0.0.1",
                "--port",
                str(port),
                "--model",
                str(model.resolve()),
                "--endpoints",
                str(self._endpoints()),
                "--credentials",
                str(ROOT / "credentials.yml"),
            ]
            for n, port in enumerate(self.rasa_ports)
        }
        return {
            **rasa,
            "actions": [
                str(BIN / "rasa"),
                "run",
                "actions",
                "--port",
                str(self.actions_port),
                "--actions",
                "actions",
            ],
            "gateway": [sys.executable, "-m", "bot", "serve"],
        }

    def start(self, only: tuple[str, ...] | None = None) -> None:
        if not self.knowledge_base.exists():
            shutil.copytree(ROOT / "knowledge_base", self.knowledge_base)
        if not self._mailbox_running:
            self.mailbox.start()
            self._mailbox_running = True
        env = self._env()
        for name, command in self.commands().items():
            if only is not None and name not in only:
                continue
            log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
            self._processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_healthy(self, timeout: float = STARTUP_SECONDS) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for name, process in self._processes.items():
                if process.poll() is not None:
                    raise StackError(f"{name} exited with {process.returncode}\n{self.logs()}")
            try:
                response = requests.get(f"{self.gateway_url}/health", timeout=5)
                last = response.json()
                if response.status_code == 200:
                    return last
            except requests.RequestException as error:
                last = str(error)
            time.sleep(1)
        raise StackError(f"stack not healthy after {timeout:.0f}s: {last}\n{self.logs()}")

    def pids(self) -> dict[str, int]:
        """Each running process's id, by name (rasa, actions, gateway)."""
        return {name: process.pid for name, process in self._processes.items() if process.poll() is None}

    def stop(self, name: str) -> None:
        process = self._processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in list(self._processes):
            self.stop(name)
        if self._mailbox_running:
            self.mailbox.stop()
            self._mailbox_running = False

    def logs(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.workdir.glob("*.log")):
            tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def signed_in(self, email: str) -> dict[str, str]:
        """What the shop's page passes for its signed-in customer `email`."""
        return {"identifier": email, "identifier_hash": identifier_hash(self.identity_secret, email)}

    def say(self, sender: str, text: str, metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """One customer message through the gateway's REST channel."""
        response = requests.post(
            f"{self.gateway_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text, **({"metadata": metadata} if metadata else {})},
            headers=self.rest_headers,
            timeout=60,
        )
        response.raise_for_status()
        return list(response.json())

    def collect(self, sender: str) -> list[dict[str, Any]]:
        """What agents sent a REST customer since they last asked (the pull endpoint)."""
        response = requests.get(
            f"{self.gateway_url}/webhooks/rest/messages",
            params={"sender": sender},
            headers=self.rest_headers,
            timeout=30,
        )
        response.raise_for_status()
        return list(response.json())

    def create_agent(self, email: str, password: str, role: str = "agent", name: str | None = None) -> None:
        create_agent(self._env(), email, password, role, name)

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows from the helpdesk database the gateway writes."""
        engine = sa.create_engine(f"sqlite:///{self.helpdesk_db}")
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(sa.text(sql), params)]
        finally:
            engine.dispose()

    def tickets(self, sender: str) -> list[tuple[str, dict[str, Any]]]:
        """The tickets of a REST sender's conversations, oldest first: (reason, details)."""
        rows = self.query(
            "SELECT t.reason, t.details FROM tickets t JOIN conversations c ON c.id = t.conversation_id "
            "JOIN channel_identities i ON i.customer_id = c.customer_id "
            "WHERE i.channel = 'rest' AND i.external_id = :sender ORDER BY t.id",
            sender=sender,
        )
        return [(reason, json.loads(details)) for reason, details in rows]

    def __enter__(self) -> Stack:
        try:
            self.start()
            self.wait_healthy()
        except BaseException:
            self.stop_all()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()
