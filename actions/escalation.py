"""Handing a conversation to a person: when asked, when the bot decides to, and with what priority.

`action_assess_frustration` (actions/assessment.py) sets `escalate` after a customer
message when the conversation's frustration reaches the threshold or the bot failed to
understand several messages in a row; a rule then runs `action_escalate`, whatever the
customer said. A problem report with a high impact (a safety issue, or a costly order
with items missing or damaged) is escalated by the same action.

Every handoff (`hand_over`) says so, sends the gateway a ticket with its priority, and
forgets the unfinished form. Priority is urgency x impact into P1-P4
(actions/escalation.yml); VIP customers are marked so the queue serves them first within
their tier.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.assessment import config
from actions.backend import get_shop
from actions.helpdesk import intent_of, nlu_summary, send_to_helpdesk
from actions.orders import QUESTION_BOOKKEEPING, owned_order
from actions.shop.base import Order
from helpdesk_payload import HANDOFF

logger = logging.getLogger(__name__)


def _level(value: float) -> str:
    levels = config()["levels"]
    return "high" if value >= levels["high"] else "medium" if value >= levels["medium"] else "low"


def problem_kind(tracker: Tracker) -> str | None:
    message = tracker.latest_message or {}
    if intent_of(message) != "report_problem":
        return None
    text = (message.get("text") or "").lower()
    if any(re.search(rf"\b{re.escape(word)}\b", text) for word in config()["safety_words"]):
        return "safety"
    reasons = [e.get("value") for e in message.get("entities") or [] if e.get("entity") == "return_reason"]
    known = config()["problems"]
    return next((reason for reason in reasons if reason in known), "other")


def impact(order: Order | None, problem: str | None) -> float:
    settings = config()
    value = min(1.0, float(order.total / Decimal(settings["order_value_cap"]))) if order else 0.0
    weight = settings["problems"].get(problem, 0.0) if problem else 0.0
    return settings["impact"]["order_value"] * value + settings["impact"]["problem"] * weight


def priority(tracker: Tracker, order: Order | None, problem: str | None) -> dict[str, Any]:
    settings = config()
    cues = tracker.get_slot("frustration_cues") or []
    urgency = settings["urgency"]["frustration"] * float(tracker.get_slot("frustration") or 0.0)
    if "urgency" in cues:
        urgency += settings["urgency"]["time_sensitive"]
    hit = impact(order, problem)
    rows = {"high": 0, "medium": 1, "low": 2}
    tier = settings["matrix"][_level(urgency)][rows[_level(hit)]]
    return {
        "priority": tier,
        "urgency": round(urgency, 3),
        "impact": round(hit, 3),
        "vip": bool(order and order.customer_vip),
    }


async def escalation_details(
    tracker: Tracker, reason: str, order: Order | None, problem: str | None
) -> dict[str, Any]:
    """What the ticket carries; `order` is the conversation's proven order, if any."""
    ranked = priority(tracker, order, problem)
    if reason in ("customer_request", "offer_accepted") and ranked["priority"] == "P4":
        ranked["priority"] = "P3"  # someone who asked for a person waits no longer than an outage
    return {
        "reason": reason,
        **ranked,
        "frustration": tracker.get_slot("frustration"),
        "cues": tracker.get_slot("frustration_cues") or [],
        "problem": problem,
        "order_id": order.number if order else tracker.get_slot("order_id"),
        "nlu": nlu_summary(tracker),
        **await customer_context(tracker),
    }


async def customer_context(tracker: Tracker) -> dict[str, Any]:
    """The proven customer's orders and returns, for the agent who takes over. Nothing when
    the customer has not proven who they are: an agent checks identity like the bot does."""
    email = tracker.get_slot("verified_email")
    if not email:
        return {}
    shop = get_shop()
    try:
        orders = await shop.orders_of(email)
        returns = [request for order in orders for request in await shop.returns_for_order(order.number)]
    except Exception:  # noqa: BLE001 - the handoff must happen even when the shop cannot answer
        logger.exception("Could not read the orders of %s for the agent; handing over without them", email)
        return {"customer_email": email}
    return {
        "customer_email": email,
        "orders": [
            {
                "number": order.number,
                "status": order.status,
                "placed": order.placed_at.date().isoformat(),
                "total": f"{order.total:.2f}",
                "items": ", ".join(item.name for item in order.items),
            }
            for order in orders
        ],
        "returns": [
            {
                "rma": request.rma,
                "order": request.order_number,
                "status": request.status,
                "reason": request.reason,
                "resolution": request.resolution,
                "items": ", ".join(request.item_names),
            }
            for request in returns
        ],
    }


def hand_over(dispatcher: CollectingDispatcher, response: str, details: dict[str, Any]) -> list[EventType]:
    """Says a person takes over, opens the ticket, and leaves the bot nothing to announce again."""
    dispatcher.utter_message(response=response)
    send_to_helpdesk(dispatcher, HANDOFF, **details)
    # The conversation keeps what it learnt (the proven order, a return's answers), so the
    # bot still knows it when the agent hands the conversation back; only the unfinished
    # question's bookkeeping goes. While a person holds it, the bot says nothing.
    return [
        *[SlotSet(slot, value) for slot, value in QUESTION_BOOKKEEPING.items()],
        SlotSet("requested_slot", None),
        SlotSet("human_offered", False),
        SlotSet("handed_over", True),
        SlotSet("escalate", False),
        SlotSet("escalation_reason", None),
        SlotSet("frustration", 0.0),
    ]


class ActionRequestHuman(Action):
    """Opens a ticket: asked for directly, or a human offer accepted."""

    def name(self) -> str:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        reason = (
            "customer_request" if intent_of(tracker.latest_message) == "request_human" else "offer_accepted"
        )
        details = await escalation_details(tracker, reason, await owned_order(tracker), problem_kind(tracker))
        return hand_over(dispatcher, "utter_handoff", details)


class ActionEscalate(Action):
    """The bot hands over on its own: an apology, a person promised, a prioritised ticket."""

    def name(self) -> str:
        return "action_escalate"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        reason = tracker.get_slot("escalation_reason") or "high_impact"
        details = await escalation_details(tracker, reason, await owned_order(tracker), problem_kind(tracker))
        # An unfinished order check or cancellation ends here.
        return [ActiveLoop(None), *hand_over(dispatcher, "utter_escalate", details)]
