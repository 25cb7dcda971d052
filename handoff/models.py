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
    # A closed ticket whose CSAT question the customer has not answered yet.
    csat_ticket_id = sa.Column(sa.Integer)
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
    agent_id = sa.Column(sa.ForeignKey("agents.id"))  # who wrote an agent message
    # NULL for what the customer has not collected yet (an agent's reply, the CSAT question);
    # replies returned with the customer's own request are delivered when stored.
    delivered_at = sa.Column(sa.DateTime(timezone=True))
    # Indexed: each gateway looks for the recent customer messages nobody answered.
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow, index=True)


class Ticket(Base):
    """A request for a person; the handoff queue is built on these."""

    __tablename__ = "tickets"
    __table_args__ = (
        # One open ticket per conversation, whatever races: the queue never lists one twice.
        sa.Index(
            "uq_tickets_one_open_per_conversation",
            "conversation_id",
            unique=True,
            sqlite_where=sa.text("status IN ('queued', 'assigned')"),
            postgresql_where=sa.text("status IN ('queued', 'assigned')"),
        ),
    )
    id = sa.Column(sa.Integer, primary_key=True)
    conversation_id = sa.Column(sa.ForeignKey("conversations.id"), nullable=False, index=True)
    reason = sa.Column(sa.String(64), nullable=False)
    status = sa.Column(sa.String(16), nullable=False, default="queued")
    priority = sa.Column(sa.String(4))  # P1 (first) to P4, from the escalation's urgency x impact
    vip = sa.Column(sa.Boolean, nullable=False, default=False)  # first within its priority tier
    details = sa.Column(sa.JSON)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    assigned_agent_id = sa.Column(sa.ForeignKey("agents.id"), index=True)
    claimed_at = sa.Column(sa.DateTime(timezone=True))
    first_response_at = sa.Column(sa.DateTime(timezone=True))  # the first agent reply
    resolved_at = sa.Column(sa.DateTime(timezone=True))
    outcome = sa.Column(sa.String(16))  # closed | handed_back, once resolved
    csat = sa.Column(sa.SmallInteger)  # 1-5, the customer's answer after closing
    csat_at = sa.Column(sa.DateTime(timezone=True))


class TicketEvent(Base):
    """Every change of a ticket: what happened, from which status to which, who did it, when."""

    __tablename__ = "ticket_events"
    id = sa.Column(sa.Integer, primary_key=True)
    ticket_id = sa.Column(sa.ForeignKey("tickets.id"), nullable=False, index=True)
    action = sa.Column(sa.String(32), nullable=False)  # opened | claimed | handed_back | closed | ...
    from_status = sa.Column(sa.String(16))
    to_status = sa.Column(sa.String(16))
    agent_id = sa.Column(sa.ForeignKey("agents.id"))
    actor = sa.Column(sa.String(320), nullable=False)  # the agent's email, "customer" or "system"
    at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class TicketNote(Base):
    """An agent's internal note on a ticket; never shown to the customer."""

    __tablename__ = "ticket_notes"
    id = sa.Column(sa.Integer, primary_key=True)
    ticket_id = sa.Column(sa.ForeignKey("tickets.id"), nullable=False, index=True)
    agent_id = sa.Column(sa.ForeignKey("agents.id"), nullable=False)
    text = sa.Column(sa.Text, nullable=False)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class Agent(Base):
    """A person who logs in to the consoles: agent, trainer or admin."""

    __tablename__ = "agents"
    id = sa.Column(sa.Integer, primary_key=True)
    email = sa.Column(sa.String(320), nullable=False, unique=True)  # stored lower-case
    name = sa.Column(sa.String(200), nullable=False)
    role = sa.Column(sa.String(16), nullable=False)  # agent | trainer | admin
    password_hash = sa.Column(sa.String(255), nullable=False)  # argon2id
    active = sa.Column(sa.Boolean, nullable=False, default=True)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class AgentSession(Base):
    """A login. The cookie holds a signed random token; only its SHA-256 is stored, so a
    leaked database row cannot be replayed, and logging out ends the session on the server."""

    __tablename__ = "agent_sessions"
    token_hash = sa.Column(sa.String(64), primary_key=True)
    agent_id = sa.Column(sa.ForeignKey("agents.id"), nullable=False, index=True)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    expires_at = sa.Column(sa.DateTime(timezone=True), nullable=False)


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


class LinkCode(Base):
    """A one-time code that joins a second channel to a customer: shown on one channel, typed
    (or opened as a Telegram deep link) on the other. Only its SHA-256 is stored."""

    __tablename__ = "link_codes"
    id = sa.Column(sa.Integer, primary_key=True)
    code_hash = sa.Column(sa.String(64), nullable=False, unique=True)
    customer_id = sa.Column(sa.ForeignKey("customers.id"), nullable=False, index=True)
    issued_on = sa.Column(sa.String(32), nullable=False)  # the channel that showed it
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    expires_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    used_at = sa.Column(sa.DateTime(timezone=True))
    used_on = sa.Column(sa.String(32))


class Attachment(Base):
    """A file a customer sent (a photo of a damaged item), kept for the agent."""

    __tablename__ = "attachments"
    id = sa.Column(sa.Integer, primary_key=True)
    message_id = sa.Column(sa.ForeignKey("messages.id"), nullable=False, index=True)
    content_type = sa.Column(sa.String(100), nullable=False)
    data = sa.Column(sa.LargeBinary, nullable=False)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class TrainingDecision(Base):
    """What a trainer decided about an unresolved message: label it with an intent, mark it as
    a knowledge-base gap (with a note), or dismiss it; and when the label was exported."""

    __tablename__ = "training_decisions"
    id = sa.Column(sa.Integer, primary_key=True)
    unresolved_id = sa.Column(sa.ForeignKey("unresolved_messages.id"), nullable=False, unique=True)
    decision = sa.Column(sa.String(16), nullable=False)  # label | kb_gap | dismissed
    intent = sa.Column(sa.String(100))
    note = sa.Column(sa.Text)
    agent_id = sa.Column(sa.ForeignKey("agents.id"), nullable=False)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    exported_at = sa.Column(sa.DateTime(timezone=True))
