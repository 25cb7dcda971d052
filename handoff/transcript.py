"""The transcript: every customer message and every reply, and what the assistant's
helpdesk events ask for (helpdesk_payload.py), written as the gateway routes a message.

Plain functions over a Session or a Core Connection, each part of the caller's unit of work
(handoff.service.Helpdesk runs them for the gateway). What runs for every message takes a
Connection: the ORM's unit of work would double its cost. The gateway hands over its own
message type; `CustomerMessage` says what of it the transcript reads.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from handoff import conversations, tickets
from handoff.models import Conversation, Message, utcnow
from helpdesk_payload import ASSISTANT_UNAVAILABLE, FEEDBACK, HANDOFF, UNRESOLVED

logger = logging.getLogger(__name__)


class CustomerMessage(Protocol):
    """What the helpdesk reads of a customer's message (bot.router.IncomingMessage)."""

    @property
    def channel(self) -> str: ...

    @property
    def sender(self) -> str: ...  # who writes, as the channel knows them

    @property
    def text(self) -> str: ...  # a photo's caption; empty for a photo without one, or a sticker

    @property
    def kind(self) -> str: ...  # text | photo | other

    @property
    def attachment(self) -> tuple[bytes, str] | None: ...  # a photo's bytes and content type


@dataclass(frozen=True)
class StoredMessage:
    conversation_id: str
    customer_id: int
    message_id: int


def shown_text(message: CustomerMessage) -> str:
    """The line agents read: the words, or what was sent instead of words."""
    return message.text or f"({'photo' if message.kind == 'photo' else 'sticker or file'})"


def _kind(message: CustomerMessage) -> dict[str, Any] | None:
    return None if message.kind == "text" else {"kind": message.kind}


def store_incoming(
    db: Session | Connection, conversation: conversations.ConversationRef, message: CustomerMessage
) -> StoredMessage:
    payload = _kind(message)
    message_id = conversations.record_message(
        db, conversation.id, "customer", shown_text(message), message.channel, payload
    )
    if message.attachment is not None:
        data, content_type = message.attachment
        attachment = conversations.record_attachment(db, message_id, data, content_type)
        conversations.set_payload(db, message_id, {**(payload or {}), "attachment": attachment})
    return StoredMessage(conversation.id, conversation.customer_id, message_id)


def reply_payload(reply: dict[str, Any]) -> dict[str, Any] | None:
    """What a reply carries besides its text (buttons, an image), as the transcript keeps it."""
    extra = {key: value for key, value in reply.items() if key not in ("recipient_id", "text")}
    return extra or None


def store_replies(
    db: Session | Connection, stored: StoredMessage, message: CustomerMessage, replies: list[dict[str, Any]]
) -> None:
    """The replies that go back with the customer's own request, hence delivered."""
    for reply in replies:
        conversations.record_message(
            db,
            stored.conversation_id,
            "bot",
            reply.get("text"),
            message.channel,
            reply_payload(reply),
            delivered=True,
        )


def store_exchange(
    connection: Connection,
    conversation: conversations.ConversationRef,
    message: CustomerMessage,
    replies: list[dict[str, Any]],
) -> StoredMessage:
    """A customer message and the gateway's own replies, in one transaction."""
    stored = store_incoming(connection, conversation, message)
    store_replies(connection, stored, message, replies)
    return stored


def store_for_agents(
    session: Session, conversation: conversations.ConversationRef, message: CustomerMessage
) -> tuple[StoredMessage, dict[str, Any], int | None, int | None]:
    """Stores the message and reads, in the same transaction, the conversation's open ticket
    and its place in the queue (None, None once the ticket was resolved meanwhile); returns
    the line as the agent console shows it too."""
    stored = store_incoming(session, conversation, message)
    line = _console_line(stored, message)
    ticket = tickets.open_ticket_of(session, conversation.id)
    if ticket is None:
        return stored, line, None, None
    return stored, line, ticket.id, tickets.position(session, ticket)


def _console_line(stored: StoredMessage, message: CustomerMessage) -> dict[str, Any]:
    """The stored message as tickets.message_dict shows it, without reading it back: the
    payload is the one written with the line (an attachment's id follows in the console's
    next load of the transcript)."""
    row = Message(
        id=stored.message_id,
        author="customer",
        channel=message.channel,
        text=shown_text(message),
        payload=_kind(message),
        created_at=utcnow(),
    )
    return tickets.message_dict(row, {})


