"""Handing a conversation to a person: when asked, when the bot decides to, and with what priority.

`action_assess_frustration` runs after every customer message (it is the custom mapping of
the `frustration` slot, so Rasa's slot extraction calls it before the policies decide). It
folds the message's score from the NLU pipeline (`FrustrationDetector`) into the
conversation's score with decay, adds dialogue signals (the same request again, a long
session) and sets `escalate` when the score reaches the threshold or the bot failed to
understand several messages in a row. A rule then runs `action_escalate`, whatever the
customer said. A problem report with a high impact (a safety issue, or a costly order
with items missing or damaged) is escalated by the same action.

Every handoff (`hand_over`) says so, sends the gateway a ticket with its priority, and
forgets the unfinished form. Priority is urgency x impact into P1-P4
(actions/escalation.yml); VIP customers are marked so the queue serves them first within
their tier.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.backend import get_shop
from actions.helpdesk import intent_of, nlu_summary, send_to_helpdesk, unclear_answer
from actions.orders import QUESTION_BOOKKEEPING, owned_order
from actions.shop.base import Order
from helpdesk_payload import HANDOFF

logger = logging.getLogger(__name__)

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
    for event in tracker.events:
        handed_over = (
            event.get("event") == "slot" and event.get("name") == "handed_over" and event.get("value")
        )
        if event.get("event") == "session_started" or handed_over:  # hand_over() sets it
            turns = []
        elif event.get("event") == "active_loop":
            form = event.get("name")
        elif event.get("event") == "user":
            parse = event.get("parse_data") or {}
            turns.append({**parse, "timestamp": event.get("timestamp"), "in_form": form is not None})
    return turns


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
        streak += 1
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
