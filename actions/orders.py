"""Order status, and the ownership check every order question shares (cancellation:
actions/cancellation.py; returns: actions/returns/).

An order's details reach only its owner: the customer gives the email on the order (a
limited number of tries), or has already proven it earlier in the conversation. Whether an
order or RMA number exists is never told before that: an unknown number is asked for its
email like any other, and the email then "does not match". Failed checks are also counted
per order, email and client address across conversations (actions/guessing.py).

The shop may also vouch for its signed-in customer (`shop_identity`, bot/shop_identity.py).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.backend import get_shop
from actions.dates import format_day
from actions.guessing import check_keys, get_failed_checks
from actions.helpdesk import nlu_summary, send_to_helpdesk
from actions.settings import get_settings
from actions.shop.base import Order
from helpdesk_payload import UNRESOLVED

ORDER_NUMBER = re.compile(r"^\d{5,8}$")
RMA_NUMBER = re.compile(r"^RMA-?\d+$", re.IGNORECASE)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# The return form's answers (actions/returns/): a new return or problem report starts
# without them.
RETURN_SLOTS = (
    "return_flag",
    "return_flag_answer",
    "return_flags_checked",
    "return_items",
    "return_reason",
    "return_resolution",
    "return_method",
    "return_blocked",
    "return_notice",
    "return_order",
)

# The bookkeeping of a question under way: tries left, a failed check, a pending
# confirmation, a return's verdict and the policy question it was asking.
QUESTION_BOOKKEEPING = {
    "email_attempts": 0.0,
    "order_attempts": 0.0,
    "ownership_failed": False,
    "cancel_confirmed": None,
    "cancel_code": None,
    "return_blocked": None,
    "return_notice": None,
    "return_flag": None,
}
# Slots a finished flow (order check, cancellation, return, problem report) clears, so the
# next question starts afresh. The session keeps `verified_email` (ownership once proven)
# and, once proven, the order under discussion (`order_id` with its `customer_email`):
# see `reset_events`.
RESET_AFTER_ORDER = {
    **QUESTION_BOOKKEEPING,
    # The return form's answers, which kind of return it was, and a looked-up RMA number.
    **dict.fromkeys(RETURN_SLOTS),
    "return_flow": None,
    "rma_id": None,
}


def normalise_order_number(value: Any) -> str | None:
    if isinstance(value, list):  # two numbers in one message: the last one is the answer
        value = value[-1] if value else None
    if value is None:
        return None
    digits = str(value).strip().lstrip("#")
    return digits if ORDER_NUMBER.match(digits) else None


def normalise_email(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[-1] if value else None
    email = str(value or "").strip().strip(".,;").lower()
    return email if EMAIL.match(email) else None


def describe_items(order: Order) -> str:
    return ", ".join(item.name for item in order.items)


def status_response(order: Order) -> tuple[str, dict[str, Any]]:
    """The response that tells an order's status, with its variables."""
    details: dict[str, Any] = {"order_id": order.number, "items": describe_items(order)}
    if order.status == "processing":
        return "utter_order_processing", {**details, "placed_date": format_day(order.placed_at)}
    if order.status == "shipped" and order.shipped_at:
        earliest, latest = order.expected_delivery or (None, None)
        return "utter_order_shipped", {
            **details,
            "shipped_date": format_day(order.shipped_at),
            "carrier": order.carrier or "our carrier",
            "tracking_number": order.tracking_number or "not available yet",
            "expected_delivery": (
                f"between {format_day(earliest)} and {format_day(latest)}"
                if earliest and latest
                else "as soon as the carrier confirms it"
            ),
        }
    if order.status == "delivered" and order.delivered_at:
        return "utter_order_delivered", {**details, "delivered_date": format_day(order.delivered_at)}
    if order.status == "cancelled" and order.cancelled_at:
        return "utter_order_was_cancelled", {**details, "cancelled_date": format_day(order.cancelled_at)}
    return "utter_order_status_other", {**details, "status": order.status}


def attempts(tracker: Tracker, slot: str) -> int:
    return int(tracker.get_slot(slot) or 0)


