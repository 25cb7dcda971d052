"""The return form's questions, each with its buttons: which items, why, the policy's own
question, refund or exchange, pickup or drop-off."""

from __future__ import annotations

import json
from collections.abc import Iterable

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import knowledge
from actions.orders import owned_order
from actions.returns.slots import flow_of
from actions.returns.vocabulary import Choice, vocabulary


def _buttons(choices: Iterable[Choice], slot: str) -> list[dict[str, str]]:
    return [{"title": choice.label, "payload": inform_payload(slot, choice.value)} for choice in choices]


def inform_payload(entity: str, value: str) -> str:
    return "/inform" + json.dumps({entity: value})


class ActionAskReturnItems(Action):
    def name(self) -> str:
        return "action_ask_return_items"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        order = await owned_order(tracker)
        if order is None:
            return []
        buttons = [
            {"title": item.name, "payload": inform_payload("product", item.name)} for item in order.items
        ]
        if len(order.items) > 1:
            buttons.append({"title": "All of them", "payload": inform_payload("product", "all of them")})
        response = "utter_ask_problem_items" if flow_of(tracker) == "problem" else "utter_ask_return_items"
        dispatcher.utter_message(response=response, order_id=order.number, buttons=buttons)
        return []


class ActionAskReturnReason(Action):
    def name(self) -> str:
        return "action_ask_return_reason"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        words = vocabulary()
        flow = flow_of(tracker)
        choices = [words.reasons[value] for value in words.reason_buttons[flow]]
        response = "utter_ask_problem_reason" if flow == "problem" else "utter_ask_return_reason"
        dispatcher.utter_message(response=response, buttons=_buttons(choices, "return_reason"))
        return []


class ActionAskReturnFlagAnswer(Action):
    """The policy's own question about the item (knowledge_base/return_policy.yml)."""

    def name(self) -> str:
        return "action_ask_return_flag_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        question = (await knowledge.current_policy()).flag_question(tracker.get_slot("return_flag"))
        if question is not None:
            buttons = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
            dispatcher.utter_message(text=question.question, buttons=buttons)
        return []


class ActionAskReturnResolution(Action):
    def name(self) -> str:
        return "action_ask_return_resolution"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        words = vocabulary()
        values = ("replacement", "refund") if flow_of(tracker) == "problem" else ("refund", "exchange")
        dispatcher.utter_message(
            response="utter_ask_return_resolution",
            buttons=_buttons((words.resolutions[value] for value in values), "return_resolution"),
        )
        return []


class ActionAskReturnMethod(Action):
    def name(self) -> str:
        return "action_ask_return_method"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        words = vocabulary()
        values = ("pickup", "drop_off") if (await knowledge.current_policy()).free_pickup else ("drop_off",)
        dispatcher.utter_message(
            response="utter_ask_return_method",
            buttons=_buttons((words.methods[value] for value in values), "return_method"),
        )
        return []
