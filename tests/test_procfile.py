"""make run (the Procfile) and the tests' and benchmarks' stack start the serving processes
with the same thread settings, so what make bench-load measures is what make run serves."""

from __future__ import annotations

from tests.support.stack import ROOT, SERVING_ENV


def test_every_process_of_make_run_gets_the_serving_thread_settings() -> None:
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    assert {line.split(":", 1)[0] for line in lines} == {"rasa", "actions", "gateway"}
    for line in lines:
        settings = dict(word.split("=", 1) for word in line.split(":", 1)[1].split() if "=" in word)
        assert {key: settings.get(key) for key in SERVING_ENV} == SERVING_ENV, line
