"""A cost of Rasa's own that this project removes, in the Rasa server's process.

Rasa 3.6 checks every response of the action server against its JSON schema with
`jsonschema.validate`, which first validates the schema itself against the metaschema and
builds a new validator each time: 26-30 ms per call on this 2-core machine, more than the
action server takes to answer, and every customer message makes one call or more (the
frustration assessment is one). `make profile` showed it as a quarter of Rasa's time per
message. The schema is a constant, so here it is checked once and its validator kept;
responses are validated exactly as before and fail with the same error.

Imported by bot/nlu/__init__.py: Rasa imports this package when it loads the model, since
config.yml names its components.
"""

from __future__ import annotations

import functools
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL


@functools.lru_cache(maxsize=1)
def response_validator() -> Validator:
    schema = RemoteAction.action_response_format_spec()
    kind = validators.validator_for(schema)
    kind.check_schema(schema)
    return kind(schema)


def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    """RemoteAction._validate_action_result with the validator built once."""
    error = best_match(response_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        f". Failed to validate Action server response from API, "
        f"make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    raise error


def install() -> None:
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
