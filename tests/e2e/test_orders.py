"""Order status and cancellation, held as a customer would, through the gateway."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import requests
import sqlalchemy as sa

from tests.support.stack import Stack, texts
from tests.support.web_customer import WebCustomer, texts_of

pytestmark = pytest.mark.e2e


def new_sender() -> str:
    return f"customer-{uuid.uuid4().hex[:8]}"


def test_order_status_with_the_number_in_the_first_message(stack: Stack) -> None:
    sender = new_sender()
    asked = texts(stack.say(sender, "where is my order 100234?"))
    assert "email" in asked.lower()
    assert "trail running shoes" not in asked  # nothing before ownership is proven

    answer = texts(stack.say(sender, "jane.doe@example.com"))
    assert "100234" in answer
    assert "shipped" in answer
    assert "UPS" in answer
    assert "1Z999AA10123456784" in answer
    assert "Expected delivery: between" in answer


def test_order_status_asks_for_the_number(stack: Stack) -> None:
    sender = new_sender()
    assert "order number" in texts(stack.say(sender, "hi, has my package shipped yet?")).lower()
    assert "email" in texts(stack.say(sender, "it's 100235")).lower()
    answer = texts(stack.say(sender, "my email is Jane.Doe@example.com"))
    assert "delivered" in answer
    assert "merino wool sweater" in answer


def test_ownership_once_proven_is_not_asked_again(stack: Stack) -> None:
    sender = new_sender()
    stack.say(sender, "where is order 100234")
    stack.say(sender, "jane.doe@example.com")
    answer = texts(stack.say(sender, "and what about my order 100236?"))
    assert "denim jacket" in answer
    assert "delivered" in answer


def test_a_stranger_learns_nothing_and_is_offered_a_human(stack: Stack) -> None:
    sender = new_sender()
    stack.say(sender, "where is my order 100234?")
    private = ("trail running shoes", "1Z999AA10123456784", "UPS", "jane", "shipped")
    for attempt, email in enumerate(["sam.patel@example.net", "li.wei@example.org"], start=1):
        reply = texts(stack.say(sender, email))
        assert "doesn't match" in reply
        assert f"{3 - attempt} tries left" in reply
        assert not any(word in reply.lower() for word in (p.lower() for p in private))
    final = stack.say(sender, "hacker@evil.example")
    final_text = texts(final)
    assert "can't share anything" in final_text
    assert not any(word in final_text.lower() for word in (p.lower() for p in private))
    assert any(reply.get("buttons") for reply in final), "the human offer comes with buttons"

    handed = texts(stack.say(sender, "yes please"))
    assert "support team" in handed
    assert tickets_for(stack, sender) == ["offer_accepted"]


def test_an_unknown_order_number_is_answered_as_someone_elses_order(stack: Stack) -> None:
    """Whether an order exists is not told by the reply: numbers cannot be enumerated."""
    replies = {}
    for number in ("100238", "999999"):  # a real order, not this customer's; and none
        sender = new_sender()
        asked = texts(stack.say(sender, f"where is my order {number}")).replace(number, "N")
        wrong = texts(stack.say(sender, "someone@example.net")).replace(number, "N")
        replies[number] = (asked, wrong)
    assert replies["100238"] == replies["999999"]
    asked, wrong = replies["999999"]
    assert "email address you used for order N" in asked
    assert "doesn't match what we have for N" in wrong and "2 tries left" in wrong


def test_a_malformed_order_number_gets_a_plain_answer(stack: Stack) -> None:
    sender = new_sender()
    assert "order number" in texts(stack.say(sender, "where is my order?")).lower()
    assert "six digits" in texts(stack.say(sender, "12-34"))
    assert "email" in texts(stack.say(sender, "100238")).lower()


def test_failed_checks_count_across_conversations(stack: Stack) -> None:
    """Fresh conversations do not bring fresh tries: one client address has ten failed
    checks an hour, whichever orders and conversations they were in."""
    headers = {**stack.rest_headers, "X-Forwarded-For": "203.0.113.77"}  # through the proxy

    def say(sender: str, text: str) -> str:
        response = requests.post(
            f"{stack.gateway_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            headers=headers,
            timeout=60,
        )
        response.raise_for_status()
        return texts(response.json())

    for n in range(3):  # three conversations, three wrong emails each: nine failures
        sender = new_sender()
        say(sender, f"where is my order 10097{n}")
        replies = [say(sender, f"guess{n}{m}@example.net") for m in range(3)]
        assert "2 tries left" in replies[0] and "can't share anything" in replies[2]
    fourth = new_sender()
    say(fourth, "where is my order 100979")
    assert "2 tries left" in say(fourth, "guess40@example.net")  # the tenth failure
    refused = say(fourth, "guess41@example.net")
    # None is made any more from this address, though this conversation had tries left.
    assert "can't share anything" in refused and "tries left" not in refused


def test_cancel_a_processing_order_only_after_confirmation(stack: Stack) -> None:
    sender = new_sender()
    stack.say(sender, "please cancel order 100237")
    confirm = stack.say(sender, "sam.patel@example.net")
    assert "ceramic mug set" in texts(confirm)
    assert "Shall I cancel it?" in texts(confirm)
    assert [b["payload"] for r in confirm for b in r.get("buttons", [])] == ["/affirm", "/deny"]
    assert "stays as it is" in texts(stack.say(sender, "no, keep it"))

    again = texts(stack.say(sender, "actually yes, cancel order 100237"))  # ownership already proven
    assert "Shall I cancel it?" in again
    mailed = stack.mailbox.count("sam.patel@example.net", "cancel order 100237")
    asked = texts(stack.say(sender, "yes"))
    assert "is cancelled" not in asked and "s***@example.net" in asked and "6-digit code" in asked
    code = stack.mailbox.cancel_code("sam.patel@example.net", "100237", after=mailed)
    assert code not in asked
    assert "is cancelled" in texts(stack.say(sender, code))
    assert "was cancelled on" in texts(stack.say(sender, "where is order 100237?"))


def test_knowing_the_email_is_not_enough_to_cancel_someone_elses_order(stack: Stack) -> None:
    copy_processing_order(stack, "100237", "100298")
    sender = new_sender()
    stack.say(sender, "please cancel order 100298")
    stack.say(sender, "sam.patel@example.net")  # known, say from an old shared invoice
    stack.say(sender, "yes")
    code = stack.mailbox.cancel_code("sam.patel@example.net", "100298")  # only the owner reads it
    guesses = [f"{(int(code) + n) % 10**6:06d}" for n in (1, 2, 3)]
    assert "2 tries left" in texts(stack.say(sender, guesses[0]))
    assert "1 tries left" in texts(stack.say(sender, guesses[1]))
    refused = texts(stack.say(sender, guesses[2]))
    assert "stays as it is" in refused and "person" in refused
    assert "being prepared" in texts(stack.say(sender, "where is order 100298?"))
    # The right code, now, cancels nothing either: the code was spent by the wrong ones.
    stack.say(sender, "cancel order 100298")
    stack.say(sender, "yes")
    assert "is cancelled" not in texts(stack.say(sender, code))


def test_a_code_typed_as_the_answer_is_not_taken_for_another_order_number(stack: Stack) -> None:
    copy_processing_order(stack, "100237", "100299")
    sender = new_sender()
    stack.say(sender, "I'd like to cancel order 100299")
    stack.say(sender, "sam.patel@example.net")
    stack.say(sender, "yes please")
    code = stack.mailbox.cancel_code("sam.patel@example.net", "100299")
    assert "The code in the mail has 6 digits" in texts(stack.say(sender, code[:4]))
    done = texts(stack.say(sender, f"{code[:3]} {code[3:]}"))
    assert "order 100299 is cancelled" in done


def test_a_shipped_order_cannot_be_cancelled_and_a_return_is_offered(stack: Stack) -> None:
    sender = new_sender()
    stack.say(sender, "I want to cancel my order 100240")
    replies = stack.say(sender, "li.wei@example.org")
    assert "already shipped" in texts(replies)
    assert "/request_return" in [b["payload"] for r in replies for b in r.get("buttons", [])]


def tickets_for(stack: Stack, sender: str) -> list[str]:
    rows = stack.query(
        "SELECT t.reason FROM tickets t JOIN conversations c ON c.id = t.conversation_id "
        "JOIN channel_identities i ON i.customer_id = c.customer_id "
        "WHERE i.channel = 'rest' AND i.external_id = :sender ORDER BY t.id",
        sender=sender,
    )
    return [reason for (reason,) in rows]


def test_a_stranger_cannot_start_over_on_the_same_order(stack: Stack) -> None:
    sender = new_sender()
    stack.say(sender, "where is my order 100234?")
    for email in ("sam.patel@example.net", "li.wei@example.org", "guess@example.com"):
        stack.say(sender, email)
    assert "anything else" in texts(stack.say(sender, "no thanks"))
    again = texts(stack.say(sender, "where is my order 100234?"))
    assert "can't share anything" in again
    assert "email" not in again.lower(), "no fresh tries on an order whose check already failed"


def test_never_mind_in_the_middle_of_a_check_forgets_the_order(stack: Stack) -> None:
    sender = new_sender()
    assert "email" in texts(stack.say(sender, "where is my order 100234?")).lower()
    assert "anything else" in texts(stack.say(sender, "no, never mind"))
    assert "order number" in texts(stack.say(sender, "where is my order?")).lower()


def test_small_talk_in_the_middle_of_a_check_returns_to_the_question(stack: Stack) -> None:
    sender = new_sender()
    assert "order number" in texts(stack.say(sender, "I want to check on my order")).lower()
    replies = texts(stack.say(sender, "wait, am I talking to a bot?"))
    assert "virtual assistant" in replies
    assert "order number" in replies.lower()
    assert "email" in texts(stack.say(sender, "100235")).lower()


def copy_processing_order(stack: Stack, source: str, number: str) -> None:
    """A second processing order of the same customer, so this test does not depend on
    whether another test already cancelled the seed's only one."""
    stack.say(new_sender(), f"where is my order {source}?")  # the shop seeds itself on first use
    engine = sa.create_engine(f"sqlite:///{stack.shop_db}")
    with engine.begin() as conn:
        columns = [c for (_, c, *_) in conn.execute(sa.text("PRAGMA table_info(shop_orders)")) if c != "id"]
        listed = ", ".join(columns)
        copied = ", ".join(
            {"number": ":number", "status": "'processing'", "cancelled_at": "NULL"}.get(c, c) for c in columns
        )
        conn.execute(
            sa.text(
                f"INSERT INTO shop_orders ({listed}) SELECT {copied} FROM shop_orders WHERE number = :source"
            ),
            {"number": number, "source": source},
        )
        conn.execute(
            sa.text(
                "INSERT INTO shop_order_items (order_id, name, category, price, quantity, personalised) "
                "SELECT (SELECT id FROM shop_orders WHERE number = :number), "
                "name, category, price, quantity, personalised FROM shop_order_items WHERE order_id = "
                "(SELECT id FROM shop_orders WHERE number = :source)"
            ),
            {"number": number, "source": source},
        )
    engine.dispose()


