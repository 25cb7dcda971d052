"""Helpdesk tables. Times are stored in UTC."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import relationship

from handoff.db import Base


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_conversation_id() -> str:
    return uuid.uuid4().hex


class Customer(Base):
    """One person, whatever channels they write from."""

    __tablename__ = "customers"
    id = sa.Column(sa.Integer, primary_key=True)
    display_name = sa.Column(sa.String(200))
    email = sa.Column(sa.String(320))
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class ChannelIdentity(Base):
    """How a customer is known on one channel (a REST sender id, a Telegram chat id)."""

    __tablename__ = "channel_identities"
    __table_args__ = (sa.UniqueConstraint("channel", "external_id"),)
    id = sa.Column(sa.Integer, primary_key=True)
    channel = sa.Column(sa.String(32), nullable=False)
    external_id = sa.Column(sa.String(255), nullable=False)
    customer_id = sa.Column(sa.ForeignKey("customers.id"), nullable=False, index=True)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class Conversation(Base):
    """A customer's conversation; its id is the sender id Rasa knows it by."""

    __tablename__ = "conversations"
    id = sa.Column(sa.String(32), primary_key=True, default=new_conversation_id)
    customer_id = sa.Column(sa.ForeignKey("customers.id"), nullable=False, index=True)
    mode = sa.Column(sa.String(16), nullable=False, default="bot")  # bot | queued | agent
    last_channel = sa.Column(sa.String(32), nullable=False)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    messages = relationship("Message", order_by="Message.id", lazy="raise")


class Message(Base):
    """One line of the transcript, stored before anything is acknowledged or sent."""

    __tablename__ = "messages"
    id = sa.Column(sa.Integer, primary_key=True)
    conversation_id = sa.Column(sa.ForeignKey("conversations.id"), nullable=False, index=True)
    author = sa.Column(sa.String(16), nullable=False)  # customer | bot | agent | system
    channel = sa.Column(sa.String(32), nullable=False)
    text = sa.Column(sa.Text)
    payload = sa.Column(sa.JSON)  # buttons, images, custom payloads
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class Ticket(Base):
    """A request for a person; the handoff queue is built on these."""

    __tablename__ = "tickets"
    id = sa.Column(sa.Integer, primary_key=True)
    conversation_id = sa.Column(sa.ForeignKey("conversations.id"), nullable=False, index=True)
    reason = sa.Column(sa.String(64), nullable=False)
    status = sa.Column(sa.String(16), nullable=False, default="queued")
    priority = sa.Column(sa.String(4))  # P1 (first) to P4, from the escalation's urgency x impact
    vip = sa.Column(sa.Boolean, nullable=False, default=False)  # first within its priority tier
    details = sa.Column(sa.JSON)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class UnresolvedMessage(Base):
    """A customer message the bot could not handle, kept for the trainers."""

    __tablename__ = "unresolved_messages"
    id = sa.Column(sa.Integer, primary_key=True)
    conversation_id = sa.Column(sa.ForeignKey("conversations.id"), nullable=False, index=True)
    message_id = sa.Column(sa.ForeignKey("messages.id"), index=True)
    text = sa.Column(sa.Text, nullable=False)
    reason = sa.Column(sa.String(32), nullable=False)  # nlu_fallback | kb_miss | ...
    details = sa.Column(sa.JSON)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class AnswerFeedback(Base):
    """A customer's answer to "did that answer your question?" after a knowledge-base answer."""

    __tablename__ = "answer_feedback"
    id = sa.Column(sa.Integer, primary_key=True)
    conversation_id = sa.Column(sa.ForeignKey("conversations.id"), nullable=False, index=True)
    message_id = sa.Column(sa.ForeignKey("messages.id"))  # the customer's yes or no
    article_id = sa.Column(sa.String(100), nullable=False, index=True)
    helpful = sa.Column(sa.Boolean, nullable=False)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
