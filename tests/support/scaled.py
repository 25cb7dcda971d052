"""Scale mode for the fault tests and make bench-scale: deploy/scaled.py's configuration on
free ports and databases of its own (dropped afterwards), under the real supervisord and
nginx. A process is killed with SIGKILL, as a crash would end it, and supervisord starts it
again."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from deploy.scaled import BIN, Scaled, check_prerequisites
from tests.support.mailbox import Mailbox
from tests.support.stack import ROOT, SHARED_DEMO_ORDERS, STARTUP_SECONDS, StackError, create_agent, free_port
from training.model import current_model

POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432")
REDIS_DB = 5  # the fault tests' Redis database (keys); pub/sub channels are server-wide


class ScaledStack:
    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.rest_secret = secrets.token_urlsafe(16)
        self.rest_headers = {"Authorization": f"Bearer {self.rest_secret}"}
        self.mailbox = Mailbox(free_port())
        self.knowledge_base = workdir / "knowledge_base"
        self.scaled = Scaled(
            run_dir=workdir / "run",
            public_port=free_port(),
            gateway_ports=(free_port(), free_port()),
            rasa_ports=(free_port(), free_port()),
            action_ports=(free_port(), free_port()),
            actions_port=free_port(),
            mail_port=free_port(),
            postgres_url=POSTGRES,
            database_prefix=f"faults_{secrets.token_hex(4)}",
            redis_url=f"redis://127.0.0.1:6379/{REDIS_DB}",
            model=current_model().resolve(),
            environment={
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "PYTHONUNBUFFERED": "1",
                "REST_CHANNEL_SECRET": self.rest_secret,
                "KNOWLEDGE_BASE_DIR": str(self.knowledge_base),
                "SMTP_PORT": str(self.mailbox.port),
                "SMTP_TLS": "none",
                **SHARED_DEMO_ORDERS,
                **(env or {}),
            },
        )
        self.public_url = self.scaled.public_url
        self.gateway_urls = [f"http://127.0.0.1:{port}" for port in self.scaled.gateway_ports]
        self._supervisord: subprocess.Popen[bytes] | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        check_prerequisites()
        if not current_model().exists():
            raise StackError(f"no trained model at {current_model()}: run `make model` first")
        shutil.copytree(ROOT / "knowledge_base", self.knowledge_base, dirs_exist_ok=True)
        self.mailbox.start()
        self.scaled.render()
        self.scaled.create_databases()
        env = self.scaled.environment_with_secrets(dict(os.environ))
        self.rasa_token = env["RASA_TOKEN"]
        log = open(self.workdir / "supervisord.out", "ab")  # noqa: SIM115 - closed with the process
        self._supervisord = subprocess.Popen(
            [str(BIN / "supervisord"), "-c", str(self.scaled.conf)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float = STARTUP_SECONDS) -> None:
        """Every gateway healthy (so every Rasa, the action servers and the database), and
        nginx passing requests on."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self._supervisord is not None and self._supervisord.poll() is not None:
                raise StackError(f"supervisord exited with {self._supervisord.returncode}\n{self.logs()}")
            try:
                states = [requests.get(f"{url}/health", timeout=5) for url in self.gateway_urls]
                public = requests.get(f"{self.public_url}/health", timeout=5)
                last = [state.text[:300] for state in states]
                if all(state.status_code == 200 for state in states) and public.status_code == 200:
                    return
            except requests.RequestException as error:
                last = str(error)
            time.sleep(1)
        raise StackError(f"scale mode not healthy after {timeout:.0f}s: {last}\n{self.logs()}")

    def stop_all(self) -> None:
        if self._supervisord is not None and self._supervisord.poll() is None:
            self._supervisord.send_signal(signal.SIGTERM)
            try:
                self._supervisord.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self._supervisord.pid, signal.SIGKILL)
                self._supervisord.wait(10)
        self.mailbox.stop()
        self.scaled.drop_databases()

    # -- processes ---------------------------------------------------------------------------

    def supervisorctl(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(self.scaled.conf), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout.strip()

    def programs(self) -> list[str]:
        return [program["name"] for program in self.scaled.programs()]

    def pid(self, program: str) -> int:
        return int(self.supervisorctl("pid", program) or 0)

    def kill(self, program: str) -> int:
        """SIGKILL, as a crash: no clean shutdown. Returns the killed pid."""
        pid = self.pid(program)
        if pid <= 0:
            raise StackError(f"{program} is not running: {self.supervisorctl('status')}")
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, program: str, old_pid: int, timeout: float = STARTUP_SECONDS) -> None:
        """supervisord has started the program again, and every gateway is healthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.pid(program)
            if pid > 0 and pid != old_pid:
                self.wait_healthy(max(1.0, deadline - time.monotonic()))
                return
            time.sleep(0.5)
        raise StackError(f"{program} was not restarted in {timeout:.0f}s\n{self.logs()}")

    def logs(self, lines: int = 30) -> str:
        parts = []
        for log in sorted((self.scaled.run_dir / "logs").glob("*.log")):
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    # -- what customers and agents do -----------------------------------------------------

    def create_agent(self, email: str, password: str, role: str = "agent", name: str | None = None) -> None:
        create_agent(
            {**os.environ, "DATABASE_URL": self.scaled.database_url("helpdesk")}, email, password, role, name
        )

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows from the helpdesk database the gateways write."""
        engine = sa.create_engine(self.scaled.database_url("helpdesk"), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(sa.text(sql), params)]
        finally:
            engine.dispose()
