"""Cancelling an order: the order number and the email of the ownership check
(actions/orders.py), "shall I cancel it?", then a one-time code mailed to the order's email
(actions/one_time_codes.py), so that somebody who merely knows the email cannot cancel a
stranger's order. A customer the shop signed in needs no code.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.backend import get_shop
from actions.mail import MailUnavailable, compose, send
from actions.one_time_codes import get_one_time_codes, normalise_code
from actions.orders import (
    OrderOwnershipValidation,
    describe_items,
    explain_failure,
    normalise_order_number,
    owned_order,
    reset_events,
    shop_identity,
    status_response,
)
from actions.shop.base import Order, OrderNotCancellable

# What the cancellation's code question ended with, in the `cancel_code` slot (the code
# itself is never kept there): entered right, used up or expired, or not sent at all.
CODE_CONFIRMED, CODE_SPENT, CODE_UNSENT = "confirmed", "spent", "unsent"


class ValidateCancelOrderForm(OrderOwnershipValidation):
    """Order number, email, "shall I cancel it?", then the code mailed to the order's email."""

    def name(self) -> str:
        return "validate_cancel_order_form"

    async def validate_order_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if code_taken_for_order(tracker):
            # Six digits typed for the code look like an order number: the order stays.
            return {"order_id": slot_before_latest_message(tracker, "order_id")}
        return {**await super().validate_order_id(value, dispatcher, tracker, domain), "cancel_code": None}

    async def validate_cancel_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if "order_id" in tracker.slots_to_validate():
            # "yes, and order 100238 too": the yes answered the question about the old order.
            return {"cancel_confirmed": None}
        order = await owned_order(tracker)
        if (
            not value
            or order is None
            or order.status != "processing"
            or order.owned_by(shop_identity(tracker))
        ):
            # The submit action says what happens (the shop's own sign-in needs no code).
            return {"cancel_confirmed": bool(value)}
        if not await mail_cancel_code(tracker, order):
            dispatcher.utter_message(response="utter_cancel_code_unsent", order_id=order.number)
            return {"cancel_confirmed": True, "cancel_code": CODE_UNSENT}
        return {"cancel_confirmed": True, "cancel_code": None}

    async def extract_cancel_code(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "cancel_code" or tracker.get_slot("escalate"):
            return {}
        text = (tracker.latest_message.get("text") or "").strip()
        if normalise_code(text) or (
            any(ch.isdigit() for ch in text) and not list(tracker.get_latest_entity_values("order_id"))
        ):
            return {"cancel_code": text}
        return {}

    async def validate_cancel_code(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        order = await owned_order(tracker, order_in_question(tracker))
        if value in (CODE_UNSENT, CODE_SPENT, CODE_CONFIRMED) or order is None:
            return {"cancel_code": value if order else None}
        if normalise_code(str(value)) is None:
            dispatcher.utter_message(response="utter_cancel_code_malformed")
            return {"cancel_code": None}
        check = await get_one_time_codes().check(code_subject(tracker, order.number), str(value))
        if check.outcome == "confirmed":
            return {"cancel_code": CODE_CONFIRMED}
        if check.outcome == "wrong":
            dispatcher.utter_message(response="utter_cancel_code_wrong", attempts_left=check.tries_left)
            return {"cancel_code": None}
        dispatcher.utter_message(response="utter_cancel_code_spent", order_id=order.number)
        return {"cancel_code": CODE_SPENT}

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        slots = await super().required_slots(domain_slots, dispatcher, tracker, domain)
        number = normalise_order_number(order_in_question(tracker))
        order = await get_shop().get_order(number) if number else None
        if "cancel_confirmed" in slots and number and (order is None or order.status != "processing"):
            # Nothing to confirm: the submit action explains why it cannot be cancelled.
            slots = [slot for slot in slots if slot not in ("cancel_confirmed", "cancel_code")]
        signed_in = order is not None and order.owned_by(shop_identity(tracker))
        if tracker.get_slot("cancel_confirmed") is False or signed_in:
            # "no, keep it", or the shop signed this customer in: no code.
            slots = [slot for slot in slots if slot != "cancel_code"]
        return slots


def code_subject(tracker: Tracker, order_number: str) -> str:
    """What a cancellation code confirms: this order, in this conversation only."""
    return f"cancel:{tracker.sender_id}:{order_number}"


def masked(email: str) -> str:
    """j***@example.com: enough for the owner to know which mailbox, little for anyone else."""
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}"


async def mail_cancel_code(tracker: Tracker, order: Order) -> bool:
    """Mails a new code for cancelling `order` to its email; False if none could be sent."""
    codes = get_one_time_codes()
    code = await codes.issue(code_subject(tracker, order.number), order.number)
    if code is None:
        return False  # this order had its codes for the hour
    try:
        await send(
            compose(
                "cancel_code",
                order.customer_email,
                order_id=order.number,
                code=code,
                minutes=codes.rules.minutes,
            )
        )
    except MailUnavailable:
        return False
    return True


def code_taken_for_order(tracker: Tracker) -> bool:
    """Whether the code just typed (asked for) was also read as an order number."""
    text = tracker.latest_message.get("text") or ""
    code = normalise_code(text)
    return (
        tracker.get_slot("requested_slot") == "cancel_code"
        and code is not None
        and normalise_order_number(tracker.get_slot("order_id")) == code
    )


def order_in_question(tracker: Tracker) -> Any:
    """The form's order number, not the code that was also read as one."""
    if code_taken_for_order(tracker):
        return slot_before_latest_message(tracker, "order_id")
    return tracker.get_slot("order_id")


def slot_before_latest_message(tracker: Tracker, slot: str) -> Any:
    """The value `slot` had before the customer's latest message filled it again."""
    events = tracker.events
    latest = max((i for i, event in enumerate(events) if event.get("event") == "user"), default=len(events))
    value = None
    for event in events[:latest]:
        if event.get("event") == "slot" and event.get("name") == slot:
            value = event.get("value")
    return value


class ActionAskCancelCode(Action):
    def name(self) -> str:
        return "action_ask_cancel_code"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        order = await owned_order(tracker)
        if order is None:
            return []
        if tracker.get_slot("requested_slot") == "cancel_code":  # asked before: the mail went out
            dispatcher.utter_message(response="utter_ask_cancel_code_again", order_id=order.number)
        else:
            dispatcher.utter_message(
                response="utter_ask_cancel_code",
                order_id=order.number,
                email=masked(order.customer_email),
                minutes=get_one_time_codes().rules.minutes,
            )
        return []


class ActionAskCancelConfirmed(Action):
    def name(self) -> str:
        return "action_ask_cancel_confirmed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        order = await owned_order(tracker)
        if order is not None:
            dispatcher.utter_message(
                response="utter_ask_cancel_confirmed",
                order_id=order.number,
                items=describe_items(order),
                total=f"{order.total:.2f}",
            )
        return []


class ActionCancelOrder(Action):
    def name(self) -> str:
        return "action_cancel_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        order = await owned_order(tracker)
        if order is None:
            return explain_failure(dispatcher, tracker)
        if order.status == "processing":
            if not tracker.get_slot("cancel_confirmed"):
                dispatcher.utter_message(response="utter_cancel_kept", order_id=order.number)
                return reset_events(tracker)
            signed_in = order.owned_by(shop_identity(tracker))
            if not signed_in and not await get_one_time_codes().consume(code_subject(tracker, order.number)):
                # No code entered right (validation said why): the order stays, a person can help.
                dispatcher.utter_message(response="utter_offer_human")
                return reset_events(tracker, human_offered=True)
            try:
                order = await get_shop().cancel_order(order.number)
            except OrderNotCancellable as blocked:
                order = blocked.order
            else:
                dispatcher.utter_message(
                    response="utter_order_cancelled", order_id=order.number, total=f"{order.total:.2f}"
                )
                return reset_events(tracker)
        explain_not_cancellable(dispatcher, order)
        return reset_events(tracker)


def explain_not_cancellable(dispatcher: CollectingDispatcher, order: Order) -> None:
    if order.status == "cancelled":
        response, variables = status_response(order)
        dispatcher.utter_message(response=response, **variables)
    elif order.status == "shipped":
        dispatcher.utter_message(response="utter_cannot_cancel_shipped", order_id=order.number)
    else:
        dispatcher.utter_message(response="utter_cannot_cancel_delivered", order_id=order.number)
