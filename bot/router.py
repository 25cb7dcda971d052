"""Routes each customer message: store it, ask Rasa, act on helpdesk payloads, store replies.

The sender's conversation is looked up first; the message is then written to the transcript
while Rasa works on it, and the reply goes out only after the message and the replies are
stored: nothing is acknowledged before it is stored. When Rasa cannot answer (or answers
nothing, as it does when the action server is down), the customer gets an apology and the
conversation gets a ticket, so no message is dropped. When the helpdesk database fails, the
customer's client gets a 503 saying so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.rasa_client import RasaClient, RasaUnavailable
from handoff import conversations, tickets
from handoff.db import Database
from handoff.models import utcnow
from handoff.service import Helpdesk, read_csat

logger = logging.getLogger(__name__)

HELPDESK_KEY = "helpdesk"
UNAVAILABLE = "assistant_unavailable"


class HelpdeskUnavailable(Exception):
    """The helpdesk database could not store a message or a reply."""


@dataclass(frozen=True)
class IncomingMessage:
    channel: str
    sender: str
    text: str  # a photo's caption; empty for a photo without one, or a sticker
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str = "text"  # text | photo | other (stickers, voice, files: answered politely)
    attachment: tuple[bytes, str] | None = None  # a photo's bytes and content type, kept for agents

    @property
    def transcript_text(self) -> str:
        return self.text or f"({'photo' if self.kind == 'photo' else 'sticker or file'})"


@dataclass(frozen=True)
class StoredMessage:
    conversation_id: str
    customer_id: int
    message_id: int


def split_helpdesk_events(replies: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Separates the actions' helpdesk payloads from what the customer should see."""
    visible, events = [], []
    for reply in replies:
        custom = reply.get("custom")
        if isinstance(custom, dict) and HELPDESK_KEY in custom:
            events.append(custom[HELPDESK_KEY])
        else:
            visible.append(reply)
    return visible, events


def reply_payload(reply: dict[str, Any]) -> dict[str, Any] | None:
    extra = {key: value for key, value in reply.items() if key not in ("recipient_id", "text")}
    return extra or None


def find_sender(connection: Connection, incoming: IncomingMessage) -> conversations.ConversationRef | None:
    return conversations.find_conversation(connection, incoming.channel, incoming.sender)


def resolve_sender(session: Session, incoming: IncomingMessage) -> conversations.ConversationRef:
    return conversations.resolve_conversation(session, incoming.channel, incoming.sender)


def store_incoming(
    connection: Connection, conversation: conversations.ConversationRef, incoming: IncomingMessage
) -> StoredMessage:
    payload = None if incoming.kind == "text" else {"kind": incoming.kind}
    message_id = conversations.record_message(
        connection, conversation.id, "customer", incoming.transcript_text, incoming.channel, payload
    )
    if incoming.attachment is not None:
        data, content_type = incoming.attachment
        attachment = conversations.record_attachment(connection, message_id, data, content_type)
        conversations.set_payload(connection, message_id, {**(payload or {}), "attachment": attachment})
    return StoredMessage(conversation.id, conversation.customer_id, message_id)


def store_replies(
    db: Session | Connection, stored: StoredMessage, incoming: IncomingMessage, replies: list[dict[str, Any]]
) -> None:
    for reply in replies:
        conversations.record_message(
            db,
            stored.conversation_id,
            "bot",
            reply.get("text"),
            incoming.channel,
            reply_payload(reply),
            delivered=True,
        )