def test_a_yes_about_one_order_does_not_cancel_another(stack: Stack) -> None:
    copy_processing_order(stack, "100237", "100297")
    sender = new_sender()
    stack.say(sender, "please cancel order 100297")
    assert "Shall I cancel it?" in texts(stack.say(sender, "sam.patel@example.net"))
    switched = texts(stack.say(sender, "yes, cancel order 100238 instead"))
    assert "is cancelled" not in switched
    assert "100238" in switched and "delivered" in switched
    assert "being prepared" in texts(stack.say(sender, "where is order 100297?"))


def test_a_message_the_check_cannot_use_gets_its_question_again_and_the_chat_goes_on(stack: Stack) -> None:
    # Once, a question asked while the bot waited for an email sent Rasa round its fallback
    # until the circuit breaker tripped, and from then on Rasa answered that customer nothing.
    sender = new_sender()
    stack.say(sender, "where's order 100236? it's been a week")
    stack.say(sender, "whats the status of order #100234")
    confused = texts(stack.say(sender, "has my stuff been shipped yet or not"))
    assert "didn't quite understand" in confused
    assert "email address you used for order 100234" in confused
    answer = texts(stack.say(sender, "jane.doe@example.com"))
    assert "1Z999AA10123456784" in answer
    assert tickets_for(stack, sender) == []