class OrderOwnershipValidation(FormValidationAction):
    """Validates the order number and the email that proves ownership of it.

    An answer the validation turns down means the form asks its question again: that turn
    did not help, so it goes to the trainers' unresolved log (not for a wrong email, which
    is the ownership check working and is nobody's training data)."""

    UNLOGGED_QUESTIONS = ("customer_email",)

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        asked = tracker.get_slot("requested_slot")
        events = await super().run(dispatcher, tracker, domain)
        rejected = any(
            event.get("event") == "slot" and event.get("name") == asked and event.get("value") is None
            for event in events
        )
        if asked and rejected and asked not in self.UNLOGGED_QUESTIONS:
            send_to_helpdesk(
                dispatcher, UNRESOLVED, reason="question_repeated", question=asked, nlu=nlu_summary(tracker)
            )
        return events

    @abc.abstractmethod
    def name(self) -> str:
        """validate_<form>: each form that checks ownership names itself."""

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        limit = get_settings().max_verification_attempts
        if tracker.get_slot("ownership_failed") or attempts(tracker, "order_attempts") >= limit:
            return []  # the form ends; the submit action explains and offers a human
        return domain_slots

    async def extract_order_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A typed answer with digits that is no order number still gets a plain answer."""
        return _attempted_answer(tracker, "order_id", lambda text: any(ch.isdigit() for ch in text))

    async def extract_customer_email(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return _attempted_answer(tracker, "customer_email", lambda text: "@" in text)

    async def validate_order_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        number = normalise_order_number(value)
        if number is None:
            tries = attempts(tracker, "order_attempts") + 1
            dispatcher.utter_message(response="utter_order_number_malformed")
            return {"order_id": None, "order_attempts": float(tries)}
        # An unknown number goes on to the email question like any other: the reply must
        # not tell which numbers exist.
        order = await get_shop().get_order(number)
        verified = proven_owner(tracker, order)
        if verified:
            customer_email = verified
        elif number in (tracker.get_slot("locked_orders") or []):
            # Ownership of this order already failed in this conversation: no fresh tries.
            return {"order_id": number, "order_attempts": 0.0, "ownership_failed": True}
        else:
            customer_email = None
        return {
            "order_id": number,
            "order_attempts": 0.0,
            "customer_email": customer_email,
            **({"verified_email": customer_email} if customer_email else {}),
            # A confirmation given for another order does not carry over to this one.
            "cancel_confirmed": None,
        }

    async def validate_customer_email(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        reference = reference_of(tracker.get_slot("order_id"))
        if reference is None:  # the order number comes first; nothing to check against yet
            return {"customer_email": None}
        email = normalise_email(value)
        checks, keys = get_failed_checks(), check_keys(tracker, reference, email)
        locked = [*(tracker.get_slot("locked_orders") or []), reference]
        if await checks.blocked(keys):
            # Too many failed checks of this order, email or address lately: none is made.
            return {"customer_email": None, "ownership_failed": True, "locked_orders": locked}
        order = await order_for(reference)
        if email and order is not None and order.owned_by(email):
            proven = {"customer_email": email, "verified_email": email, "email_attempts": 0.0}
            if RMA_NUMBER.match(reference):  # now the RMA's order may be named
                return {**proven, "order_id": order.number, "rma_id": reference}
            return proven
        if email:
            await checks.failed(keys)
        tries = attempts(tracker, "email_attempts") + 1
        left = get_settings().max_verification_attempts - tries
        if left <= 0:
            return {
                "customer_email": None,
                "email_attempts": float(tries),
                "ownership_failed": True,
                "locked_orders": locked,
            }
        response = "utter_email_mismatch" if email else "utter_email_malformed"
        dispatcher.utter_message(response=response, attempts_left=left)
        return {"customer_email": None, "email_attempts": float(tries)}


def shop_identity(tracker: Tracker) -> str | None:
    """The email of the customer the shop has signed in, as the gateway verified it
    (bot/shop_identity.py); the gateway sets `identity` on every message, None if unsigned."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    identity = metadata.get("identity") if isinstance(metadata, dict) else None
    return identity if isinstance(identity, str) and identity else None


