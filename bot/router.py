"""Routes each customer message: store it, ask Rasa, act on helpdesk payloads, store replies.

Nothing is acknowledged before it is stored. When Rasa cannot answer, the customer gets an
apology and the conversation gets a ticket, so no message is dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.rasa_client import RasaClient, RasaUnavailable
from handoff import conversations
from handoff.models import Conversation, Message

logger = logging.getLogger(__name__)

HELPDESK_KEY = "helpdesk"


@dataclass(frozen=True)
class IncomingMessage:
    channel: str
    sender: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


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


class Router:
    def __init__(self, sessions: sessionmaker, rasa: RasaClient, texts: dict[str, str]) -> None:
        self._sessions = sessions
        self._rasa = rasa
        self._texts = texts

    async def handle(self, incoming: IncomingMessage) -> list[dict[str, Any]]:
        """Returns the replies for the customer, in Rasa's REST format."""
        async with self._sessions.begin() as session:
            conversation = await conversations.resolve_conversation(
                session, incoming.channel, incoming.sender
            )
            message = await conversations.record_message(
                session, conversation, "customer", incoming.text, incoming.channel
            )
        metadata = {
            **incoming.metadata,
            "channel": incoming.channel,
            "customer_id": conversation.customer_id,
        }
        try:
            replies = await self._rasa.send_message(conversation.id, incoming.text, metadata)
        except RasaUnavailable as error:
            logger.warning("Rasa unavailable for conversation %s: %s", conversation.id, error)
            replies = [{"text": self._texts["assistant_unavailable"]}]
            events = [{"handoff": {"reason": "assistant_unavailable", "error": str(error)}}]
        else:
            replies, events = split_helpdesk_events(replies)

        async with self._sessions.begin() as session:
            session.add(conversation)
            for event in events:
                await self._apply(session, conversation, message, incoming.text, event)
            for reply in replies:
                await conversations.record_message(
                    session, conversation, "bot", reply.get("text"), incoming.channel, reply_payload(reply)
                )
        return [{**reply, "recipient_id": incoming.sender} for reply in replies]

    async def _apply(
        self,
        session: AsyncSession,
        conversation: Conversation,
        message: Message,
        text: str,
        event: dict[str, Any],
    ) -> None:
        if "handoff" in event:
            details = event["handoff"]
            ticket = await conversations.open_ticket(
                session, conversation, details.get("reason", "unknown"), details
            )
            logger.info(
                "Ticket %s opened for conversation %s (%s)", ticket.id, conversation.id, ticket.reason
            )
        if "unresolved" in event:
            details = event["unresolved"]
            await conversations.record_unresolved(
                session, conversation, message, text, details.get("reason", "unknown"), details
            )
