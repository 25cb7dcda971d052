"""Routes each customer message: to Rasa while the bot has the conversation, to the agent
side while a person is waited for or holds it; replies go back in Rasa's REST format.

The sender's conversation is looked up first; the helpdesk then writes the message to its
transcript while Rasa works on it, and the reply goes out only after the message and the
replies are stored: nothing is acknowledged before it is stored. When Rasa cannot answer
(or answers nothing, as it does when the action server is down), the customer gets an
apology and the conversation gets a ticket, so no message is dropped. When the helpdesk
database fails, the customer's client gets a 503 saying so. Before any of it, the sender's
and the address's token buckets take the message's cost, and each conversation has one
message at Rasa at a time (bot/limits.py): a refused message raises TooManyMessages, which
each channel answers in its own way. What is stored, and what the
assistant's helpdesk events do, is the helpdesk's business (handoff/service.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.limits import Conversations, Limits, Refusals, TooManyMessages
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.shop_identity import with_identity
from handoff.conversations import ConversationRef
from handoff.service import Helpdesk
from handoff.transcript import StoredMessage
from helpdesk_payload import ASSISTANT_UNAVAILABLE, HANDOFF, helpdesk_event, split_helpdesk_events

logger = logging.getLogger(__name__)


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
    address: str | None = None  # the client's address, for its rate limit (None: not known)
    refused_before: int = 0  # the sender's messages refused since its last one (set by Router)


class Router:
    """Customer messages go to Rasa while the bot has the conversation; to the agent side
    (helpdesk) while it waits for a person or a person holds it."""

    def __init__(
        self,
        rasa: RasaClient,
        texts: dict[str, str],
        helpdesk: Helpdesk,
        limits: Limits,
        rasa_text_chars: int,
        identity_secret: str | None = None,
    ) -> None:
        self._rasa = rasa
        self._texts = texts
        self._helpdesk = helpdesk
        self._limits = limits
        self._turns = Conversations(limits.settings.waiting_per_conversation)
        self._refusals = Refusals()
        self._rasa_text_chars = rasa_text_chars
        self._identity_secret = identity_secret  # SHOP_IDENTITY_SECRET (bot/shop_identity.py)

    async def handle(self, incoming: IncomingMessage) -> list[dict[str, Any]]:
        """Returns the replies for the customer, in Rasa's REST format.

        Raises HelpdeskUnavailable when the message or the replies could not be stored, and
        TooManyMessages (nothing stored) when the sender or the address is over its limit.
        """
        sender = f"{incoming.channel}:{incoming.sender}"
        try:
            await self._limits.admit(sender, incoming.address, incoming.text)
            # The conversation is looked up in its turn: the message before may have handed it over.
            async with self._turns.turn(sender):
                refused = self._refusals.taken(sender)
                return await self._handle(dataclasses.replace(incoming, refused_before=refused))
        except TooManyMessages:
            self._refusals.refused(sender)
            raise

    async def _handle(self, incoming: IncomingMessage) -> list[dict[str, Any]]:
        helpdesk = self._helpdesk
        try:
            conversation = await helpdesk.conversation(incoming)
            if conversation.csat_ticket_id is not None:
                thanks = await helpdesk.rating(conversation, incoming)
                if thanks is not None:
                    return self._addressed(incoming, thanks)
            if conversation.mode == "bot" and not incoming.text:
                # A photo without words, a sticker: kept, and answered without Rasa.
                text = self._texts["photo_kept" if incoming.kind == "photo" else "media_unsupported"]
                replies = [{"text": text}]
                await helpdesk.record_exchange(conversation, incoming, replies)
                return self._addressed(incoming, replies)
            if conversation.mode != "bot":
                metadata = self._metadata(incoming, conversation)
                stored, notices = await helpdesk.customer_wrote(conversation, incoming, metadata)
                if notices is not None:  # the bot is silent: agents see the message live
                    return self._addressed(incoming, notices)
                # The ticket was resolved a moment ago: the bot has the conversation again.
                return await self._answer(conversation, incoming, asyncio.sleep(0, stored))
        except SQLAlchemyError as error:
            logger.error("Could not store a %s message from %s: %s", incoming.channel, incoming.sender, error)
            raise HelpdeskUnavailable("the message could not be stored") from error
        return await self._answer(conversation, incoming, helpdesk.record_incoming(conversation, incoming))

    async def _answer(
        self,
        conversation: ConversationRef,
        incoming: IncomingMessage,
        storing: Awaitable[StoredMessage],
    ) -> list[dict[str, Any]]:
        """Rasa answers; `storing` writes the message meanwhile (Rasa takes ten times longer,
        so the transcript costs the customer no time). The Rasa task is started first."""
        answer, stored = await asyncio.gather(
            # Rasa reads the start of a long message only: its work grows with the length.
            self._ask_rasa(
                conversation.id,
                incoming.text[: self._rasa_text_chars],
                self._metadata(incoming, conversation),
            ),
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
            notices = await self._helpdesk.record_answer(stored, incoming, replies, events)
        except SQLAlchemyError as error:
            logger.error("Could not store the replies in conversation %s: %s", stored.conversation_id, error)
            raise HelpdeskUnavailable(
                "your message was stored but the reply could not be; please send it again"
            ) from error
        return self._addressed(incoming, [*replies, *notices])

    def _metadata(self, incoming: IncomingMessage, conversation: ConversationRef) -> dict[str, Any]:
        # The address lets the action server count failed ownership checks per client too;
        # `identity` is the customer the shop signed in, if its signature holds;
        # `refused_before`: the customer sent faster than the limits allow just before this.
        return {
            **with_identity(self._identity_secret, incoming.metadata),
            "channel": incoming.channel,
            "customer_id": conversation.customer_id,
            "address": incoming.address,
            "refused_before": incoming.refused_before,
        }

    @staticmethod
    def _addressed(incoming: IncomingMessage, replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
            replies = [{"text": self._texts["assistant_unavailable"]}]
            events = [helpdesk_event(HANDOFF, reason=ASSISTANT_UNAVAILABLE, error=str(error))]
        return replies, events
