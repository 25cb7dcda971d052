"""make run (the Procfile) and the tests' and benchmarks' stack start the serving processes
with the same thread settings and the same number of Rasa servers, so what make bench-load
measures is what make run serves."""

from __future__ import annotations

import re

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
