"""The trainer's whole loop through the running stack: messages the model does not know are
logged and grouped; a trainer labels the group with a new intent; the console's retraining
exports, trains, evaluates and loads the new model; the same messages are now understood.

It runs on a stack of its own over a copy of the project (PROJECT_DIR), so neither the
repository's data nor the other tests' model change."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.agents import PASSWORD, Agent
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.e2e

GIFT_WRAP = [
    "can you gift wrap my parcel",
    "is gift wrapping available",
    "do you offer gift wrap for presents",
    "could the sweater be gift wrapped",
    "i'd like my order gift wrapped please",
    "can i add gift wrapping to my purchase",
    "do you do gift wrap",
    "is there a gift wrap option at checkout",
    "wrap it as a present please",
    "can you wrap the mug as a gift",
    "how much does gift wrapping cost",
    "gift wrap service?",
]


@pytest.fixture(scope="module")
def trainer_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    project = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "data", project / "data")
    for name in ("config.yml", "domain.yml"):
        shutil.copy(ROOT / name, project / name)
    with Stack(tmp_path_factory.mktemp("trainer-stack"), env={"PROJECT_DIR": str(project)}) as running:
        running.project = project  # type: ignore[attr-defined]
        yield running


def intent_of(stack: Stack, text: str) -> str:
    parsed = requests.post(
        f"{stack.rasa_url}/model/parse", json={"text": text}, params=stack.rasa_params, timeout=30
    ).json()
    return parsed["intent"]["name"]


def test_missed_messages_become_training_data_and_a_better_model(trainer_stack: Stack) -> None:
    stack = trainer_stack
    before = {text: intent_of(stack, text) for text in GIFT_WRAP}
    assert "ask_gift_wrap" not in before.values()
    for text in GIFT_WRAP:
        stack.say(f"gift-{uuid.uuid4().hex[:8]}", text)

    email = f"trainer-{uuid.uuid4().hex[:6]}@shop.test"
    stack.create_agent(email, PASSWORD, "trainer", "Tia")
    tia = Agent(stack, email)
    log = tia.call("GET", "/unresolved").json()
    logged = [
        message for group in log["groups"] for message in group["messages"] if message["text"] in GIFT_WRAP
    ]
    assert len(logged) >= len(GIFT_WRAP) * 2 // 3, before  # most were missed and logged
    biggest = log["groups"][0]
    assert {message["text"] for message in biggest["messages"]} <= set(GIFT_WRAP)  # grouped together
    decided = tia.call(
        "POST",
        "/unresolved/decisions",
        {"ids": [m["id"] for m in logged], "decision": "label", "intent": "ask_gift_wrap"},
    )
    assert decided.json() == {"decided": len(logged)}

    assert tia.call("POST", "/training").status_code == 202
    deadline = time.monotonic() + 900
    while (state := tia.call("GET", "/training").json())["state"] == "running":
        assert time.monotonic() < deadline, state
        time.sleep(3)
    assert state["state"] == "succeeded", state
    project: Path = stack.project  # type: ignore[attr-defined]
    assert "ask_gift_wrap" in (project / "data" / "nlu" / "trainer_labels.yml").read_text()
    assert "utter_ask_gift_wrap" in (project / "domain.yml").read_text()

    after = {text: intent_of(stack, text) for text in GIFT_WRAP}
    understood = [text for text in (m["text"] for m in logged) if after[text] == "ask_gift_wrap"]
    assert len(understood) == len(logged), after
    report = tia.call("GET", "/reports/latest").json()
    assert report["current"]["model"] == state["model"] and report["current"]["accuracy"] > 0.9
    assert report["previous"]["model"] != state["model"]  # the model that served before
    assert "Before (" in report["comparison"]
    print("\nBEFORE/AFTER", before, after, report["comparison"], sep="\n")
    picture = tia.call("GET", "/reports/latest/confusion_matrix.png")
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
