"""Where a return stands, asked by RMA number or by order number, behind the same ownership
check as order status."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import knowledge
from actions.backend import get_shop
from actions.dates import format_day
from actions.orders import (
    RMA_NUMBER,
    OrderOwnershipValidation,
    explain_failure,
    order_for,
    owned_order,
    proven_owner,
    reset_events,
)
from actions.returns.policy import ReturnPolicy
from actions.returns.replies import item_names_text, refund_words
from actions.returns.slots import entity_values
from actions.shop.base import Order, ReturnRequest


class ValidateReturnStatusForm(OrderOwnershipValidation):
    """Order status's ownership check, reached by RMA number or by order number."""

    def name(self) -> str:
        return "validate_return_status_form"

    async def extract_order_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        rmas = entity_values(tracker, "rma_id")
        if rmas:  # validation looks it up and puts its order in its place
            return {"order_id": rmas[-1].upper()}
        return await super().extract_order_id(dispatcher, tracker, domain)

    async def validate_order_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str((value[-1] if value else "") if isinstance(value, list) else value or "").strip().upper()
        if not RMA_NUMBER.match(text):
            return {**await super().validate_order_id(value, dispatcher, tracker, domain), "rma_id": None}
        # Known or not, the RMA number stays what the form asks about, and its order is named
        # only once the email proves it (validate_customer_email): the reply tells nothing.
        order = await order_for(text)
        verified = proven_owner(tracker, order)
        if order is not None and verified:
            return {
                "order_id": order.number,
                "rma_id": text,
                "customer_email": verified,
                "verified_email": verified,
                "order_attempts": 0.0,
            }
        if text in (tracker.get_slot("locked_orders") or []):
            return {"order_id": text, "rma_id": None, "order_attempts": 0.0, "ownership_failed": True}
        return {"order_id": text, "rma_id": None, "customer_email": None, "order_attempts": 0.0}


class ActionReturnStatus(Action):
    def name(self) -> str:
        return "action_return_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        order = await owned_order(tracker)
        if order is None:
            return explain_failure(dispatcher, tracker)
        returns = await get_shop().returns_for_order(order.number)
        rma = tracker.get_slot("rma_id")
        if rma:
            returns = [request for request in returns if request.rma == rma]
        if not returns:
            dispatcher.utter_message(response="utter_no_return", order_id=order.number)
        policy = await knowledge.current_policy()
        for request in returns:
            for response, variables in return_status_responses(policy, order, request):
                dispatcher.utter_message(response=response, **variables)
        return reset_events(tracker)


def return_status_responses(
    policy: ReturnPolicy, order: Order, request: ReturnRequest
) -> list[tuple[str, dict[str, Any]]]:
    """Where a return stands, and, while it is under way, what follows (a refund, the new
    size, the replacement), as responses with their variables."""
    reached = {change.status: change.at for change in request.history}
    variables: dict[str, Any] = {
        "rma": request.rma,
        "items": item_names_text(request.item_names),
        "requested_date": format_day(request.requested_at),
        "business_days": policy.refund.business_days_after_receipt,
        "bank_days": policy.refund.bank_days,
        "destination": refund_words(policy, order),
    }
    if request.status == "refunded":
        when = request.refunded_at or reached.get("refunded") or request.requested_at
        amount = request.refund_amount if request.refund_amount is not None else Decimal("0")
        refunded = {**variables, "amount": f"{amount:.2f}", "refunded_date": format_day(when)}
        return [("utter_return_refunded", refunded)]
    if request.status in ("exchanged", "rejected"):
        return [(f"utter_return_{request.status}", variables)]
    if request.status == "pickup_scheduled" and request.pickup_date:
        now = ("utter_return_pickup_scheduled", {**variables, "pickup_date": format_day(request.pickup_date)})
    elif request.status == "label_sent":
        now = ("utter_return_label_sent", variables)
    elif request.status == "received":
        when = reached.get("received") or request.requested_at
        now = ("utter_return_received", {**variables, "received_date": format_day(when)})
    else:
        now = ("utter_return_requested", variables)
    return [now, (f"utter_return_then_{request.resolution}", variables)]
