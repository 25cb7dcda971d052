"""The action server's responses are still validated by Rasa's schema, with the same error,
once bot.nlu (which Rasa imports for the model's components) has sped the check up."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

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
