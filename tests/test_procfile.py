"""make run (the Procfile) and the tests' and benchmarks' stack start the serving processes
with the same thread settings and the same number of Rasa servers, so what make bench-load
measures is what make run serves; and Rasa's HTTP API never runs without its token."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.support.stack import MAKE_RUN_RASA_SERVERS, ROOT, SERVING_ENV


def _processes() -> dict[str, str]:
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    return dict((part.strip() for part in line.split(":", 1)) for line in lines)  # type: ignore[misc]


def _settings(command: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in command.split() if "=" in word and not word.startswith("-"))


def test_every_process_of_make_run_gets_the_serving_thread_settings() -> None:
    processes = _processes()
    assert {"actions", "gateway"} <= processes.keys()
    for name, command in processes.items():
        settings = _settings(command)
        assert {key: settings.get(key) for key in SERVING_ENV} == SERVING_ENV, name


def test_the_gateway_pins_conversations_to_each_rasa_server_make_run_starts() -> None:
    processes = _processes()
    rasa_ports = [
        re.search(r"--port (\d+)", command).group(1)  # type: ignore[union-attr]
        for command in processes.values()
        if "rasa run --enable-api" in command
    ]
    assert len(rasa_ports) == MAKE_RUN_RASA_SERVERS
    listed = _settings(processes["gateway"])["RASA_URL"].split(",")
    assert [url.rsplit(":", 1)[1] for url in listed] == rasa_ports


def _rasa_commands() -> list[str]:
    return [command for command in _processes().values() if "rasa run --enable-api" in command]


def _as_shell_runs(command: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command as honcho runs it (sh -c), with the program replaced by one that prints
    its arguments, one a line."""
    command = command.replace(".venv/bin/rasa ", "printf '%s\\n' ")
    env = {"PATH": os.environ["PATH"], **environ}
    return subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, check=False)


def test_every_rasa_server_of_make_run_needs_the_token_from_the_environment() -> None:
    for command in _rasa_commands():
        # secrets.token_urlsafe may start with "-": it must not read as another option.
        arguments = _as_shell_runs(command, {"RASA_TOKEN": "-t0ken with a space"}).stdout.splitlines()
        assert "--auth-token=-t0ken with a space" in arguments
        unset = _as_shell_runs(command, {})
        assert unset.returncode != 0 and "RASA_TOKEN" in unset.stderr  # not a server without one
    # The gateway takes the same RASA_TOKEN from the environment, never one of its own.
    assert "RASA_TOKEN" not in _settings(_processes()["gateway"])


def test_make_run_makes_a_token_unless_one_is_set() -> None:
    recipe = next(line for line in (ROOT / "Makefile").read_text().splitlines() if "honcho start" in line)
    script = (
        recipe.strip()
        .replace("$(PY)", sys.executable)
        .replace("$(VENV)/bin/honcho start", "printenv RASA_TOKEN")
        .replace("$$", "$")
    )

    def token(environ: dict[str, str]) -> str:
        env = {"PATH": os.environ["PATH"], **environ}
        done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True)
        return done.stdout

    assert token({"RASA_TOKEN": "from-the-secret-store"}).strip() == "from-the-secret-store"
    made, again = token({}).strip(), token({}).strip()
    assert len(made) >= 32 and made != again  # random, and new each run
