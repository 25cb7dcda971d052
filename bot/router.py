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
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.rasa_client import RasaClient, RasaUnavailable
from handoff import conversations
from handoff.db import Database

logger = logging.getLogger(__name__)

HELPDESK_KEY = "helpdesk"
UNAVAILABLE = "assistant_unavailable"


class HelpdeskUnavailable(Exception):
    """The helpdesk database could not store a message or a reply."""


@dataclass(frozen=True)
class IncomingMessage:
    channel: str
    sender: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


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
    message_id = conversations.record_message(
        connection, conversation.id, "customer", incoming.text, incoming.channel
    )
    return StoredMessage(conversation.id, conversation.customer_id, message_id)


def store_replies(
    db: Session | Connection, stored: StoredMessage, incoming: IncomingMessage, replies: list[dict[str, Any]]
) -> None:
    for reply in replies:
        conversations.record_message(
            db, stored.conversation_id, "bot", reply.get("text"), incoming.channel, reply_payload(reply)
        )


def store_outcome(
    session: Session,
    stored: StoredMessage,
    incoming: IncomingMessage,
    replies: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> None:
    for event in events:
        if "handoff" in event:
            details = event["handoff"]
            ticket, created = conversations.open_ticket(
                session, stored.conversation_id, details.get("reason", "unknown"), details
            )
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


class Router:
    def __init__(self, database: Database, rasa: RasaClient, texts: dict[str, str]) -> None:
        self._database = database
        self._rasa = rasa
        self._texts = texts

    async def handle(self, incoming: IncomingMessage) -> list[dict[str, Any]]:
        """Returns the replies for the customer, in Rasa's REST format.

        Raises HelpdeskUnavailable when the message or the replies could not be stored.
        """
        try:
            conversation = await self._database.execute(find_sender, incoming)
            if conversation is None:
                conversation = await self._database.run(resolve_sender, incoming)
        except SQLAlchemyError as error:
            logger.error("Could not store a %s message from %s: %s", incoming.channel, incoming.sender, error)
            raise HelpdeskUnavailable("the message could not be stored") from error
        # Writing the message overlaps Rasa's work on it (Rasa takes ten times longer), which
        # keeps the transcript off the customer's wait. The Rasa task is started first.
        metadata = {**incoming.metadata, "channel": incoming.channel, "customer_id": conversation.customer_id}
        answer, stored = await asyncio.gather(
            self._ask_rasa(conversation.id, incoming.text, metadata),
            self._database.execute(store_incoming, conversation, incoming),
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
            if events:
                await self._database.run(store_outcome, stored, incoming, replies, events)
            else:
                await self._database.execute(store_replies, stored, incoming, replies)
        except SQLAlchemyError as error:
            logger.error("Could not store the replies in conversation %s: %s", stored.conversation_id, error)
            raise HelpdeskUnavailable(
                "your message was stored but the reply could not be; please send it again"
            ) from error
        return [{**reply, "recipient_id": incoming.sender} for reply in replies]

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
