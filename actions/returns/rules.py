"""The return policy, evaluated: pure functions over knowledge_base/return_policy.yml.

Every decision carries the rule that made it (`rule`, for logs, tickets and tests) and the
customer's words for it (`explanation`, from the policy file). No number of the policy is
written here: windows, fees, hours and thresholds all come from `ReturnPolicy`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from actions.dates import add_months, format_date, format_day
from actions.returns.policy import FlagQuestion, ReturnPolicy
from actions.shop.base import RELEASED_STATUSES, Order, OrderItem, ReturnRequest


@dataclass(frozen=True)
class ItemVerdict:
    item: OrderItem
    allowed: bool
    rule: str  # "ok", "not_delivered", "category:<name>", "flag:<name>", "window", "already_returned"
    explanation: str = ""  # what the customer reads when it is not allowed
    last_day: dt.date | None = None  # the last day of the return window
    warranty: str = ""  # a pointer to the warranty, when the window has closed on a covered item
    existing_rma: str | None = None


def window_start(policy: ReturnPolicy, order: Order) -> dt.datetime | None:
    return order.delivered_at if policy.window_starts == "delivery" else order.placed_at


def holding_returns(returns: Iterable[ReturnRequest]) -> list[ReturnRequest]:
    """Returns that hold their items: open, or refunded."""
    return [request for request in returns if request.status not in RELEASED_STATUSES]


def item_verdict(
    policy: ReturnPolicy,
    order: Order,
    item: OrderItem,
    today: dt.date,
    returns: Sequence[ReturnRequest] = (),
) -> ItemVerdict:
    """Whether `item` of `order` can be returned on `today`, and which rule says so.

    The rules apply in the order a shop explains them: the order must have arrived; some
    categories and flagged items are never returnable; otherwise the window by category
    decides. Day `window` after the start is the last day a return is accepted.
    """
    for request in holding_returns(returns):
        if item.name in request.item_names:
            return ItemVerdict(item, False, "already_returned", existing_rma=request.rma)
    start = window_start(policy, order)
    if order.status != "delivered" or start is None:
        return ItemVerdict(item, False, "not_delivered")
    if item.category in policy.non_returnable_categories:
        explanation = policy.non_returnable_categories[item.category]
        return ItemVerdict(item, False, f"category:{item.category}", explanation)
    for flag in item.flags:
        if flag in policy.non_returnable_flags:
            return ItemVerdict(item, False, f"flag:{flag}", policy.non_returnable_flags[flag])
    days = policy.window_for(item.category)
    last_day = start.date() + dt.timedelta(days=days)
    if today > last_day:
        explanation = policy.window_explanation.format(days=days, last_day=format_day(last_day))
        return ItemVerdict(
            item, False, "window", explanation, last_day, warranty_pointer(policy, order, item, today)
        )
    return ItemVerdict(item, True, "ok", last_day=last_day)


def warranty_pointer(policy: ReturnPolicy, order: Order, item: OrderItem, today: dt.date) -> str:
    """The warranty, for an item whose category has one that still runs on `today`."""
    months = policy.warranty_months_by_category.get(item.category)
    start = order.delivered_at or order.placed_at
    if not months or start is None:
        return ""
    ends = add_months(start.date(), months)
    if today > ends:
        return ""
    return policy.warranty_explanation.format(months=months, last_day=format_date(ends))


def flag_questions(
    policy: ReturnPolicy, items: Iterable[OrderItem], reason: str, answered: Iterable[str] = ()
) -> list[FlagQuestion]:
    """What the customer must be asked about the items (opened, seal removed), in the
    policy's order; nothing for a reason the condition rule exempts (a faulty item)."""
    if reason in policy.condition.exempt_reasons:
        return []
    items, done = list(items), set(answered)
    return [
        question
        for question in policy.flag_questions
        if question.flag not in done and any(item.category in question.categories for item in items)
    ]


def exchanges_used(item: OrderItem, returns: Iterable[ReturnRequest]) -> int:
    return sum(
        1
        for request in returns
        if request.status != "rejected"
        and request.resolution == "exchange"
        and item.name in request.item_names
    )


def exchange_allowed(
    policy: ReturnPolicy, items: Iterable[OrderItem], returns: Sequence[ReturnRequest]
) -> bool:
    return all(exchanges_used(item, returns) < policy.exchange.free_exchanges_per_item for item in items)


def fee(policy: ReturnPolicy, reason: str, resolution: str) -> Decimal:
    """The label fee: an exchange (within its allowance) pays the exchange fee; a refund or
    a replacement pays the fee of its reason (nothing for damaged, wrong or missing items)."""
    if resolution == "exchange":
        return policy.exchange.fee
    return policy.label_fee(reason)


def condition_applies(policy: ReturnPolicy, reason: str) -> bool:
    """Whether the item must come back unused, packaged and tagged (defects are exempt)."""
    return reason not in policy.condition.exempt_reasons


def refund_amount(items: Iterable[OrderItem], label_fee: Decimal) -> Decimal:
    total = sum((item.price * item.quantity for item in items), Decimal("0"))
    return max(Decimal("0"), total - label_fee)


def refund_destination(policy: ReturnPolicy, order: Order) -> str:
    """`original_payment_method` or `store_credit` (orders paid with a gift card)."""
    return policy.refund.gift_card_orders if order.payment_method == "gift_card" else policy.refund.to


@dataclass(frozen=True)
class ProblemVerdict:
    in_time: bool  # reported within the hours after delivery
    high_value: bool
    rule: str  # "ok", "problem_window", "high_value", "not_delivered"
    explanation: str = ""


def problem_verdict(
    policy: ReturnPolicy, order: Order, items: Sequence[OrderItem], now: dt.datetime
) -> ProblemVerdict:
    """A damaged, wrong or missing item: settled at once (replacement or refund, no fee)
    when reported in time and not of high value; otherwise a person takes it."""
    if order.delivered_at is None:
        return ProblemVerdict(False, False, "not_delivered")
    in_time = now - order.delivered_at <= dt.timedelta(hours=policy.problem_report_hours)
    dearest = max(items, key=lambda item: item.price, default=None)
    high_value = dearest is not None and dearest.price >= policy.problem_high_value
    if not in_time:
        explanation = policy.problem_report_explanation.format(
            hours=policy.problem_report_hours, delivered=format_day(order.delivered_at)
        )
        return ProblemVerdict(False, high_value, "problem_window", explanation)
    if high_value and dearest is not None:
        explanation = policy.problem_high_value_explanation.format(
            item=dearest.name, price=f"{dearest.price:.2f}"
        )
        return ProblemVerdict(True, True, "high_value", explanation)
    return ProblemVerdict(True, False, "ok")
