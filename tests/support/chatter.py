"""Customers chatting through scale mode while something fails, and what reached them: the
fault tests (tests/faults/) assert on it, make bench-scale counts it.

Each customer connects from an address of its own (127.0.0.x), so nginx spreads them over
the gateways, asks the knowledge base one question after another, and records what it sent,
every line it received, and what went wrong: a turn that never ended, a connection that
dropped (it reconnects with its session, as the widget does), the helpdesk refusing a
message (it sends it again, as a person would).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.support.stack import ROOT
from tests.support.web_customer import NotConnected, WebCustomer, loopback_addresses

# The gateway's apology when Rasa cannot answer (the conversation then waits for a person).
APOLOGY = yaml.safe_load((ROOT / "bot" / "texts.yml").read_text(encoding="utf-8"))["assistant_unavailable"]
# Questions the bot answers from the knowledge base without a form: any order of them works.
QUESTIONS = (
    "until when can I bring shoes back?",
    "how long is the warranty on headphones?",
    "which payment methods do you take?",
    "hello",
    "do you have a mobile app?",
)


@dataclass
class Chat:
    """One customer's side: what they sent, and every line they received, in order."""

    source: str
    session: str | None = None
    sent: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # turns that never ended
    interrupted: list[str] = field(default_factory=list)  # sent when the connection dropped
    refused: list[str] = field(default_factory=list)  # "the helpdesk is unavailable": sent again
    reconnects: int = 0
    answered_after_reconnect: int = 0
    answered_after_fault: int = 0  # turns that ended with no error once the fault was over
    turns: list[tuple[float, list[str]]] = field(default_factory=list)  # (sent at, the replies' texts)

    @property
    def conversation_session(self) -> str:
        assert self.session is not None
        return self.session.split(".", 1)[0]


async def chat_until(url: str, chat: Chat, until: float, fault_over: asyncio.Event, pause: float) -> None:
    customer = WebCustomer(url, source=chat.source)
    chat.session = await customer.connect()
    turn = 0
    try:
        while time.monotonic() < until:
            text = QUESTIONS[turn % len(QUESTIONS)]
            turn += 1
            chat.sent.append(text)
            sent_at = time.monotonic()
            try:
                replies = await customer.say(text)
            except ConnectionError as error:
                if isinstance(error, NotConnected):  # dropped while reading: nothing was sent
                    chat.sent.pop()
                    turn -= 1
                else:
                    chat.interrupted.append(text)
                await customer.close()
                await asyncio.sleep(0.5)  # as socket.io-client waits before reconnecting
                customer = WebCustomer(url, session_id=chat.session, source=chat.source)
                for _ in range(20):
                    with contextlib.suppress(Exception):
                        await customer.connect()
                        break
                    await asyncio.sleep(0.5)
                chat.reconnects += 1
                # Lines stored while the customer was away arrive on connecting.
                await asyncio.sleep(0.5)
                chat.received.extend(
                    data.get("text") or "" for name, data in customer.received if name == "bot_uttered"
                )
                customer.received = [(n, d) for n, d in customer.received if n != "bot_uttered"]
                continue
            except asyncio.TimeoutError:
                chat.unanswered.append(text)
                continue
            chat.received.extend(reply.get("text") or "" for reply in replies)
            chat.turns.append((sent_at, [reply.get("text") or "" for reply in replies]))
            errors = [data for name, data in customer.received if name == "error"]
            customer.received = [(n, d) for n, d in customer.received if n != "error"]
            if errors:
                # The widget shows the error; the customer sends the message again.
                assert "helpdesk is unavailable" in str(errors), errors
                chat.refused.append(text)
                turn -= 1
            elif fault_over.is_set():
                chat.answered_after_fault += 1
            if chat.reconnects and replies:
                chat.answered_after_reconnect += 1
            await asyncio.sleep(pause)
    finally:
        await customer.close()


def chat_while(
    url: str, customers: int, seconds: float, fault: Callable[[], object], pause: float = 1.0
) -> list[Chat]:
    """`customers` chats for `seconds`, `pause` between a reply and the next message;
    `fault` runs in a thread a third of the way in."""
    chats = [Chat(source=address) for address in loopback_addresses(customers)]

    async def run() -> None:
        until = time.monotonic() + seconds
        fault_over = asyncio.Event()
        talking = [asyncio.create_task(chat_until(url, chat, until, fault_over, pause)) for chat in chats]
        await asyncio.sleep(seconds / 3)
        await asyncio.to_thread(fault)
        fault_over.set()
        await asyncio.gather(*talking)

    asyncio.run(run())
    return chats


def conversation_id(query: Callable[..., list[tuple[Any, ...]]], chat: Chat) -> str:
    rows = query(
        "SELECT c.id FROM conversations c JOIN channel_identities i ON i.customer_id = c.customer_id "
        "WHERE i.channel = 'socketio' AND i.external_id = :session",
        session=chat.conversation_session,
    )
    return str(rows[0][0])


def transcript(query: Callable[..., list[tuple[Any, ...]]], chat: Chat) -> tuple[list[str], list[str]]:
    """The customer's messages, and the lines for the customer, as the helpdesk stored them."""
    rows = query(
        "SELECT m.author, m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "JOIN channel_identities i ON i.customer_id = c.customer_id "
        "WHERE i.channel = 'socketio' AND i.external_id = :session ORDER BY m.id",
        session=chat.conversation_session,
    )
    customer = [text for author, text in rows if author == "customer"]
    return customer, [text for author, text in rows if author != "customer"]


def losses(query: Callable[..., list[tuple[Any, ...]]], chats: list[Chat]) -> dict[str, int]:
    """What went missing: messages sent but not stored (refused ones the customer was told
    about and sent again aside), lines received more often than stored, turns that never
    ended."""
    lost = twice = 0
    for chat in chats:
        stored, lines = transcript(query, chat)
        sent = [text for text in chat.sent]
        for text in chat.refused:
            sent.remove(text)
        for text in stored:
            if text in sent:
                sent.remove(text)
        lost += len(sent)
        twice += sum(max(0, chat.received.count(text) - lines.count(text)) for text in set(chat.received))
    return {"lost": lost, "twice": twice, "unanswered": sum(len(chat.unanswered) for chat in chats)}
