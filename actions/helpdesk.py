"""Fallback, the offer of a person, and the payloads the gateway must act on.

The action server does not write to the helpdesk database. It sends the gateway a custom
payload under the key "helpdesk" (helpdesk_payload.py: `handoff` opens a ticket, see
actions/escalation.py; `unresolved` logs a message for the trainers; `feedback` records
whether an answer helped); the gateway hands it to the helpdesk and never forwards it to
the customer.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from helpdesk_payload import HELPDESK_KEY, UNRESOLVED, helpdesk_event

# A bare answer with this many words or more may be a question the model misread.
UNCLEAR_ANSWER_WORDS = 4


def intent_of(parse_data: dict[str, Any] | None) -> str | None:
    """The intent name in a message's parse data (the latest message, or a past one's)."""
    return ((parse_data or {}).get("intent") or {}).get("name")


def unclear_answer(parse_data: dict[str, Any] | None) -> bool:
    """A bare answer nobody asked for with nothing in it the bot can use and too few words to
    be a question: outside a form the bot can only ask "what would you like me to do with
    that?", so the message was not understood."""
    parse = parse_data or {}
    words = (parse.get("text") or "").split()
    return intent_of(parse) == "inform" and not parse.get("entities") and len(words) < UNCLEAR_ANSWER_WORDS


def nlu_summary(tracker: Tracker) -> dict[str, Any]:
    """What the model understood of the latest message, for agents and trainers."""
    message = tracker.latest_message or {}
    return {
        "text": message.get("text"),
        "intent": intent_of(message),
        "confidence": (message.get("intent") or {}).get("confidence"),
        "intent_ranking": [
            {"name": item.get("name"), "confidence": item.get("confidence")}
            for item in (message.get("intent_ranking") or [])[:5]
        ],
        "entities": [
            {"entity": e.get("entity"), "value": e.get("value")} for e in message.get("entities") or []
        ],
    }


def send_to_helpdesk(dispatcher: CollectingDispatcher, event: str, **details: Any) -> None:
    """`event`: one of helpdesk_payload's (HANDOFF, UNRESOLVED, FEEDBACK)."""
    dispatcher.utter_message(json_message={HELPDESK_KEY: helpdesk_event(event, **details)})


class ActionOfferHuman(Action):
    def name(self) -> str:
        return "action_offer_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_offer_human")
        return [SlotSet("human_offered", True)]


class ActionDeclineHuman(Action):
    def name(self) -> str:
        return "action_decline_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_anything_else")
        return [SlotSet("human_offered", False)]


class ActionUnresolvedFallback(Action):
    """NLU was not sure: say so, log the message for trainers, offer a person."""

    def name(self) -> str:
        return "action_unresolved_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        intent = intent_of(tracker.latest_message)
        # Predicted by a rule for `nlu_fallback`, or by the RulePolicy when no policy is sure
        # what to do next (a core fallback).
        reason = "nlu_fallback" if intent == "nlu_fallback" else "core_fallback"
        dispatcher.utter_message(response="utter_default")
        send_to_helpdesk(dispatcher, UNRESOLVED, reason=reason, nlu=nlu_summary(tracker))
        if tracker.active_loop_name:
            if reason == "nlu_fallback":
                return []  # a rule runs the form next, and it asks its question again
            # The form could not use the message and no rule places it: forget it, ask the
            # form's question again and wait. Predicting on would face the same state and
            # pick this action again until Rasa's circuit breaker trips, after which Rasa
            # stops answering the conversation at all.
            requested = tracker.get_slot("requested_slot")
            if f"utter_ask_{requested}" in domain.get("responses", {}):
                dispatcher.utter_message(response=f"utter_ask_{requested}")
            return [UserUtteranceReverted(), FollowupAction("action_listen")]
        dispatcher.utter_message(response="utter_offer_human")
        if reason == "core_fallback":
            # Like Rasa's default fallback: forget the message the dialogue could not place,
            # otherwise the policies face the same state again and predict this action again.
            return [UserUtteranceReverted(), SlotSet("human_offered", True)]
        return [SlotSet("human_offered", True)]


class ActionOtherLanguage(Action):
    """A message in a language the assistant does not speak yet (bot/nlu/language.py): say
    so in English and offer a person; inside a form, say so and let the form ask again.
    Logged for the trainers with the language, so the shop sees which ones customers use."""

    def name(self) -> str:
        return "action_other_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        language = ((tracker.latest_message or {}).get("language") or {}).get("code")
        send_to_helpdesk(
            dispatcher, UNRESOLVED, reason="other_language", language=language, nlu=nlu_summary(tracker)
        )
        if tracker.active_loop_name:
            dispatcher.utter_message(response="utter_english_only_in_form")
            return []
        dispatcher.utter_message(response="utter_english_only")
        dispatcher.utter_message(response="utter_offer_human")
        return [SlotSet("human_offered", True)]
