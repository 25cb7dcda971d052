"""How frustrated the conversation is, after every customer message, and whether to escalate.

`action_assess_frustration` is the custom mapping of the `frustration` slot, so Rasa's slot
extraction calls it before the policies decide. It folds the message's score from the NLU
pipeline (`FrustrationDetector`) into the conversation's score with decay, adds dialogue
signals (the same request again, a long session) and sets `escalate` when the score reaches
the threshold or the bot failed to understand several messages in a row; a rule then runs
`action_escalate` (actions/escalation.py), whatever the customer said.

It reads only the tracker and actions/escalation.yml, so Rasa runs it in its own process
(bot/nlu/local_actions.py) rather than over HTTP on the action server, which also has it.
Keep this module free of the shop, the helpdesk client and the knowledge base.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.helpdesk import intent_of, unclear_answer

CONFIG_FILE = Path(__file__).resolve().parent / "escalation.yml"
DEFAULT_THRESHOLD = 0.5
# Requests whose repetition means the first answer did not help.
REQUESTS = {
    "order_status", "cancel_order", "request_return", "return_status", "refund_status",
    "ask_faq", "report_problem",
}  # fmt: skip


@functools.lru_cache(maxsize=1)
def config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Assessment:
    score: float
    cues: list[str]
    reason: str | None  # why to escalate now, if at all


def user_turns(tracker: Tracker) -> list[dict[str, Any]]:
    """The customer's messages (parse data) since the session started or the conversation
    was last handed to a person, oldest first."""
    turns = []
    form = None  # the form running when each message came: answers to it are understood
    answered_at = None  # when the bot last said something
    for event in tracker.events:
        handed_over = (
            event.get("event") == "slot" and event.get("name") == "handed_over" and event.get("value")
        )
        if event.get("event") == "session_started" or handed_over:  # hand_over() sets it
            turns = []
        elif event.get("event") == "active_loop":
            form = event.get("name")
        elif event.get("event") == "bot":
            answered_at = event.get("timestamp")
        elif event.get("event") == "user":
            parse = event.get("parse_data") or {}
            stamp = event.get("timestamp")
            after_answer = None if answered_at is None or stamp is None else stamp - answered_at
            refused = (event.get("metadata") or {}).get("refused_before") or 0
            turns.append(
                {
                    **parse,
                    "timestamp": stamp,
                    "in_form": form is not None,
                    "after_answer": after_answer,
                    "refused_before": refused,
                }
            )
    return turns


def not_a_new_try(turn: dict[str, Any], seconds: float) -> bool:
    """Sent (or taken from the gateway's queue) within `seconds` of the bot's previous
    answer, or just after the gateway refused the sender's messages for coming too fast:
    nobody read the answer and tried again; a paste, a script or a flood did."""
    after = turn.get("after_answer")
    return (after is not None and after < seconds) or bool(turn.get("refused_before"))


def not_understood(turn: dict[str, Any]) -> bool:
    """NLU was not sure, or a bare answer nobody asked for had nothing the bot could use."""
    return intent_of(turn) == "nlu_fallback" or (not turn.get("in_form") and unclear_answer(turn))


def _words(text: str | None) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", (text or "").lower()))


def asked_again(previous: dict[str, Any], latest: dict[str, Any]) -> bool:
    """The same request in about the same words: not a button, not a new question."""
    intent = intent_of(latest)
    if intent not in REQUESTS or intent_of(previous) != intent:
        return False
    before, now = _words(previous.get("text")), _words(latest.get("text"))
    if str(latest.get("text") or "").startswith("/") or not before or not now:
        return False
    return len(before & now) / len(before | now) >= 0.4


def assess(tracker: Tracker, now: float | None = None) -> Assessment:
    settings = config()["conversation"]
    message = tracker.latest_message or {}
    frustration = message.get("frustration") or {}
    threshold = float(frustration.get("threshold", DEFAULT_THRESHOLD))
    cues = list(frustration.get("cues") or [])
    previous = float(tracker.get_slot("frustration") or 0.0)
    score = 1 - (1 - settings["decay"] * previous) * (1 - float(frustration.get("score", 0.0)))

    turns = user_turns(tracker)
    if len(turns) >= 2 and asked_again(turns[-2], turns[-1]):
        score += settings["asked_again"]
        cues.append("asked again")
    started = next((turn["timestamp"] for turn in turns if turn.get("timestamp")), None)
    now = now if now is not None else dt.datetime.now(dt.timezone.utc).timestamp()
    if started is not None and now - started > 60 * settings["long_conversation_minutes"]:
        score += settings["long_conversation"]
        cues.append("long conversation")
    score = min(1.0, score)

    streak = 0
    for turn in reversed(turns):
        if not not_understood(turn):
            break
        # Only tries made after reading the bot's answer count towards a handoff: a flood of
        # gibberish is refused by the gateway's limits and opens no ticket.
        streak += not not_a_new_try(turn, settings["seconds_to_try_again"])
    reason = None
    if streak >= settings["fallbacks_to_escalate"]:
        reason = "repeated_fallback"
    elif score >= threshold:
        reason = "frustration"
    return Assessment(round(score, 3), cues, reason)


class ActionAssessFrustration(Action):
    def name(self) -> str:
        return "action_assess_frustration"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        result = assess(tracker)
        if tracker.get_slot("handed_over"):
            # A person has been asked for: the scores go on the ticket's transcript, but the
            # bot does not announce the handoff again.
            return [SlotSet("frustration", result.score), SlotSet("frustration_cues", result.cues)]
        # Once due, an escalation waits (say, for a form to take its answer) until it happens.
        pending = tracker.get_slot("escalation_reason") if tracker.get_slot("escalate") else None
        reason = result.reason or pending
        events = [
            SlotSet("frustration", result.score),
            SlotSet("frustration_cues", result.cues),
            SlotSet("escalate", reason is not None),
            SlotSet("escalation_reason", reason),
        ]
        if reason is not None:
            # An open question (a person offered, "did that help?") must not take the turn.
            events += [SlotSet("human_offered", False), SlotSet("faq_feedback_asked", False)]
        return events
