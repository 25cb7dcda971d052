"""Costs of Rasa's own that this project removes, in the Rasa server's process.

`make profile` (docs/benchmarks.md) found each of them in one customer message:

- Rasa 3.6 checks every response of the action server against its JSON schema with
  `jsonschema.validate`, which first validates the schema itself against the metaschema and
  builds a new validator each time: 26-30 ms per call on this 2-core machine. The schema is
  a constant, so here it is checked once and its validator kept; responses are validated
  exactly as before and fail with the same error.
- Every request to the action server opens a new aiohttp session, so a new TCP connection:
  here the session Rasa configures for an endpoint (its headers, auth and timeout) is made
  once per event loop and kept, so calls reuse their connections.
- On SQLite, Rasa's SQL tracker store gets SQLAlchemy 1.4's default for a file, no
  connection pool: every load and save opens the file again, in rollback-journal mode, with
  a full sync on every commit. Here it keeps its connections and runs in WAL mode with
  synchronous=NORMAL (as the helpdesk's database does, handoff/db.py): a committed message
  survives a crash of the process, readers do not wait for the writer. PostgreSQL is left
  as Rasa configures it.
- Every prediction runs every policy, although the ensemble then takes RulePolicy's answer
  whenever that policy is certain (confidence 1, the highest priority): then TED, a
  TensorFlow model and the largest single cost of a message, only spent its time. Here,
  when RulePolicy has already answered this tracker with certainty, TED answers "no
  prediction" at once; the ensemble picks the same action
  with the same policy name and confidence. TED is skipped only if it was trained without
  end-to-end text, so it could never have overruled the rule with an end-to-end
  prediction, and not after a rejected action (whose confidence the ensemble then zeroes in
  every prediction). If Rasa's graph ran TED first, nothing would be skipped.
- Python's full garbage collections walked the half a million objects of a loaded model and
  stopped the server for 270 ms or more every few seconds under load: here the heap is
  frozen (serving.py) once a model is loaded, at start-up and after `PUT /model`.

Imported by bot/nlu/__init__.py: Rasa imports this package when it loads the model, since
config.yml names its components.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from typing import Any

import aiohttp
import sqlalchemy as sa
from jsonschema import validators
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from rasa.core import tracker_store
from rasa.core.actions.action import RemoteAction
from rasa.core.agent import Agent
from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActionExecutionRejected
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import TEXT
from rasa.utils.endpoints import EndpointConfig

from serving import freeze_heap

_rasa_engine_kwargs = tracker_store.create_engine_kwargs
_rasa_session = EndpointConfig.session
_rasa_rule_predict = RulePolicy.predict_action_probabilities
_rasa_ted_predict = TEDPolicy.predict_action_probabilities
_rasa_load_model = Agent.load_model


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


class _KeptSession:
    """What `async with endpoint.session() as session` gets: a kept session, not closed after."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self._session

    async def __aexit__(self, *exc: Any) -> None:
        return None


_sessions: dict[tuple[Any, ...], aiohttp.ClientSession] = {}


def kept_session(self: EndpointConfig) -> _KeptSession:
    """EndpointConfig.session, made once per event loop and endpoint settings."""
    key = (
        id(asyncio.get_running_loop()),
        tuple(sorted(self.headers.items())),
        tuple(sorted(self.basic_auth.items())),
    )
    session = _sessions.get(key)
    if session is None or session.closed or session.loop.is_closed():
        session = _sessions[key] = _rasa_session(self)
    return _KeptSession(session)


def create_engine_kwargs(url: Any) -> dict[str, Any]:
    """Rasa's engine settings for the tracker store; for SQLite, a pool of kept connections.
    On PostgreSQL each pooled connection is checked before use: after the database restarts,
    Rasa's kept connections are dead, and without the check the first message on each
    failed (an apology and a ticket) instead of reconnecting."""
    if sa.engine.make_url(url).get_backend_name() != "sqlite":
        return {**_rasa_engine_kwargs(url), "pool_pre_ping": True}
    return {"poolclass": sa.pool.QueuePool, "connect_args": {"check_same_thread": False, "timeout": 15}}


class _LastRule(threading.local):
    """RulePolicy's latest prediction and the tracker (and its length) it was made for."""

    tracker: DialogueStateTracker | None = None
    events = -1
    prediction: PolicyPrediction | None = None


_last_rule = _LastRule()
# False runs every policy on every prediction, as Rasa does (the tests compare the two).
skip_when_rules_decide = True


# Rasa's graph reads the signature and type hints to decide what a policy is given: keep its own.
@functools.wraps(_rasa_rule_predict)
def rule_predict(
    self: RulePolicy, tracker: DialogueStateTracker, domain: Domain, *args: Any, **kwargs: Any
) -> PolicyPrediction:
    prediction = _rasa_rule_predict(self, tracker, domain, *args, **kwargs)
    _last_rule.tracker, _last_rule.events, _last_rule.prediction = tracker, len(tracker.events), prediction
    return prediction


def rule_is_certain(tracker: DialogueStateTracker, priority: int) -> bool:
    """RulePolicy answered this very tracker, as it is now, with confidence 1 and a higher
    priority than `priority`: the ensemble takes its answer whatever another policy says."""
    prediction = _last_rule.prediction
    if not (
        skip_when_rules_decide
        and prediction is not None
        and _last_rule.tracker is tracker
        and _last_rule.events == len(tracker.events)
        and prediction.max_confidence >= 1.0
        and prediction.policy_priority > priority
    ):
        return False
    # After a rejected action the ensemble zeroes that action in every prediction, and the
    # others' answers may then count.
    last = next(
        (e for e in reversed(tracker.events) if isinstance(e, ActionExecuted | ActionExecutionRejected)),
        None,
    )
    return not isinstance(last, ActionExecutionRejected)


def _nothing(policy: Policy, domain: Domain) -> PolicyPrediction:
    return policy._prediction(policy._default_predictions(domain))


@functools.wraps(_rasa_ted_predict)
def ted_predict(
    self: TEDPolicy, tracker: DialogueStateTracker, domain: Domain, *args: Any, **kwargs: Any
) -> PolicyPrediction:
    if TEXT not in self.fake_features and rule_is_certain(tracker, self.priority):
        return _nothing(self, domain)
    return _rasa_ted_predict(self, tracker, domain, *args, **kwargs)


@functools.wraps(_rasa_load_model)
def load_model(self: Agent, *args: Any, **kwargs: Any) -> None:
    _rasa_load_model(self, *args, **kwargs)
    freeze_heap("loading the model")


def _freeze_after_first_load() -> None:
    # install() runs while Rasa loads its first model (the model's components import this
    # package), too late to wrap that call: the heap is frozen once the loading code returns
    # to the event loop. Without a running loop (rasa train, rasa shell) nothing is frozen.
    with contextlib.suppress(RuntimeError):
        asyncio.get_running_loop().call_soon(freeze_heap, "loading the model")


def install() -> None:
    if Agent.load_model is not load_model:
        Agent.load_model = load_model  # type: ignore[method-assign]
        _freeze_after_first_load()
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
    EndpointConfig.session = kept_session  # type: ignore[method-assign,assignment]
    tracker_store.create_engine_kwargs = create_engine_kwargs
    RulePolicy.predict_action_probabilities = rule_predict  # type: ignore[method-assign]
    TEDPolicy.predict_action_probabilities = ted_predict  # type: ignore[method-assign]
    if not sa.event.contains(sa.engine.Engine, "connect", _on_connect):
        sa.event.listen(sa.engine.Engine, "connect", _on_connect)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Every engine of the Rasa process; only SQLite's connections get the pragmas.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
