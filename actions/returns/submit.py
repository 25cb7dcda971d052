"""A return starts from what the customer said and the order under discussion, and is
submitted to the shop once the form has its answers, or explained when the policy blocks it."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import knowledge
from actions.backend import get_shop
from actions.dates import add_business_days
from actions.escalation import escalation_details, hand_over
from actions.orders import explain_failure, owned_order, proven_order, reset_events, status_response
from actions.returns import rules
from actions.returns.replies import confirm, item_names_text
from actions.returns.slots import (
    chosen_items,
    cleared_return_slots,
    entity_values,
    flow_of,
    slot_events,
    today,
)
from actions.returns.vocabulary import match_items
from actions.shop.base import NewReturn, Order


class ActionStartReturn(Action):
    """A new return starts from what this message says and the order under discussion: a
    named item of another of the customer's delivered orders picks that order, and an order
    still on its way is not assumed to be the one going back."""

    def name(self) -> str:
        return "action_start_return"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = [SlotSet("return_flow", "return"), *slot_events(cleared_return_slots())]
        if entity_values(tracker, "order_id"):
            return events
        return [*events, *await self._order_from_memory(tracker)]

    @staticmethod
    async def _order_from_memory(tracker: Tracker) -> list[EventType]:
        kept = proven_order(tracker)
        email = tracker.get_slot("verified_email")
        products = entity_values(tracker, "product")
        if email and products:
            delivered = [order for order in await get_shop().orders_of(email) if order.status == "delivered"]
            having = [order for order in delivered if match_items(order, products)]
            if len(having) == 1:
                return [SlotSet("order_id", having[0].number), SlotSet("customer_email", email)]
        if kept:
            order = await get_shop().get_order(kept)
            if order is None or order.status != "delivered":
                return [SlotSet("order_id", None), SlotSet("customer_email", None)]
        return []


class ActionSubmitReturn(Action):
    def name(self) -> str:
        return "action_submit_return"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        blocked = tracker.get_slot("return_blocked")
        if blocked == "handed_over":
            return reset_events(tracker)
        if blocked == "answered":  # a question inside a report: answered, the report offered
            # The offer is set again here: the form that ran in between read the message's
            # intent (not a yes or a no) into `report_offered` and let it lapse.
            return reset_events(tracker, return_flow=None, report_offered=True)
        order = await owned_order(tracker)
        if order is None:
            return explain_failure(dispatcher, tracker)
        if blocked:
            return await self._blocked(dispatcher, tracker, order, blocked)
        policy = await knowledge.current_policy()
        items = chosen_items(order, tracker)
        reason = tracker.get_slot("return_reason") or "other"
        resolution = tracker.get_slot("return_resolution") or "refund"
        method = tracker.get_slot("return_method") or "none"
        fee = rules.fee(policy, reason, resolution)
        pickup = add_business_days(today(), policy.pickup_after_business_days) if method == "pickup" else None
        request = NewReturn(
            order_number=order.number,
            item_names=tuple(item.name for item in items),
            reason=reason,
            resolution=resolution,
            method=method,
            fee=fee,
            refund_amount=rules.refund_amount(items, fee) if resolution == "refund" else None,
            pickup_date=pickup,
        )
        created, new = await get_shop().create_return(request)
        confirm(dispatcher, policy, order, created, new, condition=rules.condition_applies(policy, reason))
        return reset_events(tracker)

    @staticmethod
    async def _blocked(
        dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, blocked: str
    ) -> list[EventType]:
        notice = tracker.get_slot("return_notice") or ""
        if blocked == "not_delivered" and flow_of(tracker) == "problem" and order.status == "shipped":
            # "it never arrived" about a parcel still on its way: where it is, and a person.
            response, variables = status_response(order)
            dispatcher.utter_message(response=response, **variables)
            dispatcher.utter_message(response="utter_offer_human")
            return reset_events(tracker, human_offered=True)
        if blocked == "not_delivered":
            response = {
                "processing": "utter_return_not_shipped",
                "cancelled": "utter_return_order_cancelled",
            }.get(order.status, "utter_return_not_delivered")
            dispatcher.utter_message(response=response, order_id=order.number)
            return reset_events(tracker)
        if blocked in ("problem_window", "high_value"):
            dispatcher.utter_message(text=notice)
            problem = tracker.get_slot("return_reason")
            reason = "late_problem_report" if blocked == "problem_window" else "high_value_problem"
            details = await escalation_details(tracker, reason, order, problem)
            details["items"] = tracker.get_slot("return_items") or []
            return hand_over(dispatcher, "utter_handoff", details)
        items = tracker.get_slot("return_items") or []
        dispatcher.utter_message(
            response="utter_return_blocked", items=item_names_text(items), explanation=notice
        )
        dispatcher.utter_message(response="utter_offer_human")
        return reset_events(tracker, human_offered=True)