def store_outcome(
    session: Session,
    stored: StoredMessage,
    message: CustomerMessage,
    replies: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> tuple[int, bool] | None:
    """Acts on the assistant's helpdesk events and stores the replies; returns the ticket a
    handoff opened (or found open) and whether it is new."""
    handed_over = None
    for event in events:
        if HANDOFF in event:
            handed_over = _open_ticket(session, stored, event[HANDOFF])
        if FEEDBACK in event:
            _record_feedback(session, stored, event[FEEDBACK])
        if UNRESOLVED in event:
            details = event[UNRESOLVED]
            conversations.record_unresolved(
                session,
                stored.conversation_id,
                stored.message_id,
                message.text,
                details.get("reason", "unknown"),
                details,
            )
    store_replies(session, stored, message, replies)
    return handed_over


def _open_ticket(session: Session, stored: StoredMessage, details: dict[str, Any]) -> tuple[int, bool]:
    ticket, created = conversations.open_ticket(
        session, stored.conversation_id, details.get("reason", "unknown"), details
    )
    if created:
        logger.info(
            "Ticket %s opened for conversation %s (%s)", ticket.id, stored.conversation_id, ticket.reason
        )
    return ticket.id, created


def _record_feedback(session: Session, stored: StoredMessage, details: dict[str, Any]) -> None:
    if isinstance(details.get("article"), str) and isinstance(details.get("helpful"), bool):
        conversations.record_feedback(
            session, stored.conversation_id, stored.message_id, details["article"], details["helpful"]
        )
    else:
        logger.warning("Ignored malformed answer feedback in %s: %r", stored.conversation_id, details)


@dataclass(frozen=True)
class Unanswered:
    """A customer message nobody answered, now handed to people (`take_unanswered`)."""

    conversation_id: str
    channel: str
    ticket_id: int
    created: bool  # the ticket is new
    apology: dict[str, Any]  # the line stored for the customer, as tickets.message_dict gives it


def take_unanswered(
    session: Session, before: dt.datetime, since: dt.datetime, apology: str, limit: int = 100
) -> list[Unanswered]:
    """Conversations the bot holds whose newest line is a customer message sent between
    `since` and `before`: the gateway routing it stopped (it was killed, say) before a reply
    or the apology was stored, since every answer, even Rasa failing, stores one. Each gets
    the apology, undelivered (pushed to the customer or collected), and a ticket, as when
    Rasa fails. The conversation's row is locked and the newest line checked again, so of
    the gateways looking at once only one takes it."""
    newest = (
        sa.select(Message.conversation_id, sa.func.max(Message.id).label("last_id"))
        .where(Message.created_at >= since)
        .group_by(Message.conversation_id)
        .subquery()
    )
    found = session.execute(
        sa.select(Message.conversation_id, Message.id, Message.channel)
        .join(newest, newest.c.last_id == Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.author == "customer", Message.created_at < before, Conversation.mode == "bot")
        .limit(limit)
    ).all()
    taken = []
    for conversation_id, message_id, channel in found:
        locked = session.execute(
            sa.select(Conversation.mode)
            .where(Conversation.id == conversation_id)
            .with_for_update(skip_locked=True)
        ).first()
        last = session.scalar(
            sa.select(sa.func.max(Message.id)).where(Message.conversation_id == conversation_id)
        )
        if locked is None or locked.mode != "bot" or last != message_id:
            continue  # another gateway has it, or the customer was answered meanwhile
        details = {"reason": ASSISTANT_UNAVAILABLE, "error": "the gateway stopped before answering"}
        ticket, created = conversations.open_ticket(session, conversation_id, ASSISTANT_UNAVAILABLE, details)
        [line] = store_undelivered(session, conversation_id, channel, [{"text": apology}])
        logger.warning(
            "Message %s of conversation %s was never answered: apology stored, ticket %s",
            message_id,
            conversation_id,
            ticket.id,
        )
        taken.append(Unanswered(conversation_id, channel, ticket.id, created, line))
    return taken


def store_undelivered(
    session: Session, conversation_id: str, channel: str, replies: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Lines for a customer who is not waiting on a request of their own: pushed or collected."""
    lines = []
    for reply in replies:
        line = Message(
            conversation_id=conversation_id,
            author="bot",
            channel=channel,
            text=reply.get("text"),
            payload=reply_payload(reply),
            created_at=utcnow(),
        )
        session.add(line)
        session.flush()
        lines.append(tickets.message_dict(line, {}))
    return lines
