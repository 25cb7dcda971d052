"""A damaged, wrong or missing item reported: a safety problem goes to a person at once, the
rest runs the return form's problem flow. A policy question inside the report is answered
and the report offered, not forced (the FAQ answers offer it too, with `offer_report`)."""

from __future__ import annotations

import asyncio
import re

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.escalation import escalation_details, hand_over, problem_kind
from actions.helpdesk import intent_of
from actions.kb import Article
from actions.knowledge import knowledge_service
from actions.orders import owned_order
from actions.returns.slots import cleared_return_slots, reason_in, slot_events

# A message that asks something: a question mark, or the words a question opens with.
QUESTION = re.compile(
    r"\?|^\s*(how|what|when|where|which|who|why|can|could|do|does|is|are|will|should|would)\b", re.IGNORECASE
)


def offer_report(dispatcher: CollectingDispatcher, tracker: Tracker, article: Article) -> list[EventType]:
    """After an answer about a problem with an item: "Shall I start a report?" (ActionReportProblem
    starts it on a yes). What the message said is kept, so the report need not ask it again."""
    dispatcher.utter_message(response="utter_offer_problem_report")
    message = tracker.latest_message or {}
    products = [e.get("value") for e in message.get("entities") or [] if e.get("entity") == "product"]
    return [
        SlotSet("faq_article", article.id),
        SlotSet("faq_feedback_asked", False),
        SlotSet("human_offered", False),
        SlotSet("report_offered", True),
        SlotSet("offered_problem", {"text": message.get("text") or "", "items": products or None}),
    ]


class ActionReportProblem(Action):
    """A damaged, wrong or missing item. A safety problem goes to a person at once; the rest
    runs the return form's problem flow (replacement or refund, or a person when late)."""

    def name(self) -> str:
        return "action_report_problem"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if problem_kind(tracker) == "safety":
            details = await escalation_details(tracker, "high_impact", await owned_order(tracker), "safety")
            # The form that follows ends at once: there is nothing left to collect.
            return [
                *hand_over(dispatcher, "utter_escalate", details),
                SlotSet("return_blocked", "handed_over"),
            ]
        offered = tracker.get_slot("offered_problem")
        if intent_of(tracker.latest_message) == "affirm" and offered:
            # "Shall I start a report?" answered yes: what the first message said carries on.
            said = {
                "return_reason": await reason_in([offered.get("text") or ""], by_meaning=True),
                "return_items": offered.get("items"),
            }
            return [
                SlotSet("return_flow", "problem"),
                *slot_events(cleared_return_slots()),
                *slot_events({slot: value for slot, value in said.items() if value}),
                SlotSet("report_offered", False),
                SlotSet("offered_problem", None),
            ]
        answered = await self._answer_question(dispatcher, tracker)
        if answered:
            # The form that follows ends at once; the customer says whether to start a report.
            return [*answered, SlotSet("return_blocked", "answered")]
        return [SlotSet("return_flow", "problem"), *slot_events(cleared_return_slots())]

    @staticmethod
    async def _answer_question(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        """A policy question inside the report ("it arrived cracked, how long do I have to
        report it?"): the knowledge base answers it, and the report is offered, not forced."""
        message = tracker.latest_message or {}
        text = message.get("text") or ""
        if not QUESTION.search(text):
            return []
        index = await asyncio.to_thread(knowledge_service().index)
        verdict = await asyncio.to_thread(index.decide, text)
        if verdict.kind != "answer" or verdict.best is None:
            return []
        article = index.knowledge_base.article(verdict.best.article_id)
        dispatcher.utter_message(text=article.body)
        return offer_report(dispatcher, tracker, article)


class ActionDeclineReport(Action):
    """ "Shall I start a report?" answered no."""

    def name(self) -> str:
        return "action_decline_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_anything_else")
        return [SlotSet("report_offered", False), SlotSet("offered_problem", None)]
