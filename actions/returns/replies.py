"""How a return is put to the customer: the items named in a sentence, where the refund
goes, and the confirmation with its RMA number, next step, fee and refund."""

from __future__ import annotations

from collections.abc import Sequence

from rasa_sdk.executor import CollectingDispatcher

from actions.dates import format_day
from actions.returns import rules
from actions.returns.policy import ReturnPolicy
from actions.shop.base import Order, ReturnRequest


def item_names_text(names: Sequence[str]) -> str:
    names = list(names)
    if not names:
        return "this item"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def refund_words(policy: ReturnPolicy, order: Order) -> str:
    if rules.refund_destination(policy, order) == "store_credit":
        return "as store credit"
    return "to your original payment method"


def confirm(
    dispatcher: CollectingDispatcher,
    policy: ReturnPolicy,
    order: Order,
    request: ReturnRequest,
    new: bool,
    condition: bool,
) -> None:
    """The confirmation: RMA number, next step, any fee, and when the money comes back."""
    items = item_names_text(request.item_names)
    dispatcher.utter_message(
        response="utter_return_created" if new else "utter_return_already_open", rma=request.rma, items=items
    )
    free = "_free" if not request.fee else ""
    if request.method == "pickup" and request.pickup_date:
        dispatcher.utter_message(
            response=f"utter_return_next_pickup{free}", pickup_date=format_day(request.pickup_date)
        )
    elif request.method == "drop_off":
        dispatcher.utter_message(response=f"utter_return_next_label{free}", rma=request.rma)
    if request.resolution == "refund" and request.refund_amount is not None:
        response = "utter_return_refund_with_fee" if request.fee else "utter_return_refund"
        dispatcher.utter_message(
            response=response,
            amount=f"{request.refund_amount:.2f}",
            fee=f"{request.fee:.2f}",
            business_days=policy.refund.business_days_after_receipt,
            bank_days=policy.refund.bank_days,
            destination=refund_words(policy, order),
            received="receives it" if request.method != "none" else "confirms the report",
        )
    elif request.resolution == "exchange":
        dispatcher.utter_message(response="utter_return_exchange")
    elif request.resolution == "replacement":
        dispatcher.utter_message(response="utter_return_replacement")
    if condition and request.method != "none":
        dispatcher.utter_message(text=policy.condition.explanation)