def test_a_customer_the_shop_signed_in_needs_no_email_for_their_own_orders(stack: Stack) -> None:
    jane = stack.signed_in("jane.doe@example.com")
    sender = new_sender()
    answer = texts(stack.say(sender, "where is my order 100234?", jane))
    assert "trail running shoes" in answer and "email" not in answer.lower()
    # Someone else's order still takes its owner's email, even for a signed-in customer.
    asked = texts(stack.say(sender, "and order 100237?", jane))
    assert "email" in asked.lower() and "ceramic mug set" not in asked


def test_a_signature_the_shop_did_not_make_proves_nothing(stack: Stack) -> None:
    jane = stack.signed_in("jane.doe@example.com")
    for forged in (
        {**jane, "identifier_hash": "0" * 64},
        {
            "identifier": "jane.doe@example.com",
            "identifier_hash": stack.signed_in("li.wei@example.org")["identifier_hash"],
        },
        {"identity": "jane.doe@example.com"},  # the gateway's own key, set by a client
        {"identifier": "jane.doe@example.com"},
    ):
        asked = texts(stack.say(new_sender(), "where is my order 100234?", forged))
        assert "email" in asked.lower() and "trail running shoes" not in asked, forged


def test_a_signed_in_customer_on_the_web_widget_cancels_without_a_code(stack: Stack) -> None:
    copy_processing_order(stack, "100237", "100296")

    async def chat() -> tuple[str, str]:
        customer = WebCustomer(stack.gateway_url, custom_data=stack.signed_in("sam.patel@example.net"))
        await customer.connect()
        try:
            asked = texts_of(await customer.say("please cancel order 100296"))
            done = texts_of(await customer.say("yes"))
        finally:
            await customer.close()
        return asked, done

    mailed = stack.mailbox.count("sam.patel@example.net", "cancel order 100296")
    asked, done = asyncio.run(chat())
    assert "Shall I cancel it?" in asked and "email" not in asked.lower()
    assert "order 100296 is cancelled" in done
    assert stack.mailbox.count("sam.patel@example.net", "cancel order 100296") == mailed
