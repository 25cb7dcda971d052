"""Custom actions Rasa runs in its own process instead of calling the action server.

`action_assess_frustration` runs after every customer message, as the custom mapping of the
`frustration` slot. It only reads the tracker and a settings file, yet over HTTP each call
carried the whole tracker and the domain as JSON both ways, validated the response and
took 8-11 ms of Rasa's time a message (`make profile --scripts`). Here Rasa's client for the
action server, `RemoteAction.run`, runs the actions listed below directly, with Rasa SDK's
own `Tracker` and `CollectingDispatcher`, and turns what they return into Rasa's events and
messages exactly as it does with the server's answer. Rasa Pro 3.10 does the same for every
action (`actions_module` in endpoints.yml); Rasa 3.6 cannot.

An action belongs here only if it is quick and touches nothing but the tracker and files
(no shop, no helpdesk, no knowledge base): it then costs Rasa less than the HTTP call did
and leaves the action server nothing to wait for. The action server still registers it, so
a Rasa without this module (or an older model) calls it there as before.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from rasa.core.actions.action import RemoteAction
from rasa.shared.core import events
from rasa.shared.core.trackers import EventVerbosity
from rasa.shared.exceptions import RasaException
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.utils import call_potential_coroutine

logger = logging.getLogger(__name__)

# Action name -> "module:class" of the Rasa SDK action.
IN_PROCESS = {"action_assess_frustration": "actions.assessment:ActionAssessFrustration"}

_rasa_remote_run = RemoteAction.run
_actions: dict[str, Any] = {}
_domain: tuple[Any, dict[str, Any]] | None = None


def sdk_action(name: str) -> Any:
    """The Rasa SDK action for `name`, imported and made once; None if it runs remotely."""
    if name not in IN_PROCESS:
        return None
    if name not in _actions:
        module, _, cls = IN_PROCESS[name].partition(":")
        _actions[name] = getattr(importlib.import_module(module), cls)()
    return _actions[name]


def domain_dict(domain: Any) -> dict[str, Any]:
    """The domain as the action server gets it, made once per loaded domain."""
    global _domain
    if _domain is None or _domain[0] is not domain:
        _domain = (domain, domain.as_dict())
    return _domain[1]


async def run(
    self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any, domain: Any, *args: Any, **kwargs: Any
) -> list[events.Event]:
    """RemoteAction.run, with the actions in IN_PROCESS run here."""
    action = sdk_action(self.name())
    if action is None:
        return await _rasa_remote_run(self, output_channel, nlg, tracker, domain, *args, **kwargs)
    dispatcher = CollectingDispatcher()
    try:
        # The same tracker state the action server would get (without the JSON round trip).
        state = Tracker.from_dict(tracker.current_state(EventVerbosity.ALL))
        returned = await call_potential_coroutine(action.run(dispatcher, state, domain_dict(domain)))
    except Exception as error:  # the action server would have answered 500
        logger.exception("Custom action %s failed in the Rasa process", self.name())
        raise RasaException(f"Failed to execute custom action '{self.name()}': {error}") from error
    result = {"events": returned or [], "responses": dispatcher.messages}
    self._validate_action_result(result)
    messages = await self._utter_responses(result["responses"], output_channel, nlg, tracker)
    return [*messages, *events.deserialise_events(result["events"])]


def install() -> None:
    RemoteAction.run = run  # type: ignore[method-assign]
