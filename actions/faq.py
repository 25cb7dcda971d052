"""Policy questions answered from knowledge_base/, and the customer's word on the answer.

`action_answer_faq` runs for `ask_faq`, `out_of_scope` and for messages NLU was not sure
about (`nlu_fallback`), so the knowledge base is tried before the generic fallback. It
answers with the article's own text, offers a choice when two articles are close, or says
plainly it is not sure, offers a person and logs the question as unresolved with the
retrieval scores. After an answer it asks whether it helped; `action_faq_feedback` sends
the answer (yes or no) to the helpdesk, which stores it beside the article.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.helpdesk import intent_of, nlu_summary, send_to_helpdesk, unclear_answer
from actions.kb import Article
from actions.knowledge import knowledge_service
from actions.retrieval import Verdict
from actions.returns.report import offer_report
from helpdesk_payload import FEEDBACK, UNRESOLVED

ARTICLE_ENTITY = "article"

logger = logging.getLogger(__name__)


def choice_payload(article_id: str) -> str:
    return f"/ask_faq{json.dumps({ARTICLE_ENTITY: article_id})}"


def answer_events(article: Article) -> list[EventType]:
    return [
        SlotSet("faq_article", article.id),
        SlotSet("faq_feedback_asked", True),
        SlotSet("human_offered", False),
    ]


class ActionAnswerFaq(Action):
    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        # Off the event loop: the first load (about 20 s) or embedding a question must not
        # hold up the action server's other requests, such as every message's frustration check.
        index = await asyncio.to_thread(knowledge_service().index)
        chosen = next(tracker.get_latest_entity_values(ARTICLE_ENTITY), None)
        # In the middle of a form the answer is a digression: the form's question comes
        # next, so neither "did that help?" nor an offer of a person is put in between.
        in_form = bool((tracker.active_loop or {}).get("name"))
        if chosen is not None and chosen in index.knowledge_base.ids:
            return self._answer(dispatcher, tracker, index.knowledge_base.article(chosen), in_form)

        message = tracker.latest_message or {}
        verdict = await asyncio.to_thread(index.decide, message.get("text") or "")
        if verdict.kind == "answer" and verdict.best is not None:
            return self._answer(
                dispatcher, tracker, index.knowledge_base.article(verdict.best.article_id), in_form
            )
        if verdict.kind == "choose":
            buttons = [
                {"title": match.title, "payload": choice_payload(match.article_id)}
                for match in verdict.matches[:2]
            ]
            buttons.append({"title": "Neither: talk to a person", "payload": "/request_human"})
            dispatcher.utter_message(response="utter_faq_which_one", buttons=buttons)
            return [SlotSet("faq_feedback_asked", False), SlotSet("human_offered", False)]
        return self._decline(dispatcher, tracker, verdict, in_form)

    @staticmethod
    def _answer(
        dispatcher: CollectingDispatcher, tracker: Tracker, article: Article, in_form: bool
    ) -> list[EventType]:
        dispatcher.utter_message(text=article.body)
        if in_form:
            return [SlotSet("faq_article", article.id)]
        # Some answers lead somewhere: agent hours to a person, refund timing to the
        # customer's own return, damage to a report (the article's `offer`, in its front matter).
        if article.offer == "problem_report":
            return offer_report(dispatcher, tracker, article)
        if article.offer is not None:
            human = article.offer == "human"
            dispatcher.utter_message(response="utter_offer_human" if human else "utter_offer_return_check")
            return [
                SlotSet("faq_article", article.id),
                SlotSet("faq_feedback_asked", False),
                SlotSet("human_offered", human),
            ]
        dispatcher.utter_message(response="utter_faq_was_it_helpful")
        return answer_events(article)

    @staticmethod
    def _decline(
        dispatcher: CollectingDispatcher, tracker: Tracker, verdict: Verdict, in_form: bool
    ) -> list[EventType]:
        intent = intent_of(tracker.latest_message)
        reason, response = {
            "nlu_fallback": ("nlu_fallback", "utter_default"),
            "out_of_scope": ("out_of_scope", "utter_out_of_scope"),
        }.get(intent or "", ("kb_miss", "utter_faq_not_sure"))
        dispatcher.utter_message(response=response)
        send_to_helpdesk(
            dispatcher, UNRESOLVED, reason=reason, nlu=nlu_summary(tracker), kb=verdict.details()
        )
        if in_form:
            return [SlotSet("faq_feedback_asked", False)]
        dispatcher.utter_message(response="utter_offer_human")
        return [SlotSet("faq_feedback_asked", False), SlotSet("human_offered", True)]


class ActionFaqFeedback(Action):
    """ "Was this helpful?" answered: stored for the shop; a "no" gets the offer of a person."""

    def name(self) -> str:
        return "action_faq_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        helpful = intent_of(tracker.latest_message) == "affirm"
        details: dict[str, Any] = {"article": tracker.get_slot("faq_article"), "helpful": helpful}
        send_to_helpdesk(dispatcher, FEEDBACK, **details)
        events: list[EventType] = [SlotSet("faq_feedback_asked", False)]
        if helpful:
            dispatcher.utter_message(response="utter_faq_glad")
            return [*events, SlotSet("human_offered", False)]
        dispatcher.utter_message(response="utter_faq_sorry")
        dispatcher.utter_message(response="utter_offer_human")
        return [*events, SlotSet("human_offered", True)]


class ActionInformUnclear(Action):
    """A bare answer nobody asked for. One with a few words and nothing the entity rules
    know is more likely a question the model misread ("can I collect it from the warehouse
    myself"): the knowledge base answers or declines it, and a decline is logged. Otherwise
    the bot asks what to do with it, and logs that it could not tell."""

    def name(self) -> str:
        return "action_inform_unclear"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        message = tracker.latest_message or {}
        if not message.get("entities") and not unclear_answer(message):
            return await ActionAnswerFaq().run(dispatcher, tracker, domain)
        dispatcher.utter_message(response="utter_inform_unclear")
        send_to_helpdesk(dispatcher, UNRESOLVED, reason="unclear", nlu=nlu_summary(tracker))
        return []
