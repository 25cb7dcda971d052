"""make profile's bookkeeping: the parts a message's time is split into, summed per message."""

from __future__ import annotations

import asyncio
import time

import pytest

from benchmarks import profile


class Worker:
    def work(self, seconds: float) -> None:
        time.sleep(seconds)

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> profile.Profile:
    monkeypatch.setattr(profile, "PROFILE", profile.Profile())
    monkeypatch.setattr(Worker, "work", Worker.work)
    monkeypatch.setattr(Worker, "wait", Worker.wait)
    return profile.PROFILE


def test_sync_and_async_calls_are_summed_per_message_with_their_counts(fresh: profile.Profile) -> None:
    profile.timed(Worker, "work", lambda self, seconds: "work")
    profile.timed(Worker, "wait", lambda self, seconds: f"wait {seconds}")
    worker = Worker()
    worker.work(0.01)  # before the first message: not counted
    fresh.start_message()
    worker.work(0.01)
    worker.work(0.02)
    asyncio.run(worker.wait(0.01))
    fresh.start_message()
    worker.work(0.01)

    rows = {row["part"]: row for row in fresh.table()}
    assert set(rows) == {"work", "wait 0.01"}
    assert rows["work"]["calls_per_message"] == 1.5
    assert 0.02 <= rows["work"]["mean_ms"] / 1000 < 0.05  # (0.03 + 0.01) / 2 and a little
    assert rows["wait 0.01"]["calls_per_message"] == 0.5  # none in the second message


def test_graph_nodes_are_named_after_the_phase_that_ran_them(fresh: profile.Profile) -> None:
    names: list[str] = []
    profile.in_phase(Worker, "work", "nlu", "nlu, all components")
    original = Worker.wait

    async def inner(self: Worker, seconds: float) -> None:
        names.append(fresh.phase)
        await original(self, seconds)

    Worker.wait = inner  # type: ignore[method-assign]
    profile.in_phase(Worker, "wait", "policy", "policy prediction")
    fresh.start_message()
    Worker().work(0)
    asyncio.run(Worker().wait(0))
    assert names == ["policy"] and fresh.phase == "other"
    assert {row["part"] for row in fresh.table()} == {"nlu, all components", "policy prediction"}
