"""The web channel (Socket.IO, Rasa's protocol) and Telegram (a real python-telegram-bot in the
gateway, polling a local stand-in of the Bot API) through the running stack, and one customer
carried across both by a link code."""

from __future__ import annotations

import random
import re
import uuid

import pytest

from tests.support.agents import PASSWORD, Agent
from tests.support.stack import Stack
from tests.support.telegram_api import FakeBotApi
from tests.support.web_customer import WebCustomer, texts_of

pytestmark = pytest.mark.e2e


def new_chat() -> int:
    return random.randint(10_000_000, 99_999_999)


def telegram_says(bot_api: FakeBotApi, chat: int, text: str) -> str:
    """The customer writes on Telegram; returns what the bot sent back (all of it)."""
    since = len(bot_api.sent)
    bot_api.send_text_sync(chat, text)
    bot_api.wait_sent_sync(method="sendMessage", chat_id=chat, since=since)
    return "\n".join(call.get("text") or "" for call in bot_api.sent[since:] if call.get("chat_id") == chat)


async def test_the_web_channel_speaks_rasa_socketio_and_keeps_its_session(stack: Stack) -> None:
    web = WebCustomer(stack.gateway_url)
    session = await web.connect()
    assert "email" in texts_of(await web.say("where is my order 100234?"))
    await web.close()
    # A page reload: the widget connects again with the session id it stored.
    again = WebCustomer(stack.gateway_url, session)
    assert await again.connect() == session
    answer = texts_of(await again.say("jane.doe@example.com"))
    assert "100234" in answer and "UPS" in answer
    replies = await again.say("how long do I have to return a sweater?")
    [question] = [reply for reply in replies if "quick_replies" in reply]
    assert [button["title"] for button in question["quick_replies"]] == ["Yes, thanks", "Not really"]
    assert set(question) == {"text", "quick_replies"}  # exactly Rasa's shape, for rasa-webchat
    await again.close()


async def test_a_return_started_on_the_web_is_finished_on_telegram(
    stack: Stack, telegram_api: FakeBotApi
) -> None:
    web = WebCustomer(stack.gateway_url)
    await web.connect()
    await web.say("I want to return the wool socks from order 100235")
    asked = await web.say("jane.doe@example.com")
    assert "quick_replies" in asked[-1]  # why? with buttons
    link = await web.request_link()
    assert link["telegram_url"] == f"https://t.me/harborlane_test_bot?start={link['code']}"

    chat = new_chat()
    assert "one conversation" in telegram_says(telegram_api, chat, f"/start {link['code']}")
    # The form goes on where the web left it, on Telegram, with its buttons as an inline keyboard.
    since = len(telegram_api.sent)
    telegram_api.send_text_sync(chat, "they don't fit")
    question = telegram_api.wait_sent_sync(method="sendMessage", chat_id=chat, since=since)
    while not question.get("reply_markup"):
        question = telegram_api.wait_sent_sync(
            method="sendMessage", chat_id=chat, since=telegram_api.sent.index(question) + 1
        )
    buttons = [row[0] for row in question["reply_markup"]["inline_keyboard"]]
    refund = next(button for button in buttons if "refund" in button["text"].lower())
    since = len(telegram_api.sent)
    telegram_api.press_button_sync(chat, question["result"]["message_id"], refund["callback_data"])
    method_question = telegram_api.wait_sent_sync(
        lambda call: call["method"] == "sendMessage" and call.get("reply_markup"), chat_id=chat, since=since
    )
    pickup = next(
        row[0]
        for row in method_question["reply_markup"]["inline_keyboard"]
        if "pick" in row[0]["text"].lower()
    )
    since = len(telegram_api.sent)
    telegram_api.press_button_sync(chat, method_question["result"]["message_id"], pickup["callback_data"])
    telegram_api.wait_sent_sync(
        lambda call: "RMA-" in (call.get("text") or ""), method="sendMessage", chat_id=chat, since=since
    )
    confirmation = "\n".join(
        call.get("text") or "" for call in telegram_api.sent[since:] if call.get("chat_id") == chat
    )
    [rma] = re.findall(r"RMA-\d+", confirmation)

    rows = stack.query("SELECT COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                       "WHERE m.text LIKE :rma", rma=f"%{rma}%")  # fmt: skip
    assert rows == [(1,)]
    channels = stack.query(
        "SELECT DISTINCT m.channel FROM messages m WHERE m.conversation_id = "
        "(SELECT conversation_id FROM messages WHERE text LIKE :rma)",
        rma=f"%{rma}%",
    )
    assert {channel for (channel,) in channels} == {"socketio", "telegram"}  # one transcript
    await web.close()


async def test_an_agent_answers_on_the_web_a_handoff_started_on_telegram(
    stack: Stack, telegram_api: FakeBotApi
) -> None:
    chat = new_chat()
    assert "support team" in telegram_says(telegram_api, chat, "I want to talk to a person")
    since = len(telegram_api.sent)
    telegram_api.send_text_sync(chat, "/link")
    shown = telegram_api.wait_sent_sync(lambda call: "this code" in (call.get("text") or ""), since=since)
    [code] = re.findall(r"\b[2-9A-Z]{8}\b", shown["text"])
    web = WebCustomer(stack.gateway_url)
    await web.connect()
    assert await web.claim(code) == {"ok": True}
    opening = f"I'm on your website now ({uuid.uuid4().hex[:6]})"
    assert "in the queue" in texts_of(await web.say(opening))

    email = f"agent-{uuid.uuid4().hex[:6]}@shop.test"
    stack.create_agent(email, PASSWORD, "agent", "Alex")
    alex = Agent(stack, email)
    ticket = alex.ticket_of(opening)
    assert ticket["channel"] == "socketio"  # where the customer wrote last
    assert alex.call("POST", f"/tickets/{ticket['id']}/claim").status_code == 200
    assert (
        alex.call("POST", f"/tickets/{ticket['id']}/messages", {"text": "Hi, Alex here."}).status_code == 201
    )
    # Pushed to the web socket, not to Telegram.
    await web.wait_for("bot_uttered", lambda data: data.get("text") == "Hi, Alex here.", timeout=10)
    assert (await web.wait_for("helpdesk_status", lambda data: data["mode"] == "agent"))["agent"] == "Alex"
    assert "Hi, Alex here." not in telegram_api.messages_to(chat)
    await web.close()
