"""Conversations and their transcripts: who is writing, and what was said.

Plain functions over a Session: each call is part of the caller's unit of work.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from handoff import tickets
from handoff.models import (
    AnswerFeedback,
    Attachment,
    ChannelIdentity,
    Conversation,
    Customer,
    Message,
    Ticket,
    UnresolvedMessage,
    utcnow,
)

# Built once: constructing a statement costs more than SQLite takes to run it, and these
# two run for every message.
_LATEST_CONVERSATION = (
    sa.select(
        Conversation.id,
        Conversation.customer_id,
        Conversation.last_channel,
        Conversation.mode,
        Conversation.csat_ticket_id,
    )
    .join(ChannelIdentity, ChannelIdentity.customer_id == Conversation.customer_id)
    .where(ChannelIdentity.channel == sa.bindparam("channel"))
    .where(ChannelIdentity.external_id == sa.bindparam("external_id"))
    .order_by(Conversation.created_at.desc(), Conversation.id)
    .limit(1)
)
_INSERT_MESSAGE = sa.insert(Message)


class ConversationRef(NamedTuple):
    id: str
    customer_id: int
    mode: str = "bot"  # bot | queued (waiting for an agent) | agent (an agent holds it)
    csat_ticket_id: int | None = None  # a closed ticket whose CSAT question is unanswered


def find_conversation(
    db: Session | Connection, channel: str, external_id: str, touch: bool = True
) -> ConversationRef | None:
    """The latest conversation of whoever writes as `external_id` on `channel`, if known.

    One query, since every message comes through here; works on a Session or a Core
    Connection (the gateway uses the cheaper Connection).
    """
    row = db.execute(_LATEST_CONVERSATION, {"channel": channel, "external_id": external_id}).first()
    if row is None:
        return None
    if touch and row.last_channel != channel:  # a message, not a look-up: replies go there now
        db.execute(sa.update(Conversation).where(Conversation.id == row.id).values(last_channel=channel))
    return ConversationRef(row.id, row.customer_id, row.mode, row.csat_ticket_id)


def resolve_conversation(session: Session, channel: str, external_id: str) -> ConversationRef:
    """The conversation of whoever writes as `external_id` on `channel`; new ones are created.

    Safe when two first messages of the same sender race: the unique channel identity lets
    one insert win and the other reads it.
    """
    known = find_conversation(session, channel, external_id)
    return known or _start_conversation(session, channel, external_id)


def _start_conversation(session: Session, channel: str, external_id: str) -> ConversationRef:
    identity = _identity(session, channel, external_id)
    if identity is None:
        try:
            with session.begin_nested():
                customer = Customer()
                session.add(customer)
                session.flush()
                identity = ChannelIdentity(channel=channel, external_id=external_id, customer_id=customer.id)
                session.add(identity)
                session.flush()
        except IntegrityError:
            identity = _identity(session, channel, external_id)
            assert identity is not None
    conversation = session.scalars(
        sa.select(Conversation).where(Conversation.customer_id == identity.customer_id).limit(1)
    ).first()
    if conversation is None:
        conversation = Conversation(customer_id=identity.customer_id, last_channel=channel)
        session.add(conversation)
        session.flush()
    return ConversationRef(
        conversation.id, conversation.customer_id, conversation.mode or "bot", conversation.csat_ticket_id
    )


def _identity(session: Session, channel: str, external_id: str) -> ChannelIdentity | None:
    return session.scalars(
        sa.select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
        )
    ).first()


def record_message(
    db: Session | Connection,
    conversation_id: str,
    author: str,
    text: str | None,
    channel: str,
    payload: dict[str, Any] | None = None,
    delivered: bool = False,
) -> int:
    """Stores one transcript line; returns its id. `delivered`: a reply that goes back with
    the customer's own request (otherwise the customer collects it later, or a channel pushes
    it). (A plain INSERT: this runs for every message, and the ORM's unit of work would
    double its cost.)"""
    now = utcnow()
    result = db.execute(
        _INSERT_MESSAGE,
        {
            "conversation_id": conversation_id,
            "author": author,
            "channel": channel,
            "text": text,
            "payload": payload,
            "created_at": now,
            "delivered_at": now if delivered else None,
        },
    )
    return int(result.inserted_primary_key[0])


PRIORITIES = ("P1", "P2", "P3", "P4")
DEFAULT_PRIORITY = "P3"  # a ticket whose opener gave none, such as the assistant being down


def open_ticket(
    session: Session, conversation_id: str, reason: str, details: dict[str, Any] | None = None
) -> tuple[Ticket, bool]:
    """The conversation's open ticket, opened now unless one is already open.

    Returns the ticket and whether it was created: a customer who writes five times while
    the assistant is down, or asks twice for a person, is one ticket in the queue. A later,
    more urgent escalation raises the waiting ticket's priority. The conversation waits for
    an agent from now on: the bot is silent until the ticket is handed back or closed.
    """
    details = details or {}
    priority = details.get("priority") if details.get("priority") in PRIORITIES else DEFAULT_PRIORITY
    vip = details.get("vip") is True
    waiting = tickets.open_ticket_of(session, conversation_id)
    if waiting is None:
        ticket = Ticket(
            conversation_id=conversation_id,
            reason=reason,
            details=details,
            priority=priority,
            vip=vip,
            status="queued",
            created_at=utcnow(),
        )
        try:
            with session.begin_nested():
                session.add(ticket)
                session.flush()
        except IntegrityError:
            # Another process opened one a moment ago (one open ticket per conversation is
            # a unique index): that one is raised instead.
            waiting = tickets.open_ticket_of(session, conversation_id)
            assert waiting is not None
    if waiting is not None:
        if waiting.priority is None or priority < waiting.priority:
            # The agent sees why it became more urgent.
            waiting.priority, waiting.reason, waiting.details = priority, reason, details
            tickets.record_event(session, waiting.id, "priority_raised", waiting.status, waiting.status)
        waiting.vip = bool(waiting.vip) or vip
        return waiting, False
    tickets.record_event(session, ticket.id, "opened", None, "queued")
    session.execute(
        sa.update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(mode="queued", csat_ticket_id=None)
    )
    return ticket, True


def record_unresolved(
    session: Session,
    conversation_id: str,
    message_id: int | None,
    text: str,
    reason: str,
    details: dict[str, Any] | None = None,
) -> UnresolvedMessage:
    entry = UnresolvedMessage(
        conversation_id=conversation_id, message_id=message_id, text=text, reason=reason, details=details
    )
    session.add(entry)
    session.flush()
    return entry


def record_feedback(
    session: Session, conversation_id: str, message_id: int | None, article_id: str, helpful: bool
) -> AnswerFeedback:
    entry = AnswerFeedback(
        conversation_id=conversation_id, message_id=message_id, article_id=article_id, helpful=helpful
    )
    session.add(entry)
    session.flush()
    return entry


def undelivered(session: Session, conversation_id: str, after: int | None = None) -> list[Message]:
    """What the customer has not collected yet (agent replies, the CSAT question...), oldest
    first. Without `after`, they count as delivered from now on (two collectors at once get
    each line once). With `after`, the lines up to that id are acknowledged and the later
    ones are returned but not marked, so a client that lost a response gets them again."""
    waiting = sa.select(Message).where(
        Message.conversation_id == conversation_id,
        Message.author != "customer",
        Message.delivered_at.is_(None),
    )
    now = utcnow()
    if after is not None:
        session.execute(
            sa.update(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.author != "customer",
                Message.delivered_at.is_(None),
                Message.id <= after,
            )
            .values(delivered_at=now)
        )
        return list(session.scalars(waiting.where(Message.id > after).order_by(Message.id)))
    rows = list(session.scalars(waiting.order_by(Message.id).with_for_update(skip_locked=True)))
    for message in rows:
        message.delivered_at = now
    return rows


def mark_delivered(db: Session | Connection, message_id: int) -> bool:
    """Claims a line for delivery: True for the one caller that gets to send it."""
    result = db.execute(
        sa.update(Message)
        .where(Message.id == message_id, Message.delivered_at.is_(None))
        .values(delivered_at=utcnow())
    )
    return result.rowcount == 1


def unmark_delivered(db: Session | Connection, message_id: int) -> None:
    """The send failed: the line waits for the next chance (a reconnect, a poll)."""
    db.execute(sa.update(Message).where(Message.id == message_id).values(delivered_at=None))


def identity_of(db: Session | Connection, conversation_id: str, channel: str) -> str | None:
    """How the conversation's customer is known on `channel` (a Telegram chat id), if at all."""
    return db.execute(
        sa.select(ChannelIdentity.external_id)
        .join(Conversation, Conversation.customer_id == ChannelIdentity.customer_id)
        .where(Conversation.id == conversation_id, ChannelIdentity.channel == channel)
        .order_by(ChannelIdentity.id.desc())
        .limit(1)
    ).scalar()


def record_attachment(db: Session | Connection, message_id: int, data: bytes, content_type: str) -> int:
    result = db.execute(
        sa.insert(Attachment).values(
            message_id=message_id, data=data, content_type=content_type, created_at=utcnow()
        )
    )
    return int(result.inserted_primary_key[0])


def set_payload(db: Session | Connection, message_id: int, payload: dict[str, Any]) -> None:
    db.execute(sa.update(Message).where(Message.id == message_id).values(payload=payload))
