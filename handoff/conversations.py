"""Conversations and their transcripts: who is writing, and what was said.

Plain functions over a Session: each call is part of the caller's unit of work.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from handoff.models import (
    AnswerFeedback,
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
    sa.select(Conversation.id, Conversation.customer_id, Conversation.last_channel)
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


def find_conversation(db: Session | Connection, channel: str, external_id: str) -> ConversationRef | None:
    """The latest conversation of whoever writes as `external_id` on `channel`, if known.

    One query, since every message comes through here; works on a Session or a Core
    Connection (the gateway uses the cheaper Connection).
    """
    row = db.execute(_LATEST_CONVERSATION, {"channel": channel, "external_id": external_id}).first()
    if row is None:
        return None
    if row.last_channel != channel:
        db.execute(sa.update(Conversation).where(Conversation.id == row.id).values(last_channel=channel))
    return ConversationRef(row.id, row.customer_id)


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
    return ConversationRef(conversation.id, conversation.customer_id)


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
) -> int:
    """Stores one transcript line; returns its id. (A plain INSERT: this runs for every
    message, and the ORM's unit of work would double its cost.)"""
    result = db.execute(
        _INSERT_MESSAGE,
        {
            "conversation_id": conversation_id,
            "author": author,
            "channel": channel,
            "text": text,
            "payload": payload,
            "created_at": utcnow(),
        },
    )
    return int(result.inserted_primary_key[0])


OPEN_TICKET_STATUSES = ("queued", "assigned")


PRIORITIES = ("P1", "P2", "P3", "P4")
DEFAULT_PRIORITY = "P3"  # a ticket whose opener gave none, such as the assistant being down


def open_ticket(
    session: Session, conversation_id: str, reason: str, details: dict[str, Any] | None = None
) -> tuple[Ticket, bool]:
    """The conversation's open ticket, opened now unless one is already waiting.

    Returns the ticket and whether it was created: a customer who writes five times while
    the assistant is down, or asks twice for a person, is one ticket in the queue. A later,
    more urgent escalation raises the waiting ticket's priority.
    """
    details = details or {}
    priority = details.get("priority") if details.get("priority") in PRIORITIES else DEFAULT_PRIORITY
    vip = details.get("vip") is True
    waiting = session.scalars(
        sa.select(Ticket)
        .where(Ticket.conversation_id == conversation_id, Ticket.status.in_(OPEN_TICKET_STATUSES))
        .order_by(Ticket.id)
        .limit(1)
    ).first()
    if waiting is not None:
        if waiting.priority is None or priority < waiting.priority:
            # The agent sees why it became more urgent.
            waiting.priority, waiting.reason, waiting.details = priority, reason, details
        waiting.vip = bool(waiting.vip) or vip
        return waiting, False
    ticket = Ticket(
        conversation_id=conversation_id, reason=reason, details=details, priority=priority, vip=vip
    )
    session.add(ticket)
    session.flush()
    return ticket, True


def waiting_tickets(session: Session) -> list[Ticket]:
    """The queue: by priority tier, VIP customers first within a tier, then oldest first."""
    return list(
        session.scalars(
            sa.select(Ticket)
            .where(Ticket.status.in_(OPEN_TICKET_STATUSES))
            .order_by(Ticket.priority, Ticket.vip.desc(), Ticket.created_at, Ticket.id)
        )
    )


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


def transcript(session: Session, conversation_id: str) -> list[Message]:
    return list(
        session.scalars(
            sa.select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
        )
    )