def store_outcome(
    session: Session,
    stored: StoredMessage,
    incoming: IncomingMessage,
    replies: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> tuple[int, bool] | None:
    """Stores the replies and acts on the helpdesk events; returns the ticket a handoff
    opened (or found open) and whether it is new."""
    handed_over = None
    for event in events:
        if "handoff" in event:
            details = event["handoff"]
            ticket, created = conversations.open_ticket(
                session, stored.conversation_id, details.get("reason", "unknown"), details
            )
            handed_over = (ticket.id, created)
            if created:
                logger.info(
                    "Ticket %s opened for conversation %s (%s)",
                    ticket.id,
                    stored.conversation_id,
                    ticket.reason,
                )
        if "feedback" in event:
            details = event["feedback"]
            if isinstance(details.get("article"), str) and isinstance(details.get("helpful"), bool):
                conversations.record_feedback(
                    session, stored.conversation_id, stored.message_id, details["article"], details["helpful"]
                )
            else:
                logger.warning("Ignored malformed answer feedback in %s: %r", stored.conversation_id, details)
        if "unresolved" in event:
            details = event["unresolved"]
            conversations.record_unresolved(
                session,
                stored.conversation_id,
                stored.message_id,
                incoming.text,
                details.get("reason", "unknown"),
                details,
            )
    store_replies(session, stored, incoming, replies)
    return handed_over


def store_for_agents(
    session: Session, conversation: conversations.ConversationRef, incoming: IncomingMessage
) -> tuple[StoredMessage, int | None, int | None]:
    """Stores the message and reads, in the same transaction, the conversation's open ticket
    and its place in the queue (None, None once the ticket was resolved meanwhile)."""
    stored = store_incoming(session, conversation, incoming)
    ticket = tickets.open_ticket_of(session, conversation.id)
    if ticket is None:
        return stored, None, None
    return stored, ticket.id, tickets.position(session, ticket)


def store_exchange(
    connection: Connection,
    conversation: conversations.ConversationRef,
    incoming: IncomingMessage,
    replies: list[dict[str, Any]],
) -> StoredMessage:
    """A customer message and the gateway's own replies, in one transaction."""
    stored = store_incoming(connection, conversation, incoming)
    store_replies(connection, stored, incoming, replies)
    return stored


class Router:
    """Customer messages go to Rasa while the bot has the conversation; to the agent side
    (helpdesk) while it waits for a person or a person holds it."""

    def __init__(
        self, database: Database, rasa: RasaClient, texts: dict[str, str], helpdesk: Helpdesk
    ) -> None:
        self._database = database
        self._rasa = rasa
        self._texts = texts
        self._helpdesk = helpdesk

    async def handle(self, incoming: IncomingMessage) -> list[dict[str, Any]]:
        """Returns the replies for the customer, in Rasa's REST format.

        Raises HelpdeskUnavailable when the message or the replies could not be stored.
        """
        try:
            conversation = await self._database.execute(find_sender, incoming)
            if conversation is None:
                conversation = await self._database.run(resolve_sender, incoming)
            if conversation.csat_ticket_id is not None:
                score = read_csat(incoming.text)
                if score is not None:
                    return await self._csat(conversation, incoming, score)
                await self._database.execute(tickets.forget_csat, conversation.id)
            if conversation.mode == "bot" and not incoming.text:
                # A photo without words, a sticker: kept, and answered without Rasa.
                text = self._texts["photo_kept" if incoming.kind == "photo" else "media_unsupported"]
                replies = [{"text": text}]
                await self._database.execute(store_exchange, conversation, incoming, replies)
                return self._addressed(incoming, replies)
            if conversation.mode != "bot":
                stored, ticket_id, place = await self._database.run(store_for_agents, conversation, incoming)
                if ticket_id is not None:
                    return await self._to_agents(conversation, incoming, stored, ticket_id, place)
                # The ticket was resolved a moment ago: the bot has the conversation again.
                return await self._answer(conversation, incoming, asyncio.sleep(0, stored))
        except SQLAlchemyError as error:
            logger.error("Could not store a %s message from %s: %s", incoming.channel, incoming.sender, error)
            raise HelpdeskUnavailable("the message could not be stored") from error
        return await self._answer(
            conversation, incoming, self._database.execute(store_incoming, conversation, incoming)
        )

    async def _answer(
        self,
        conversation: conversations.ConversationRef,
        incoming: IncomingMessage,
        storing: Awaitable[StoredMessage],
    ) -> list[dict[str, Any]]:
        """Rasa answers; `storing` writes the message meanwhile (Rasa takes ten times longer,
        so the transcript costs the customer no time). The Rasa task is started first."""
        answer, stored = await asyncio.gather(
            self._ask_rasa(conversation.id, incoming.text, self._metadata(incoming, conversation)),
            storing,
            return_exceptions=True,
        )
        if isinstance(answer, BaseException):
            raise answer
        replies, events = answer
        if isinstance(stored, BaseException):
            if not isinstance(stored, SQLAlchemyError):
                raise stored
            logger.error(
                "Could not store a %s message from %s: %s", incoming.channel, incoming.sender, stored
            )
            raise HelpdeskUnavailable("the message could not be stored; please send it again") from stored
        try:
            handed_over = None
            if events:
                handed_over = await self._database.run(store_outcome, stored, incoming, replies, events)
            else:
                await self._database.execute(store_replies, stored, incoming, replies)
            if handed_over is not None:
                notices = await self._helpdesk.ticket_opened(stored.conversation_id, *handed_over)
                await self._database.execute(store_replies, stored, incoming, notices)
                replies = [*replies, *notices]
        except SQLAlchemyError as error:
            logger.error("Could not store the replies in conversation %s: %s", stored.conversation_id, error)
            raise HelpdeskUnavailable(
                "your message was stored but the reply could not be; please send it again"
            ) from error
        return self._addressed(incoming, replies)

    @staticmethod
    def _metadata(incoming: IncomingMessage, conversation: conversations.ConversationRef) -> dict[str, Any]:
        return {**incoming.metadata, "channel": incoming.channel, "customer_id": conversation.customer_id}

    @staticmethod
    def _addressed(incoming: IncomingMessage, replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**reply, "recipient_id": incoming.sender} for reply in replies]

    async def _to_agents(
        self,
        conversation: conversations.ConversationRef,
        incoming: IncomingMessage,
        stored: StoredMessage,
        ticket_id: int,
        place: int | None,
    ) -> list[dict[str, Any]]:
        """The bot is silent: the stored message is shown live to agents."""
        line = {
            "id": stored.message_id,
            "author": "customer",
            "agent": None,
            "channel": incoming.channel,
            "text": incoming.transcript_text,
            "payload": None if incoming.kind == "text" else {"kind": incoming.kind},
            "created_at": utcnow().isoformat(),
            "nlu": None,
        }
        replies = await self._helpdesk.customer_wrote(
            conversation.id, line, ticket_id, place, self._metadata(incoming, conversation)
        )
        if replies:
            await self._database.execute(store_replies, stored, incoming, replies)
        return self._addressed(incoming, replies)

    async def _csat(
        self, conversation: conversations.ConversationRef, incoming: IncomingMessage, score: int
    ) -> list[dict[str, Any]]:
        replies = [{"text": self._texts["csat_thanks"]}]
        await self._database.execute(store_exchange, conversation, incoming, replies)
        assert conversation.csat_ticket_id is not None
        await self._helpdesk.csat(conversation.id, conversation.csat_ticket_id, score)
        return self._addressed(incoming, replies)

    async def _ask_rasa(
        self, conversation_id: str, text: str, metadata: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Rasa's visible replies and helpdesk events; an apology and a ticket when Rasa fails."""
        try:
            answer = await self._rasa.send_message(conversation_id, text, metadata)
            replies, events = split_helpdesk_events(answer)
            if not replies and not events:
                # Rasa answers an empty list when an action fails (action server down).
                raise RasaUnavailable("Rasa sent no reply (is the action server down?)")
        except RasaUnavailable as error:
            logger.warning("Assistant unavailable for conversation %s: %s", conversation_id, error)
            replies = [{"text": self._texts[UNAVAILABLE]}]
            events = [{"handoff": {"reason": UNAVAILABLE, "error": str(error)}}]
        return replies, events


async def collect(
    database: Database, channel: str, sender: str, after: int | None = None
) -> list[dict[str, Any]]:
    """What an agent (or the helpdesk) sent `sender` since they last collected, in Rasa's
    REST format plus each line's `id`; an unknown sender has nothing waiting. See
    conversations.undelivered for `after`."""

    def work(session: Session) -> list[dict[str, Any]]:
        conversation = conversations.find_conversation(session, channel, sender, touch=False)
        if conversation is None:
            return []
        return [
            {"recipient_id": sender, "id": message.id, "text": message.text, **(message.payload or {})}
            for message in conversations.undelivered(session, conversation.id, after)
        ]

    return await database.run(work)