def proven_owner(tracker: Tracker, order: Order | None) -> str | None:
    """The email that owns `order` by this conversation's proof or the shop's signature."""
    if order is None:
        return None
    for email in (tracker.get_slot("verified_email"), shop_identity(tracker)):
        if order.owned_by(email):
            return email
    return None


def _attempted_answer(
    tracker: Tracker, slot: str, looks_like_answer: Callable[[str], bool]
) -> dict[str, Any]:
    """The raw text as the slot's value when the customer answered the question asked
    but the entity rules found nothing in it, so validation can say what is wrong
    (instead of the form being rejected and the answer ignored)."""
    entity = "email" if slot == "customer_email" else slot
    if tracker.get_slot("requested_slot") != slot or list(tracker.get_latest_entity_values(entity)):
        return {}
    if tracker.get_slot("escalate"):
        # "I gave you my order number THREE times, 1 star review": an outburst, not an
        # answer; the form rejects it and the rule for a frustrated customer hands over.
        return {}
    text = (tracker.latest_message.get("text") or "").strip()
    return {slot: text} if text and looks_like_answer(text) else {}


class ValidateOrderStatusForm(OrderOwnershipValidation):
    def name(self) -> str:
        return "validate_order_status_form"


def reference_of(value: Any) -> str | None:
    """The order number, or the RMA number (upper case), that the form asks about."""
    number = normalise_order_number(value)
    if number:
        return number
    text = str(value or "").strip().upper()
    return text if RMA_NUMBER.match(text) else None


async def order_for(reference: str) -> Order | None:
    """The order an order number or an RMA number names; None when there is none."""
    if not RMA_NUMBER.match(reference):
        return await get_shop().get_order(reference)
    request = await get_shop().get_return(reference)
    return await get_shop().get_order(request.order_number) if request else None


async def owned_order(tracker: Tracker, number: str | None = None) -> Order | None:
    """The form's order (or order `number`), if the conversation has proven ownership of it."""
    number = normalise_order_number(number or tracker.get_slot("order_id"))
    order = await get_shop().get_order(number) if number else None
    if order and order.owned_by(tracker.get_slot("verified_email")):
        return order
    return None


def proven_order(tracker: Tracker) -> str | None:
    """The order under discussion, if this session has proven it is the customer's: the
    forms set `customer_email` only to an email that owns `order_id`."""
    number = normalise_order_number(tracker.get_slot("order_id"))
    email = tracker.get_slot("customer_email")
    if number and email and email == tracker.get_slot("verified_email"):
        return number
    return None


def reset_events(tracker: Tracker, **extra: Any) -> list[EventType]:
    """The events that end a flow: its own slots cleared; a proven order kept for the session
    (so "and where is my order?" after a return needs no second check), an unproven one
    forgotten with its tries."""
    kept = proven_order(tracker)
    order = {"order_id": kept, "customer_email": tracker.get_slot("customer_email") if kept else None}
    return [SlotSet(slot, value) for slot, value in {**RESET_AFTER_ORDER, **order, **extra}.items()]


def explain_failure(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Why the form ended without a verified order, and a human offered instead."""
    if tracker.get_slot("ownership_failed"):
        dispatcher.utter_message(response="utter_ownership_failed")
    else:
        dispatcher.utter_message(response="utter_order_lookup_failed")
    dispatcher.utter_message(response="utter_offer_human")
    return reset_events(tracker, human_offered=True)


class ActionOrderStatus(Action):
    def name(self) -> str:
        return "action_order_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        order = await owned_order(tracker)
        if order is None:
            return explain_failure(dispatcher, tracker)
        response, variables = status_response(order)
        dispatcher.utter_message(response=response, **variables)
        # The order stays known: "and when will it arrive?" needs no second check, and a
        # person taking over (or handing back) finds it. Another order number replaces it.
        return reset_events(tracker)


class ActionStopOrderForm(Action):
    """The customer dropped an order check or cancellation midway: end the form and forget
    its attempt counters, and its order unless it was proven, so the next question starts afresh."""

    def name(self) -> str:
        return "action_stop_order_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_anything_else")
        return [ActiveLoop(None), SlotSet("requested_slot", None), *reset_events(tracker)]
