"""Conversations and their transcripts: who is writing, and what was said."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.models import (
    ChannelIdentity,
    Conversation,
    Customer,
    Message,
    Ticket,
    UnresolvedMessage,
    utcnow,
)


async def resolve_conversation(session: AsyncSession, channel: str, external_id: str) -> Conversation:
    """The conversation of whoever writes as `external_id` on `channel`; new ones are created.

    Safe when two first messages of the same sender race: the unique channel identity
    lets one insert win and the other reads it.
    """
    identity = await _identity(session, channel, external_id)
    if identity is None:
        try:
            async with session.begin_nested():
                customer = Customer()
                session.add(customer)
                await session.flush()
                identity = ChannelIdentity(channel=channel, external_id=external_id, customer_id=customer.id)
                session.add(identity)
                await session.flush()
        except IntegrityError:
            identity = await _identity(session, channel, external_id)
            assert identity is not None
    result = await session.execute(
        sa.select(Conversation)
        .where(Conversation.customer_id == identity.customer_id)
        .order_by(Conversation.created_at.desc())
        .limit(1)
    )
    conversation = result.scalars().first()
    if conversation is None:
        conversation = Conversation(customer_id=identity.customer_id, last_channel=channel)
        session.add(conversation)
    conversation.last_channel = channel
    conversation.updated_at = utcnow()
    await session.flush()
    return conversation


async def _identity(session: AsyncSession, channel: str, external_id: str) -> ChannelIdentity | None:
    result = await session.execute(
        sa.select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
        )
    )
    return result.scalars().first()


async def record_message(
    session: AsyncSession,
    conversation: Conversation,
    author: str,
    text: str | None,
    channel: str,
    payload: dict[str, Any] | None = None,
) -> Message:
    message = Message(
        conversation_id=conversation.id, author=author, channel=channel, text=text, payload=payload
    )
    session.add(message)
    await session.flush()
    return message


async def open_ticket(
    session: AsyncSession, conversation: Conversation, reason: str, details: dict[str, Any] | None = None
) -> Ticket:
    ticket = Ticket(conversation_id=conversation.id, reason=reason, details=details)
    session.add(ticket)
    await session.flush()
    return ticket


async def record_unresolved(
    session: AsyncSession,
    conversation: Conversation,
    message: Message | None,
    text: str,
    reason: str,
    details: dict[str, Any] | None = None,
) -> UnresolvedMessage:
    entry = UnresolvedMessage(
        conversation_id=conversation.id,
        message_id=message.id if message else None,
        text=text,
        reason=reason,
        details=details,
    )
    session.add(entry)
    await session.flush()
    return entry


async def transcript(session: AsyncSession, conversation_id: str) -> list[Message]:
    result = await session.execute(
        sa.select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    )
    return list(result.scalars())
