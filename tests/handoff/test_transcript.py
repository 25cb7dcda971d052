"""The helpdesk's side of the seam with the gateway: the transcript and the assistant's events."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa

from bot.app import load_texts
from bot.router import IncomingMessage
from bot.settings import Settings
from handoff import conversations, db, hub, tickets
from handoff.auth import create_agent
from handoff.conversations import ConversationRef
from handoff.hub import LocalHub
from handoff.models import AnswerFeedback, Ticket, UnresolvedMessage
from handoff.service import Helpdesk, HelpdeskConfig
from helpdesk_payload import FEEDBACK, HANDOFF, UNRESOLVED, helpdesk_event


class Assistant:
    """Rasa's tracker, as far as the helpdesk writes to it here."""

    def __init__(self) -> None:
        self.logged: list[tuple[str, str]] = []

    async def log_user_message(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> None:
        self.logged.append((conversation_id, text))

    async def append_events(self, conversation_id: str, events: list[dict[str, Any]]) -> None:
        pass

    async def tracker_events(self, conversation_id: str) -> list[dict[str, Any]] | None:
        return None

    async def tracker_slots(self, conversation_id: str) -> dict[str, Any] | None:
        return None


def helpdesk_on(database: db.Database, assistant: Assistant | None = None) -> Helpdesk:
    texts = load_texts(Settings().texts_file)
    return Helpdesk(database, LocalHub(), assistant or Assistant(), texts, HelpdeskConfig.load())


def transcript(database: db.Database, conversation_id: str) -> list[tuple[str, str]]:
    with database.sessions() as session:
        return [(line["author"], line["text"]) for line in tickets.transcript(session, conversation_id)]


async def next_event(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(events.__anext__(), 5)


async def test_answer_feedback_is_stored_and_malformed_feedback_is_not(database: db.Database) -> None:
    helpdesk = helpdesk_on(database)
    incoming = IncomingMessage(channel="rest", sender="fay", text="yes")
    conversation = await helpdesk.conversation(incoming)
    stored = await helpdesk.record_incoming(conversation, incoming)
    events = [
        helpdesk_event(FEEDBACK, article="return-window", helpful=True),
        helpdesk_event(FEEDBACK, article=None, helpful="very"),
    ]
    assert await helpdesk.record_answer(stored, incoming, [{"text": "Glad it helped!"}], events) == []
    with database.sessions() as session:
        rows = session.execute(
            sa.select(AnswerFeedback.article_id, AnswerFeedback.helpful, AnswerFeedback.message_id)
        ).all()
    assert [tuple(row) for row in rows] == [("return-window", True, stored.message_id)]
    assert transcript(database, conversation.id) == [("customer", "yes"), ("bot", "Glad it helped!")]


async def test_a_handoff_opens_a_ticket_and_the_customer_hears_the_wait(database: db.Database) -> None:
    helpdesk = helpdesk_on(database)
    incoming = IncomingMessage(channel="rest", sender="hal", text="a person please")
    conversation = await helpdesk.conversation(incoming)
    stored = await helpdesk.record_incoming(conversation, incoming)
    events = [
        helpdesk_event(HANDOFF, reason="customer_request", priority="P2"),
        helpdesk_event(UNRESOLVED, reason="nlu_fallback"),
    ]
    async with helpdesk.hub.subscribe(hub.AGENTS) as agents:
        [notice] = await helpdesk.record_answer(stored, incoming, [{"text": "Connecting you."}], events)
        announced = await next_event(agents)
    with database.sessions() as session:
        ticket = tickets.open_ticket_of(session, conversation.id)
        unresolved = session.scalars(sa.select(UnresolvedMessage)).one()
    assert ticket is not None and (ticket.reason, ticket.priority) == ("customer_request", "P2")
    assert announced["type"] == "ticket" and announced["ticket"]["id"] == ticket.id
    assert (unresolved.text, unresolved.reason, unresolved.message_id) == (
        "a person please",
        "nlu_fallback",
        stored.message_id,
    )
    assert transcript(database, conversation.id) == [
        ("customer", "a person please"),
        ("bot", "Connecting you."),
        ("bot", notice["text"]),
    ]


async def test_while_a_person_is_waited_for_agents_see_each_message_live(database: db.Database) -> None:
    assistant = Assistant()
    helpdesk = helpdesk_on(database, assistant)
    first = IncomingMessage(channel="rest", sender="ida", text="a person please")
    stored = await helpdesk.record_incoming(await helpdesk.conversation(first), first)
    await helpdesk.record_answer(stored, first, [], [helpdesk_event(HANDOFF, reason="customer_request")])
    again = IncomingMessage(channel="rest", sender="ida", text="hello?")
    conversation = await helpdesk.conversation(again)
    assert conversation.mode == "queued"
    async with helpdesk.hub.subscribe(hub.AGENTS) as agents:
        stored, replies = await helpdesk.customer_wrote(conversation, again, {})
        shown = await next_event(agents)
    assert replies == [{"text": helpdesk.texts["still_queued"].format(position=1)}]
    line = shown["message"]
    assert (line["id"], line["author"], line["text"], line["payload"]) == (
        stored.message_id,
        "customer",
        "hello?",
        None,
    )
    with database.sessions() as session:
        assert line.keys() == tickets.transcript(session, conversation.id)[-2].keys()
    await asyncio.sleep(0.1)  # the tracker's copy is written in the background
    assert assistant.logged == [(conversation.id, "hello?")]


async def closed_ticket(helpdesk: Helpdesk, sender: str) -> ConversationRef:
    """A conversation whose ticket an agent closed: the rating question is waiting."""
    incoming = IncomingMessage(channel="rest", sender=sender, text="a person please")
    stored = await helpdesk.record_incoming(await helpdesk.conversation(incoming), incoming)
    await helpdesk.record_answer(stored, incoming, [], [helpdesk_event(HANDOFF, reason="customer_request")])
    with helpdesk.database.sessions.begin() as session:
        agent = create_agent(session, f"agent-{sender}@example.com", "a long enough password", "agent")
        ticket = tickets.open_ticket_of(session, stored.conversation_id)
        assert ticket is not None
    await helpdesk.close(ticket.id, agent)
    return await helpdesk.conversation(incoming)


async def test_a_rating_is_recorded_and_thanked_for(database: db.Database) -> None:
    helpdesk = helpdesk_on(database)
    conversation = await closed_ticket(helpdesk, "jo")
    assert conversation.csat_ticket_id is not None
    rating = IncomingMessage(channel="rest", sender="jo", text="5")
    assert await helpdesk.rating(conversation, rating) == [{"text": helpdesk.texts["csat_thanks"]}]
    with database.sessions() as session:
        ticket = session.get(Ticket, conversation.csat_ticket_id)
        assert ticket is not None and ticket.csat == 5
    assert (await helpdesk.conversation(rating)).csat_ticket_id is None
    assert transcript(database, conversation.id)[-2:] == [
        ("customer", "5"),
        ("bot", "Thank you for your rating!"),
    ]


async def test_anything_but_a_rating_is_routed_and_not_asked_again(database: db.Database) -> None:
    helpdesk = helpdesk_on(database)
    conversation = await closed_ticket(helpdesk, "kim")
    other = IncomingMessage(channel="rest", sender="kim", text="where is my order?")
    assert await helpdesk.rating(conversation, other) is None
    assert (await helpdesk.conversation(other)).csat_ticket_id is None
    assert transcript(database, conversation.id)[-1][0] == "bot"  # the question; nothing stored yet


async def test_a_message_no_gateway_answered_gets_the_apology_and_a_ticket_once(
    database: db.Database,
) -> None:
    helpdesk = helpdesk_on(database)
    # A gateway stored this message, then died before any reply was stored.
    lost = IncomingMessage(channel="socketio", sender="gil", text="where is my parcel?")
    conversation = await helpdesk.conversation(lost)
    await helpdesk.record_incoming(conversation, lost)
    answered = IncomingMessage(channel="socketio", sender="hal", text="hello")
    other = await helpdesk.conversation(answered)
    await helpdesk.record_answer(
        await helpdesk.record_incoming(other, answered), answered, [{"text": "Hi!"}], []
    )
    apology = helpdesk.texts["assistant_unavailable"]

    async with helpdesk.hub.subscribe(hub.CUSTOMERS) as events:
        assert await helpdesk.answer_unanswered(dt.timedelta(minutes=1)) == 0  # Rasa may still be at it
        assert await helpdesk.answer_unanswered(dt.timedelta(0)) == 1
        pushed = [await next_event(events) for _ in range(3)]  # the status, the apology, the queue place
    lines = [event["message"]["text"] for event in pushed if "message" in event]
    assert lines[0] == apology and "queue" in lines[1]
    assert all(event["conversation_id"] == conversation.id for event in pushed)
    assert await helpdesk.answer_unanswered(dt.timedelta(0)) == 0  # once, whoever looks again

    assert transcript(database, conversation.id)[-2][1] == apology
    with database.sessions() as session:
        opened = session.scalars(sa.select(Ticket)).all()
        assert [(t.conversation_id, t.reason) for t in opened] == [(conversation.id, "assistant_unavailable")]
        # Not yet delivered: a customer who is away gets the lines when they reconnect.
        waiting = conversations.undelivered(session, conversation.id)
        assert [line.text for line in waiting][0] == apology
