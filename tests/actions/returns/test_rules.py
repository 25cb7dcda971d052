"""The return policy engine on the shop's real return_policy.yml: which items a customer may
return and why not, the fee and the refund, exchanges and problem reports; and the return
form's vocabulary, which turns a customer's words into a reason, a resolution, a method and
the items. Every date is fixed: nothing here reads the clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from actions.dates import format_date, format_day
from actions.returns import rules
from actions.returns.policy import ReturnPolicy, load_return_policy
from actions.returns.vocabulary import match_choice, match_items, read_choice, vocabulary
from actions.settings import ROOT
from actions.shop.base import Order, OrderItem, ReturnRequest

DELIVERED_AT = dt.datetime(2024, 3, 1, 15, 30, tzinfo=dt.timezone.utc)
DELIVERY_DAY = DELIVERED_AT.date()

SWEATER = OrderItem("merino wool sweater", "apparel", Decimal("89.00"))
SOCKS = OrderItem("wool socks 3-pack", "apparel", Decimal("18.00"))
HEADPHONES = OrderItem("noise-cancelling headphones", "electronics", Decimal("149.00"))
STAND_MIXER = OrderItem("stand mixer", "kitchen", Decimal("129.00"))
GIFT_CARD = OrderItem("gift card", "gift_card", Decimal("50.00"))
ENGRAVED_FLASK = OrderItem("engraved hip flask", "accessories", Decimal("35.00"), personalised=True)
ESPRESSO_MACHINE = OrderItem("espresso machine", "kitchen", Decimal("349.00"))


@pytest.fixture(scope="module")
def policy() -> ReturnPolicy:
    return load_return_policy(ROOT / "knowledge_base" / "return_policy.yml")


def order(
    *items: OrderItem,
    status: str = "delivered",
    delivered_at: dt.datetime | None = DELIVERED_AT,
    payment_method: str = "card",
) -> Order:
    return Order(
        number="HL-10042",
        customer_email="sam@example.com",
        status=status,
        placed_at=DELIVERED_AT - dt.timedelta(days=4),
        items=items,
        shipping_method="standard",
        delivered_at=delivered_at,
        payment_method=payment_method,
    )


def day(days_after_delivery: int) -> dt.date:
    return DELIVERY_DAY + dt.timedelta(days=days_after_delivery)


def return_of(
    *items: OrderItem, status: str = "requested", resolution: str = "refund", rma: str = "RMA-1001"
) -> ReturnRequest:
    return ReturnRequest(
        rma=rma,
        order_number="HL-10042",
        status=status,
        reason="doesnt_fit",
        item_names=tuple(item.name for item in items),
        requested_at=DELIVERED_AT + dt.timedelta(days=3),
        resolution=resolution,
    )


# --- the return window ---------------------------------------------------------------------


def test_apparel_can_be_returned_on_the_30th_day_after_delivery(policy: ReturnPolicy) -> None:
    verdict = rules.item_verdict(policy, order(SWEATER), SWEATER, day(30))

    assert verdict.allowed
    assert verdict.rule == "ok"
    assert verdict.last_day == day(30)


def test_apparel_cannot_be_returned_on_the_31st_day_and_the_customer_is_told_the_last_day(
    policy: ReturnPolicy,
) -> None:
    verdict = rules.item_verdict(policy, order(SWEATER), SWEATER, day(31))

    assert not verdict.allowed
    assert verdict.rule == "window"
    assert verdict.last_day == day(30)
    assert "30 days" in verdict.explanation
    assert format_day(day(30)) in verdict.explanation
    assert "Sunday 31 March" in verdict.explanation


def test_electronics_can_be_returned_on_the_15th_day_after_delivery(policy: ReturnPolicy) -> None:
    verdict = rules.item_verdict(policy, order(HEADPHONES), HEADPHONES, day(15))

    assert verdict.allowed
    assert verdict.rule == "ok"
    assert verdict.last_day == day(15)


def test_electronics_cannot_be_returned_on_the_16th_day(policy: ReturnPolicy) -> None:
    verdict = rules.item_verdict(policy, order(HEADPHONES), HEADPHONES, day(16))

    assert not verdict.allowed
    assert verdict.rule == "window"
    assert "15 days" in verdict.explanation
    assert format_day(day(15)) in verdict.explanation


# --- items that are never returnable -------------------------------------------------------


def test_a_gift_card_in_a_mixed_order_is_blocked_while_the_rest_of_the_order_can_go_back(
    policy: ReturnPolicy,
) -> None:
    mixed = order(STAND_MIXER, GIFT_CARD)

    mixer = rules.item_verdict(policy, mixed, STAND_MIXER, day(5))
    gift_card = rules.item_verdict(policy, mixed, GIFT_CARD, day(5))

    assert mixer.allowed
    assert mixer.rule == "ok"
    assert not gift_card.allowed
    assert gift_card.rule == "category:gift_card"
    assert gift_card.explanation == policy.non_returnable_categories["gift_card"]
    assert gift_card.explanation


def test_a_personalised_item_cannot_be_returned_even_on_the_day_it_arrives(policy: ReturnPolicy) -> None:
    verdict = rules.item_verdict(policy, order(ENGRAVED_FLASK), ENGRAVED_FLASK, day(0))

    assert not verdict.allowed
    assert verdict.rule == "flag:personalised"
    assert verdict.explanation == policy.non_returnable_flags["personalised"]


def test_an_order_still_on_its_way_cannot_be_returned_yet(policy: ReturnPolicy) -> None:
    shipped = order(SWEATER, status="shipped", delivered_at=None)

    verdict = rules.item_verdict(policy, shipped, SWEATER, day(2))

    assert not verdict.allowed
    assert verdict.rule == "not_delivered"


# --- returns already made ------------------------------------------------------------------


def test_an_item_already_in_an_open_return_is_blocked_and_points_to_that_return(
    policy: ReturnPolicy,
) -> None:
    returns = [return_of(SWEATER, rma="RMA-2001")]
    both = order(SWEATER, SOCKS)

    sweater = rules.item_verdict(policy, both, SWEATER, day(5), returns)
    socks = rules.item_verdict(policy, both, SOCKS, day(5), returns)

    assert not sweater.allowed
    assert sweater.rule == "already_returned"
    assert sweater.existing_rma == "RMA-2001"
    assert socks.allowed


def test_a_rejected_return_does_not_stop_the_item_being_returned_again(policy: ReturnPolicy) -> None:
    returns = [return_of(SWEATER, status="rejected")]

    verdict = rules.item_verdict(policy, order(SWEATER), SWEATER, day(5), returns)

    assert verdict.allowed
    assert verdict.rule == "ok"
    assert verdict.existing_rma is None


# --- the warranty, once the window has closed ----------------------------------------------


def test_electronics_past_the_return_window_are_pointed_to_the_12_month_warranty(
    policy: ReturnPolicy,
) -> None:
    verdict = rules.item_verdict(policy, order(HEADPHONES), HEADPHONES, day(60))

    assert not verdict.allowed
    assert verdict.rule == "window"
    assert verdict.warranty
    assert "12-month" in verdict.warranty
    assert format_date(dt.date(2025, 3, 1)) in verdict.warranty


def test_apparel_past_the_return_window_has_no_warranty_to_point_to(policy: ReturnPolicy) -> None:
    verdict = rules.item_verdict(policy, order(SWEATER), SWEATER, day(60))

    assert verdict.rule == "window"
    assert verdict.warranty == ""


def test_electronics_delivered_more_than_12_months_ago_have_no_warranty_left(policy: ReturnPolicy) -> None:
    verdict = rules.item_verdict(policy, order(HEADPHONES), HEADPHONES, dt.date(2025, 3, 2))

    assert verdict.rule == "window"
    assert verdict.warranty == ""


# --- fees and refunds ------------------------------------------------------------------------


def test_a_change_of_mind_refund_pays_the_return_label_fee_of_the_policy(policy: ReturnPolicy) -> None:
    charged = rules.fee(policy, "changed_mind", "refund")

    assert charged == policy.label_fee("changed_mind")
    assert charged > 0


@pytest.mark.parametrize("reason", ["defective", "damaged", "wrong_item"])
def test_a_refund_for_a_fault_of_ours_is_free(policy: ReturnPolicy, reason: str) -> None:
    assert rules.fee(policy, reason, "refund") == Decimal("0")


def test_an_exchange_pays_the_exchange_fee_whatever_the_reason(policy: ReturnPolicy) -> None:
    assert policy.exchange.fee == Decimal("0")
    assert rules.fee(policy, "changed_mind", "exchange") == policy.exchange.fee
    assert rules.fee(policy, "doesnt_fit", "exchange") == policy.exchange.fee
    dearer = dataclasses.replace(policy, exchange=dataclasses.replace(policy.exchange, fee=Decimal("3.00")))
    assert rules.fee(dearer, "doesnt_fit", "exchange") == Decimal("3.00")


@pytest.mark.parametrize("reason", ["damaged", "wrong_item", "missing"])
def test_a_replacement_for_a_problem_of_ours_is_free(policy: ReturnPolicy, reason: str) -> None:
    assert rules.fee(policy, reason, "replacement") == Decimal("0")


def test_the_refund_is_the_items_total_less_the_label_fee(policy: ReturnPolicy) -> None:
    label_fee = policy.label_fee("changed_mind")
    two_pairs = dataclasses.replace(SOCKS, quantity=2)

    refund = rules.refund_amount([SWEATER, two_pairs], label_fee)

    assert refund == SWEATER.price + 2 * SOCKS.price - label_fee


def test_the_refund_never_goes_below_zero(policy: ReturnPolicy) -> None:
    cheap = OrderItem("shoelaces", "apparel", Decimal("3.00"))

    assert rules.refund_amount([cheap], policy.label_fee("changed_mind")) == Decimal("0")
    assert rules.refund_amount([], policy.label_fee("changed_mind")) == Decimal("0")


def test_an_order_paid_with_a_gift_card_is_refunded_as_store_credit(policy: ReturnPolicy) -> None:
    paid_by_gift_card = order(SWEATER, payment_method="gift_card")

    assert rules.refund_destination(policy, paid_by_gift_card) == "store_credit"


def test_an_order_paid_by_card_is_refunded_to_the_card(policy: ReturnPolicy) -> None:
    assert rules.refund_destination(policy, order(SWEATER)) == "original_payment_method"


# --- exchanges -------------------------------------------------------------------------------


def test_an_item_never_exchanged_can_be_exchanged(policy: ReturnPolicy) -> None:
    assert rules.exchange_allowed(policy, [SWEATER], [])
    assert rules.exchange_allowed(policy, [SWEATER], [return_of(SWEATER, resolution="refund")])


def test_an_item_exchanged_once_cannot_be_exchanged_again(policy: ReturnPolicy) -> None:
    exchanged = [return_of(SWEATER, status="exchanged", resolution="exchange")]

    assert not rules.exchange_allowed(policy, [SWEATER], exchanged)
    assert not rules.exchange_allowed(policy, [SOCKS, SWEATER], exchanged)
    assert rules.exchange_allowed(policy, [SOCKS], exchanged)


def test_a_rejected_exchange_does_not_use_up_the_free_exchange(policy: ReturnPolicy) -> None:
    rejected = [return_of(SWEATER, status="rejected", resolution="exchange")]

    assert rules.exchange_allowed(policy, [SWEATER], rejected)


# --- damaged, wrong or missing items -------------------------------------------------------


def test_a_cheap_item_reported_47_hours_after_delivery_is_settled_at_once(policy: ReturnPolicy) -> None:
    now = DELIVERED_AT + dt.timedelta(hours=47)

    verdict = rules.problem_verdict(policy, order(SOCKS), [SOCKS], now)

    assert verdict.rule == "ok"
    assert verdict.in_time
    assert not verdict.high_value


def test_a_problem_reported_49_hours_after_delivery_goes_to_a_person(policy: ReturnPolicy) -> None:
    now = DELIVERED_AT + dt.timedelta(hours=49)

    verdict = rules.problem_verdict(policy, order(SOCKS), [SOCKS], now)

    assert verdict.rule == "problem_window"
    assert not verdict.in_time
    assert "48 hours" in verdict.explanation
    assert format_day(DELIVERED_AT) in verdict.explanation


def test_a_valuable_item_reported_in_time_goes_to_a_person(policy: ReturnPolicy) -> None:
    now = DELIVERED_AT + dt.timedelta(hours=2)
    mixed = order(SOCKS, ESPRESSO_MACHINE)

    verdict = rules.problem_verdict(policy, mixed, [SOCKS, ESPRESSO_MACHINE], now)

    assert ESPRESSO_MACHINE.price >= policy.problem_high_value
    assert verdict.rule == "high_value"
    assert verdict.in_time
    assert verdict.high_value
    assert ESPRESSO_MACHINE.name in verdict.explanation
    assert "$349.00" in verdict.explanation


def test_an_item_worth_exactly_the_high_value_threshold_counts_as_valuable(policy: ReturnPolicy) -> None:
    at_threshold = OrderItem("blender", "kitchen", policy.problem_high_value)
    now = DELIVERED_AT + dt.timedelta(hours=2)

    verdict = rules.problem_verdict(policy, order(at_threshold), [at_threshold], now)

    assert verdict.rule == "high_value"


# --- the policy is data ----------------------------------------------------------------------


def test_a_shorter_window_in_the_policy_closes_returns_sooner(policy: ReturnPolicy) -> None:
    ten_days = dataclasses.replace(policy, window_days=10, window_days_by_category={})

    on_day_10 = rules.item_verdict(ten_days, order(SWEATER), SWEATER, day(10))
    on_day_11 = rules.item_verdict(ten_days, order(SWEATER), SWEATER, day(11))
    electronics = rules.item_verdict(ten_days, order(HEADPHONES), HEADPHONES, day(11))

    assert on_day_10.allowed
    assert not on_day_11.allowed
    assert on_day_11.rule == "window"
    assert "10 days" in on_day_11.explanation
    assert not electronics.allowed
    assert "10 days" in electronics.explanation
    # The shop's own policy still accepts the same return.
    assert rules.item_verdict(policy, order(SWEATER), SWEATER, day(11)).allowed


def test_a_changed_fee_in_the_policy_changes_what_the_customer_pays(policy: ReturnPolicy) -> None:
    cheaper = dataclasses.replace(
        policy, fees_by_reason={**policy.fees_by_reason, "changed_mind": Decimal("2.50")}
    )

    charged = rules.fee(cheaper, "changed_mind", "refund")

    assert charged == Decimal("2.50")
    assert rules.refund_amount([SWEATER], charged) == SWEATER.price - Decimal("2.50")
    assert rules.fee(cheaper, "doesnt_fit", "refund") == policy.label_fee("doesnt_fit")


def test_a_longer_problem_window_in_the_policy_accepts_a_later_report(policy: ReturnPolicy) -> None:
    three_days = dataclasses.replace(policy, problem_report_hours=72)
    now = DELIVERED_AT + dt.timedelta(hours=49)

    assert rules.problem_verdict(three_days, order(SOCKS), [SOCKS], now).rule == "ok"


# --- the return form's vocabulary ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("it's too small", "doesnt_fit"),
        ("wrong size", "doesnt_fit"),
        ("you sent the wrong item", "wrong_item"),
        ("arrived broken", "damaged"),
        ("it stopped working", "defective"),
        ("blah", None),
    ],
)
def test_a_customer_s_words_name_the_return_reason(text: str, reason: str | None) -> None:
    assert match_choice(text, vocabulary().reasons) == reason


@pytest.mark.parametrize(
    ("text", "resolution"),
    [("money back please", "refund"), ("swap for a bigger size", "exchange")],
)
def test_a_customer_s_words_name_refund_or_exchange(text: str, resolution: str) -> None:
    assert match_choice(text, vocabulary().resolutions) == resolution


def test_a_customer_s_words_name_the_way_the_parcel_goes_back() -> None:
    assert match_choice("i'll drop it off", vocabulary().methods) == "drop_off"


@pytest.mark.parametrize(
    ("mention", "expected"),
    [
        ("the socks", [SOCKS]),
        ("the sweater", [SWEATER]),
        ("both", [SWEATER, SOCKS]),
        ("merino wool sweater", [SWEATER]),
        ("the kettle", []),
        ("the merino wool sweater", [SWEATER]),  # "wool" alone would also name the socks
        ("wool sweater", [SWEATER]),
        ("the wool one", []),  # both are wool: asked again, not both returned
        ("not all of them, just the socks", [SOCKS]),
        ("only the socks, keeping everything else", [SOCKS]),
        ("the sweater and the socks", [SWEATER, SOCKS]),
        ("all of them please", [SWEATER, SOCKS]),
    ],
)
def test_the_customer_names_the_items_to_return(mention: str, expected: list[OrderItem]) -> None:
    assert match_items(order(SWEATER, SOCKS), [mention]) == expected


def test_a_choice_turned_down_is_not_taken() -> None:
    words = vocabulary()
    assert match_choice("no exchange thanks, a refund", words.resolutions) == "refund"
    assert match_choice("i don't want a refund, swap it for a medium", words.resolutions) == "exchange"
    assert match_choice("not broken, it's too small", words.reasons) == "doesnt_fit"


def test_an_answer_without_any_phrase_is_read_by_meaning_or_asked_again() -> None:
    words = vocabulary()
    assert match_choice("these boots squeeze my feet", words.reasons) is None  # no phrase in it
    assert read_choice("these boots squeeze my feet", words.reasons) == "doesnt_fit"
    assert read_choice("the kettle leaks from the base", words.reasons) == "defective"
    assert read_choice("qwerty zxcv", words.reasons) is None  # asked again, not guessed
    # A choice turned down is not taken by meaning either.
    assert read_choice("rather not drop it off", words.methods) != "drop_off"


def test_the_policy_asks_about_opened_in_ear_headphones_unless_they_are_faulty(policy: ReturnPolicy) -> None:
    earbuds = OrderItem("wireless earbuds", "in_ear_headphones", Decimal("79.00"))
    towel = OrderItem("beach towel", "home", Decimal("25.00"))
    [question] = rules.flag_questions(policy, [earbuds, towel], "changed_mind")
    assert question.flag == "in_ear_headphones_opened" and question.question.endswith("?")
    assert rules.flag_questions(policy, [towel], "changed_mind") == []
    assert rules.flag_questions(policy, [earbuds], "defective") == []  # exempt from the condition
    assert rules.flag_questions(policy, [earbuds], "changed_mind", answered=[question.flag]) == []


def test_an_item_named_like_all_of_them_is_only_itself() -> None:
    jacket = OrderItem("all-weather jacket", "apparel", Decimal("90.00"))
    gift = OrderItem("gift card $50", "gift_card", Decimal("50.00"))
    assert match_items(order(jacket, gift), ["all-weather jacket"]) == [jacket]


def test_an_exchanged_item_can_be_returned_but_not_exchanged_again(policy: ReturnPolicy) -> None:
    placed = order(SWEATER)
    exchanged = ReturnRequest(
        "RMA-1",
        placed.number,
        "exchanged",
        "doesnt_fit",
        (SWEATER.name,),
        DELIVERED_AT,
        resolution="exchange",
    )
    verdict = rules.item_verdict(
        policy, placed, SWEATER, DELIVERED_AT.date() + dt.timedelta(days=10), [exchanged]
    )
    assert verdict.allowed
    assert not rules.exchange_allowed(policy, [SWEATER], [exchanged])
