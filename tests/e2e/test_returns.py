"""Returns, held as a customer would, through the gateway: the seed orders that exercise a
rule of knowledge_base/return_policy.yml, return and refund status, and problem reports.

The stack is shared by the whole session, so a test that creates a return works on an
order of its own (`add_order`) unless it is the seed order the issue names.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from actions.shop.demo import OrderRow, ReturnRow
from tests.support.shop import add_order
from tests.support.stack import Stack, texts

pytestmark = pytest.mark.e2e

RMA = re.compile(r"RMA-\d+")


def new_sender() -> str:
    return f"returner-{uuid.uuid4().hex[:8]}"


def return_rows(stack: Stack, number: str) -> list[ReturnRow]:
    """The returns of an order in the running shop, oldest first."""
    engine = sa.create_engine(f"sqlite:///{stack.shop_db}")
    try:
        with Session(engine) as session:
            statement = sa.select(ReturnRow).join(OrderRow).where(OrderRow.number == number)
            rows = list(session.scalars(statement.order_by(ReturnRow.id)))
            session.expunge_all()
            return rows
    finally:
        engine.dispose()


def shop_returns(stack: Stack, number: str) -> list[tuple[str, str, str, str, Decimal]]:
    return [(r.rma, r.status, r.reason, r.resolution, Decimal(r.fee)) for r in return_rows(stack, number)]


def buttons(replies: list[dict]) -> list[str]:
    return [button["title"] for reply in replies for button in reply.get("buttons") or []]


# --- the seed orders ----------------------------------------------------------------------------


def test_the_sweater_of_100235_is_returned_once_with_an_rma_and_its_next_step(stack: Stack) -> None:
    sender = new_sender()
    assert "email" in texts(stack.say(sender, "I want to return the sweater from order 100235")).lower()
    reason = stack.say(sender, "jane.doe@example.com")
    assert "reason" in texts(reason).lower()
    assert "Doesn't fit" in buttons(reason)
    assert buttons(stack.say(sender, "it's too small")) == ["Refund", "Exchange (size or colour)"]
    assert "Courier pickup" in buttons(stack.say(sender, "a refund please"))
    confirmation = texts(stack.say(sender, "pickup please"))

    [rma] = set(RMA.findall(confirmation))
    assert "merino wool sweater" in confirmation
    # What the return costs is told once: no "at no extra charge" beside the fee.
    assert "courier picks it up on" in confirmation and "no extra charge" not in confirmation
    assert "costs you nothing" not in confirmation
    assert "$114.05" in confirmation and "$5.95 return shipping fee" in confirmation  # $120.00 - $5.95
    assert "within 2 business days" in confirmation and "3-5 business days" in confirmation
    assert "unused" in confirmation  # the condition rule: a change-of-size return is not exempt
    [(stored, status, why, resolution, fee)] = [r for r in shop_returns(stack, "100235") if r[0] == rma]
    assert (status, why, resolution, fee) == ("pickup_scheduled", "doesnt_fit", "refund", Decimal("5.95"))

    # Asked again: the item is being returned already (the form stops before submitting; the
    # backend's own idempotency is tested in tests/actions/test_demo_shop.py).
    again = new_sender()
    stack.say(again, "I want to return the merino wool sweater from order 100235")
    repeated = texts(stack.say(again, "jane.doe@example.com"))
    assert rma in repeated and "already being returned" in repeated
    assert [r[0] for r in shop_returns(stack, "100235")].count(rma) == 1

    status = texts(stack.say(sender, f"what's happening with {rma}?"))  # ownership already proven
    assert rma in status and "pickup is booked" in status


def test_the_denim_jacket_of_100236_is_refused_for_the_30_day_window(stack: Stack) -> None:
    sender = new_sender()
    assert "order number" in texts(stack.say(sender, "i want to return something")).lower()
    stack.say(sender, "100236")
    reply = stack.say(sender, "jane.doe@example.com")
    refusal = texts(reply)
    assert "denim jacket can't be returned" in refusal
    assert "within 30 days of delivery" in refusal
    closed = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=45) + dt.timedelta(days=30)).date()
    assert f"closed on {closed:%A} {closed.day} {closed:%B}" in refusal
    assert "warranty" not in refusal  # apparel has none
    assert "Yes, connect me" in buttons(reply)
    assert shop_returns(stack, "100236") == []


def test_the_headphones_of_100238_are_refused_for_the_15_day_window_and_pointed_to_the_warranty(
    stack: Stack,
) -> None:
    sender = new_sender()
    stack.say(sender, "return the headphones from order 100238")
    refusal = texts(stack.say(sender, "sam.patel@example.net"))
    assert "wireless headphones, over-ear can't be returned" in refusal
    assert "within 15 days of delivery" in refusal
    assert "12-month manufacturer warranty" in refusal
    assert shop_returns(stack, "100238") == []


def test_the_engraved_board_of_100241_is_refused_as_personalised(stack: Stack) -> None:
    sender = new_sender()
    stack.say(sender, "i'd like to return the engraved cutting board, order 100241")
    refusal = texts(stack.say(sender, "sam.patel@example.net"))
    assert "engraved cutting board can't be returned" in refusal
    assert "personalised" in refusal
    assert shop_returns(stack, "100241") == []


def test_an_order_on_its_way_cannot_be_returned_yet(stack: Stack) -> None:
    sender = new_sender()
    stack.say(sender, "I want to return order 100234")
    reply = texts(stack.say(sender, "jane.doe@example.com"))
    assert "hasn't been delivered yet" in reply
    assert shop_returns(stack, "100234") == []


def test_a_stranger_learns_nothing_about_a_return(stack: Stack) -> None:
    sender = new_sender()
    asked = texts(stack.say(sender, "what's happening with RMA-20431?"))
    assert "email" in asked and "100242" not in asked  # not even which order it belongs to
    reply = texts(stack.say(sender, "someone@example.com"))
    assert "doesn't match" in reply
    assert "table lamp" not in reply and "pickup" not in reply


# --- status ---------------------------------------------------------------------------------------


def test_rma_20431_reports_its_booked_pickup(stack: Stack) -> None:
    sender = new_sender()
    assert "email" in texts(stack.say(sender, "what's happening with RMA-20431?")).lower()
    reply = texts(stack.say(sender, "jane.doe@example.com"))
    tomorrow = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).date()
    assert "RMA-20431" in reply and "table lamp" in reply
    assert f"pickup is booked for {tomorrow:%A} {tomorrow.day} {tomorrow:%B}" in reply


def test_rma_88120_reports_its_refund_asked_as_a_refund_question(stack: Stack) -> None:
    sender = new_sender()
    assert "RMA number" in texts(stack.say(sender, "when do I get my refund?"))
    stack.say(sender, "RMA-88120")
    reply = texts(stack.say(sender, "li.wei@example.org"))
    refunded = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=4)).date()
    assert "we refunded $420.00 to your original payment method" in reply
    assert f"{refunded:%A} {refunded.day} {refunded:%B}" in reply


def test_return_status_by_order_number(stack: Stack) -> None:
    sender = new_sender()
    stack.say(sender, "has my return for order 100243 been refunded?")
    reply = texts(stack.say(sender, "li.wei@example.org"))
    assert "RMA-88120" in reply and "$420.00" in reply


def test_an_unknown_rma_number_is_answered_as_someone_elses(stack: Stack) -> None:
    """Neither whether an RMA exists nor its order is told before the email proves it."""
    replies = {}
    for rma in ("RMA-88120", "RMA-55555"):  # a real return, not this customer's; and none
        sender = new_sender()
        asked = texts(stack.say(sender, f"status of return {rma}")).replace(rma, "R")
        wrong = texts(stack.say(sender, "someone@example.net")).replace(rma, "R")
        replies[rma] = (asked, wrong)
    assert replies["RMA-88120"] == replies["RMA-55555"]
    asked, wrong = replies["RMA-55555"]
    assert "email address you used for that order" in asked
    assert "100243" not in asked + wrong  # the real RMA's order stays unnamed
    assert "doesn't match what we have for R" in wrong


# --- the form's paths -------------------------------------------------------------------------------


def test_the_gift_card_in_100239_is_explained_and_the_stand_mixer_goes_back(stack: Stack) -> None:
    sender = new_sender()
    stack.say(sender, "I want to return items from order 100239")
    assert buttons(stack.say(sender, "li.wei@example.org")) == ["stand mixer", "gift card $50", "All of them"]
    reply = texts(stack.say(sender, "both"))
    assert "gift card $50 can't be returned. Gift cards can't be returned or refunded." in reply
    assert "go on with the stand mixer" in reply
    stack.say(sender, "changed my mind")
    stack.say(sender, "refund")
    confirmation = texts(stack.say(sender, "pickup"))
    fee = "(less the $5.95 return shipping fee, the same for a pickup or a drop-off)"
    assert f"$293.05 {fee} to your original payment method" in confirmation
    [(_, status, reason, _, fee)] = shop_returns(stack, "100239")
    assert (status, reason, fee) == ("pickup_scheduled", "changed_mind", Decimal("5.95"))


def test_the_lamp_of_100242_is_already_being_returned(stack: Stack) -> None:
    sender = new_sender()
    stack.say(sender, "can i send the lamp from order 100242 back")
    reply = texts(stack.say(sender, "jane.doe@example.com"))
    assert "already being returned (RMA-20431)" in reply
    assert [r[0] for r in shop_returns(stack, "100242")] == ["RMA-20431"]


def test_an_order_paid_by_gift_card_is_refunded_as_store_credit(stack: Stack) -> None:
    number, email = add_order(
        stack,
        dt.timedelta(days=3),
        [("stand mixer", "electronics", "299.00"), ("gift card $50", "gift_card", "50.00")],
        payment_method="gift_card",
    )
    sender = new_sender()
    stack.say(sender, f"I want to return items from order {number}")
    choice = stack.say(sender, email)
    assert buttons(choice) == ["stand mixer", "gift card $50", "All of them"]
    reply = texts(stack.say(sender, "All of them"))
    assert "gift card $50 can't be returned" in reply and "Gift cards" in reply
    assert "go on with the stand mixer" in reply
    stack.say(sender, "it's faulty")
    stack.say(sender, "refund")
    confirmation = texts(stack.say(sender, "I'll drop it off"))
    assert "prepaid return label" in confirmation and "costs you nothing" in confirmation
    assert "$299.00 as store credit" in confirmation  # a defect: no fee; paid by gift card
    assert "unused" not in confirmation  # defective items are exempt from the condition rule
    [(_, status, reason, _, fee)] = shop_returns(stack, number)
    assert (status, reason, fee) == ("label_sent", "defective", Decimal("0"))


def test_a_policy_question_midway_then_back_and_a_corrected_answer(stack: Stack) -> None:
    number, email = add_order(stack, dt.timedelta(days=6), [("rain jacket", "apparel", "80.00")])
    sender = new_sender()
    stack.say(sender, f"I'd like to return order {number}")
    assert "reason" in texts(stack.say(sender, email)).lower()  # one item: no need to ask which
    stack.say(sender, "I changed my mind")
    digression = stack.say(sender, "how long does a refund take?")
    assert "2 business days" in texts(digression)
    assert "Did that answer your question?" not in texts(digression)
    assert buttons(digression) == ["Refund", "Exchange (size or colour)"]  # back to the form
    assert "Courier pickup" in buttons(stack.say(sender, "refund"))
    stack.say(sender, "sorry, actually I want an exchange")  # a correction while asked another thing
    confirmation = texts(stack.say(sender, "pickup"))
    assert "exchange is free" in confirmation and "$" not in confirmation
    [(_, _, reason, resolution, fee)] = shop_returns(stack, number)
    assert (reason, resolution, fee) == ("changed_mind", "exchange", Decimal("0"))


def test_a_return_can_be_stopped_midway(stack: Stack) -> None:
    number, email = add_order(stack, dt.timedelta(days=2), [("yoga mat", "sports", "35.00")])
    sender = new_sender()
    stack.say(sender, f"start a return for order {number}")
    stack.say(sender, email)
    assert "anything else" in texts(stack.say(sender, "no, forget it")).lower()
    assert shop_returns(stack, number) == []
    assert "order" in texts(stack.say(sender, "where is my order?")).lower()  # a fresh start


# --- problem reports ----------------------------------------------------------------------------------


def test_a_damaged_item_reported_in_time_gets_a_free_replacement(stack: Stack) -> None:
    number, email = add_order(stack, dt.timedelta(hours=20), [("ceramic bowl", "home", "24.00")])
    sender = new_sender()
    stack.say(sender, f"the bowl from order {number} arrived cracked")
    choice = stack.say(sender, email)
    assert buttons(choice) == ["Send a replacement", "Refund"]
    stack.say(sender, "send a replacement please")
    confirmation = texts(stack.say(sender, "pickup"))
    assert RMA.search(confirmation) and "replacement by express" in confirmation
    [(_, status, reason, resolution, fee)] = shop_returns(stack, number)
    assert (status, reason, resolution, fee) == ("pickup_scheduled", "damaged", "replacement", Decimal("0"))
    assert stack.tickets(sender) == []


def test_a_missing_item_needs_nothing_sent_back(stack: Stack) -> None:
    number, email = add_order(
        stack, dt.timedelta(hours=30), [("desk lamp", "home", "40.00"), ("bulb pack", "home", "9.00")]
    )
    sender = new_sender()
    stack.say(sender, f"the bulb pack is missing from order {number}")
    stack.say(sender, email)
    stack.say(sender, "the bulb pack")
    confirmation = texts(stack.say(sender, "refund"))
    assert "$9.00" in confirmation and "pick" not in confirmation and "label" not in confirmation
    [(_, status, reason, _, fee)] = shop_returns(stack, number)
    assert (status, reason, fee) == ("requested", "missing", Decimal("0"))


def test_a_problem_reported_after_48_hours_goes_to_a_person(stack: Stack) -> None:
    number, email = add_order(stack, dt.timedelta(days=4), [("glass vase", "home", "30.00")])
    sender = new_sender()
    stack.say(sender, f"my vase from order {number} arrived smashed")
    reply = texts(stack.say(sender, email))
    assert "within 48 hours of delivery" in reply
    assert "passing this conversation to our support team" in reply
    [(reason, details)] = stack.tickets(sender)
    assert reason == "late_problem_report"
    assert details["order_id"] == number and details["problem"] == "damaged"
    assert shop_returns(stack, number) == []


def test_a_damaged_high_value_item_goes_to_a_person(stack: Stack) -> None:
    number, email = add_order(stack, dt.timedelta(hours=10), [("road bike helmet", "sports", "260.00")])
    sender = new_sender()
    stack.say(sender, f"the helmet from order {number} arrived damaged")
    reply = texts(stack.say(sender, email))
    assert "worth $260.00" in reply
    [(reason, details)] = stack.tickets(sender)
    assert reason == "high_value_problem" and details["items"] == ["road bike helmet"]


def test_opened_in_ear_headphones_are_refused_after_the_policy_s_own_question(stack: Stack) -> None:
    number, email = add_order(
        stack, dt.timedelta(days=4), [("wireless earbuds", "in_ear_headphones", "79.00")]
    )
    sender = new_sender()
    stack.say(sender, f"I want to return the earbuds from order {number}")
    stack.say(sender, email)
    question = stack.say(sender, "changed my mind")
    assert "Have the in-ear headphones been opened?" in texts(question)
    assert buttons(question) == ["Yes", "No"]
    refusal = texts(stack.say(sender, "yes"))
    assert "wireless earbuds can't be returned" in refusal and "once they have been opened" in refusal
    assert shop_returns(stack, number) == []


def test_a_sealed_swimsuit_goes_back_and_an_opened_one_stays_out_of_a_mixed_return(stack: Stack) -> None:
    number, email = add_order(
        stack, dt.timedelta(days=4), [("swimsuit", "swimwear", "45.00"), ("beach towel", "home", "25.00")]
    )
    sender = new_sender()
    stack.say(sender, f"I'd like to return items from order {number}")
    stack.say(sender, email)
    stack.say(sender, "both")
    assert "hygiene seal" in texts(stack.say(sender, "they don't fit"))
    reply = texts(stack.say(sender, "yes"))
    assert "swimsuit can't be returned" in reply and "go on with the beach towel" in reply
    stack.say(sender, "refund")
    stack.say(sender, "pickup")
    [row] = return_rows(stack, number)
    assert (row.reason, row.item_names) == ("doesnt_fit", ["beach towel"])


def test_a_faulty_item_is_not_asked_about_its_seal(stack: Stack) -> None:
    number, email = add_order(stack, dt.timedelta(days=4), [("earphones", "in_ear_headphones", "30.00")])
    sender = new_sender()
    stack.say(sender, f"return the earphones from order {number}")
    stack.say(sender, email)
    reply = texts(stack.say(sender, "the left one stopped working"))
    assert "opened" not in reply
    assert "Refund" in reply or "prefer" in reply


def test_a_cancelled_order_has_nothing_to_return(stack: Stack) -> None:
    number, email = add_order(
        stack, dt.timedelta(days=2), [("desk fan", "home", "40.00")], status="cancelled"
    )
    sender = new_sender()
    stack.say(sender, f"I want to return order {number}")
    reply = texts(stack.say(sender, email))
    assert "was cancelled, so there's nothing to return" in reply


def test_questions_in_the_middle_of_a_return_are_answered_and_do_not_change_it(stack: Stack) -> None:
    number, email = add_order(
        stack,
        dt.timedelta(days=5),
        [("linen shirt", "apparel", "55.00"), ("linen trousers", "apparel", "65.00")],
    )
    sender = new_sender()
    stack.say(sender, f"I want to return the shirt from order {number}")
    assert "reason" in texts(stack.say(sender, email)).lower()
    policy = texts(stack.say(sender, "do I pay for the return label if the trousers don't fit?"))
    assert "$5.95" in policy  # the question is answered, not taken as an answer
    elsewhere = texts(stack.say(sender, "where is my order 100234?"))
    assert f"finish the return for order {number} first" in elsewhere
    stack.say(sender, "it's too big")
    stack.say(sender, "refund")
    confirmation = texts(stack.say(sender, "pickup"))
    assert "linen shirt" in confirmation and "linen trousers" not in confirmation
    [(_, _, reason, _, _)] = shop_returns(stack, number)
    assert reason == "doesnt_fit"


def test_damage_named_while_starting_a_return_follows_the_report_rules(stack: Stack) -> None:
    number, email = add_order(stack, dt.timedelta(days=6), [("serving platter", "home", "38.00")])
    sender = new_sender()
    stack.say(sender, f"I want to return order {number}")
    stack.say(sender, email)
    reply = texts(stack.say(sender, "it arrived damaged"))
    assert "within 48 hours of delivery" in reply
    assert [reason for reason, _ in stack.tickets(sender)] == ["late_problem_report"]
    assert shop_returns(stack, number) == []


def test_a_parcel_reported_missing_while_on_its_way_gets_its_tracking_and_a_person(stack: Stack) -> None:
    sender = new_sender()
    stack.say(sender, "my parcel for order 100234 never arrived")
    reply = stack.say(sender, "jane.doe@example.com")
    assert "1Z999AA10123456784" in texts(reply) and "Expected delivery" in texts(reply)
    assert "Yes, connect me" in buttons(reply)
    assert shop_returns(stack, "100234") == []
