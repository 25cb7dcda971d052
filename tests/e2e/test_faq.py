"""Policy questions answered from knowledge_base/, through the gateway, as a customer asks them."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.support.stack import Stack, texts

pytestmark = pytest.mark.e2e


def new_sender() -> str:
    return f"asker-{uuid.uuid4().hex[:8]}"


def rows_for(stack: Stack, sender: str, sql: str) -> list[tuple]:
    return stack.query(
        sql + " JOIN channel_identities i ON i.customer_id = c.customer_id "
        "WHERE i.channel = 'rest' AND i.external_id = :sender",
        sender=sender,
    )


def feedback_for(stack: Stack, sender: str) -> list[tuple]:
    return rows_for(
        stack,
        sender,
        "SELECT f.article_id, f.helpful FROM answer_feedback f "
        "JOIN conversations c ON c.id = f.conversation_id",
    )


def test_a_policy_question_gets_the_rule_and_a_helpful_answer_is_recorded(stack: Stack) -> None:
    sender = new_sender()
    replies = stack.say(sender, "until when can I bring shoes back?")
    answer = texts(replies)
    assert "30 days" in answer and "from delivery" in answer
    assert replies[-1]["text"] == "Did that answer your question?"
    assert [b["payload"] for b in replies[-1]["buttons"]] == ["/affirm", "/deny"]

    assert "Glad it helped" in texts(stack.say(sender, "/affirm"))
    assert feedback_for(stack, sender) == [("return-window", 1)]


def test_an_answer_that_did_not_help_is_recorded_and_a_person_is_offered(stack: Stack) -> None:
    sender = new_sender()
    assert "1-year" in texts(stack.say(sender, "how long is the warranty on headphones?"))
    reply = texts(stack.say(sender, "no, not really"))
    assert "Sorry it didn't help" in reply and "connect you with a person" in reply
    assert feedback_for(stack, sender) == [("warranty", 0)]
    assert "passing this conversation" in texts(stack.say(sender, "yes please"))


def test_a_question_no_policy_answers_gets_an_honest_not_sure_and_is_logged(stack: Stack) -> None:
    sender = new_sender()
    reply = texts(stack.say(sender, "do you have a mobile app?"))
    assert "not sure" in reply or "didn't quite understand" in reply
    assert "connect you with a person" in reply
    logged = rows_for(
        stack,
        sender,
        "SELECT u.text, u.reason, u.details FROM unresolved_messages u "
        "JOIN conversations c ON c.id = u.conversation_id",
    )
    assert len(logged) == 1
    text, reason, details = logged[0]
    assert text == "do you have a mobile app?"
    assert reason in ("kb_miss", "out_of_scope", "nlu_fallback")
    kb = json.loads(details)["kb"]
    assert kb["verdict"] == "decline" and len(kb["articles"]) == 3
    assert feedback_for(stack, sender) == []


def test_a_choice_button_answers_with_the_article_it_names(stack: Stack) -> None:
    sender = new_sender()
    reply = texts(stack.say(sender, '/ask_faq{"article": "gift-cards"}'))
    assert "never expire" in reply


def test_an_edited_article_changes_the_answer_without_retraining(stack: Stack) -> None:
    article = stack.knowledge_base / "articles" / "payment-methods.md"
    original = article.read_text(encoding="utf-8")
    assert "PayPal" in original
    try:
        article.write_text(original.replace("PayPal", "PayPal, Bitcoin"), encoding="utf-8")
        deadline = time.monotonic() + 90
        answer = ""
        while "Bitcoin" not in answer and time.monotonic() < deadline:
            time.sleep(2)
            answer = texts(stack.say(new_sender(), "which payment methods do you take?"))
        assert "Bitcoin" in answer

        broken = original.replace("title:", "titel:")
        article.write_text(broken, encoding="utf-8")
        time.sleep(5)  # two checks of the folder: the edit is refused
        assert "Bitcoin" in texts(stack.say(new_sender(), "which payment methods do you take?"))
    finally:
        article.write_text(original, encoding="utf-8")
