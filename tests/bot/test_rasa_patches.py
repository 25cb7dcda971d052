"""Rasa with bot.nlu's changes (which Rasa imports for the model's components): the action
server's responses are still validated by Rasa's schema, with the same error; calls share a
session; the SQLite tracker store keeps WAL connections; the frustration assessment runs in
Rasa's process while every other custom action still goes to the action server."""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy.pool import QueuePool

import bot.nlu  # noqa: F401 - installs the patch, as loading the model does
from bot.nlu import rasa_patches

ACTION = RemoteAction("action_assess_frustration", None)


def test_the_validator_is_rasas_own_check() -> None:
    assert RemoteAction._validate_action_result is rasa_patches.validate_action_result
    assert rasa_patches.response_validator().schema == RemoteAction.action_response_format_spec()


def test_a_valid_response_passes() -> None:
    events = [{"event": "slot", "name": "frustration", "value": 0.1}]
    assert ACTION._validate_action_result({"events": events, "responses": [{"text": "hi"}]})


@pytest.mark.parametrize(
    "response",
    [
        {"events": [{"event": "no_such_event"}]},
        {"events": "not a list"},
        {"responses": [1, 2]},
    ],
)
def test_an_invalid_response_fails_as_rasa_fails_it(response: dict) -> None:
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        ACTION._validate_action_result(response)


async def test_calls_to_an_endpoint_share_one_session_with_rasas_settings() -> None:
    endpoint = EndpointConfig("http://127.0.0.1:9/webhook", headers={"X-Shop": "demo"})
    async with endpoint.session() as first:
        pass
    async with endpoint.session() as second:
        assert second is first and not first.closed
    assert first.headers["X-Shop"] == "demo"
    assert first.timeout.total == rasa_patches._rasa_session(endpoint).timeout.total


async def test_the_sqlite_tracker_store_keeps_its_connections_in_wal_mode(tmp_path: Path) -> None:
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "tracker.db"))
    await store.save(DialogueStateTracker.from_events("c1", [UserUttered("hi")]))
    assert isinstance(store.engine.pool, QueuePool)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    restored = await store.retrieve("c1")
    assert restored is not None and restored.latest_message.text == "hi"


def _frustrated_tracker(score: float) -> DialogueStateTracker:
    parse = {
        "text": "this is the THIRD time I ask!!!",
        "intent": {"name": "order_status", "confidence": 0.9},
        "entities": [],
        "frustration": {"score": score, "threshold": 0.5, "cues": ["exclamations"]},
    }
    return DialogueStateTracker.from_events(
        "c1", [UserUttered(parse["text"], parse["intent"], parse_data=parse)]
    )


async def test_the_frustration_assessment_runs_in_rasas_process_without_an_action_server() -> None:
    # No endpoint: over HTTP Rasa would refuse to run any custom action.
    action = RemoteAction("action_assess_frustration", None)
    events = await action.run(CollectingOutputChannel(), None, _frustrated_tracker(0.9), Domain.empty())
    slots = {event.key: event.value for event in events if isinstance(event, SlotSet)}
    assert slots["frustration"] == pytest.approx(0.9)
    assert slots["escalate"] is True and slots["escalation_reason"] == "frustration"
    calm = await action.run(CollectingOutputChannel(), None, _frustrated_tracker(0.1), Domain.empty())
    assert {e.key: e.value for e in calm if isinstance(e, SlotSet)}["escalate"] is False


async def test_other_custom_actions_still_go_to_the_action_server() -> None:
    with pytest.raises(RasaException, match="no endpoint is configured"):
        await RemoteAction("action_order_status", None).run(
            CollectingOutputChannel(), None, _frustrated_tracker(0.1), Domain.empty()
        )
