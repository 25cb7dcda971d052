"""What the return form has collected so far, read from the tracker, and which messages may
answer its questions."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from actions.helpdesk import intent_of
from actions.orders import RETURN_SLOTS
from actions.returns.vocabulary import items_named, match_choice, read_choice, vocabulary
from actions.shop.base import Order, OrderItem

# Messages whose words may answer the form's questions. Anything else (a policy question,
# an order status question, small talk) is a digression: its words never fill a slot, so
# the form lets the digression's own rule answer it. A message NLU is unsure of may still
# be an answer ("pinches at the toes"): it is read, by meaning if need be.
ANSWER_INTENTS = frozenset(
    {"inform", "request_return", "report_problem", "refund_status", "return_status", "affirm", "nlu_fallback"}
)
# The first message of a return or a problem report may already say why.
OPENERS = frozenset({"request_return", "report_problem"})


def cleared_return_slots(*, keep_reason: bool = False) -> dict[str, Any]:
    return {slot: None for slot in RETURN_SLOTS if not (keep_reason and slot == "return_reason")}


def today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def chosen_items(order: Order, tracker: Tracker) -> list[OrderItem]:
    """The items the form has settled on (their exact names are in `return_items`)."""
    return items_named(order, tracker.get_slot("return_items") or [])


def flow_of(tracker: Tracker) -> str:
    return tracker.get_slot("return_flow") or "return"


def entity_values(tracker: Tracker, entity: str) -> list[str]:
    return [str(value) for value in tracker.get_latest_entity_values(entity)]


def answers(tracker: Tracker) -> bool:
    return intent_of(tracker.latest_message) in ANSWER_INTENTS


def no_other_meaning(tracker: Tracker) -> bool:
    """The model found no request of its own in the message: an answer, or off-topic."""
    return answers(tracker) or intent_of(tracker.latest_message) == "out_of_scope"


def may_read_text(tracker: Tracker, slot: str) -> bool:
    """A typed answer fills `slot` when the form asked for it, or when the customer's first
    message already said it; never from a digression such as a policy question."""
    if not answers(tracker):
        return False
    return tracker.get_slot("requested_slot") == slot or intent_of(tracker.latest_message) in OPENERS


async def reason_in(values: Sequence[str], by_meaning: bool) -> str | None:
    """The return reason the customer's words name: the vocabulary's phrases in any of them;
    with `by_meaning` (a problem report, which says what went wrong in its own words: "the
    sweater has a big hole in it") by meaning too, so the question is not asked again."""
    for value in values:
        reason = match_choice(value, vocabulary().reasons)
        if reason:
            return reason
    if values and by_meaning:
        return await asyncio.to_thread(read_choice, values[-1], vocabulary().reasons)
    return None


def slot_events(values: dict[str, Any]) -> list[EventType]:
    return [SlotSet(slot, value) for slot, value in values.items()]
