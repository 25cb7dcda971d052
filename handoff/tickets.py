"""The ticket life cycle: queued -> assigned (claimed) -> resolved (closed or handed back).

Plain functions over a Session, each part of the caller's unit of work. Every transition
is a conditional UPDATE on the status it starts from, so two agents (or two gateway
processes) acting at once cannot both win: on SQLite writers queue (BEGIN IMMEDIATE), on
PostgreSQL the second UPDATE waits for the first's row lock, re-reads the row, and finds the
condition false. Every transition is written to `ticket_events` with who made it.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from handoff.auth import AgentRef
from handoff.models import (
    Agent,
    Conversation,
    Customer,
    Message,
    Ticket,
    TicketEvent,
    TicketNote,
    UnresolvedMessage,
    utcnow,
)

OPEN_STATUSES = ("queued", "assigned")
LOW_CSAT = 2  # ratings at or below this go to the trainers' unresolved log
PRIORITY_ORDER = (Ticket.priority, Ticket.vip.desc(), Ticket.created_at, Ticket.id)


class TicketError(Exception):
    status = 400


class TicketNotFound(TicketError):
    status = 404


class TicketConflict(TicketError):
    """Someone else holds the ticket, or it is already resolved."""

    status = 409


@dataclass(frozen=True)
class Change:
    """A transition that happened: the ticket after it, its conversation, and what the
    assistant handed over with it (`details`: the order, the proven email...)."""

    ticket_id: int
    conversation_id: str
    channel: str
    details: dict[str, Any]


def as_utc(moment: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes for what was stored as UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.timezone.utc)


def record_event(
    session: Session,
    ticket_id: int,
    action: str,
    from_status: str | None,
    to_status: str | None,
    agent: AgentRef | None = None,
    actor: str | None = None,
) -> None:
    session.add(
        TicketEvent(
            ticket_id=ticket_id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            agent_id=agent.id if agent else None,
            actor=agent.email if agent else (actor or "system"),
            at=utcnow(),
        )
    )


def _ticket(session: Session, ticket_id: int, lock: bool = False) -> Ticket:
    # lock: PostgreSQL holds the row until commit, so a hand-back cannot slip in between
    # reading "assigned" and writing the reply (SQLite's writers queue anyway).
    ticket = session.get(Ticket, ticket_id, with_for_update=lock)
    if ticket is None:
        raise TicketNotFound(f"there is no ticket {ticket_id}")
    return ticket


def _holder_name(session: Session, ticket: Ticket) -> str:
    agent = session.get(Agent, ticket.assigned_agent_id) if ticket.assigned_agent_id else None
    return agent.name if agent else "another agent"


def _change(session: Session, ticket: Ticket) -> Change:
    conversation = session.get(Conversation, ticket.conversation_id)
    return Change(ticket.id, ticket.conversation_id, conversation.last_channel, dict(ticket.details or {}))


def _set_mode(session: Session, conversation_id: str, mode: str, **values: Any) -> None:
    session.execute(
        sa.update(Conversation).where(Conversation.id == conversation_id).values(mode=mode, **values)
    )


def claim(session: Session, ticket_id: int, agent: AgentRef) -> tuple[Change, bool]:
    """Gives the ticket to `agent`; returns the change and whether it was claimed just now
    (False: the agent already held it). Raises TicketConflict when someone else holds it."""
    won = session.execute(
        sa.update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.status == "queued")
        .values(status="assigned", assigned_agent_id=agent.id, claimed_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    ticket = _ticket(session, ticket_id)
    session.refresh(ticket)
    if won:
        record_event(session, ticket.id, "claimed", "queued", "assigned", agent)
        _set_mode(session, ticket.conversation_id, "agent")
        return _change(session, ticket), True
    if ticket.status == "assigned" and ticket.assigned_agent_id == agent.id:
        return _change(session, ticket), False
    if ticket.status == "assigned":
        raise TicketConflict(f"{_holder_name(session, ticket)} already holds ticket {ticket_id}")
    raise TicketConflict(f"ticket {ticket_id} is already resolved")


def _held(session: Session, ticket_id: int, agent: AgentRef) -> Ticket:
    ticket = _ticket(session, ticket_id, lock=True)
    if ticket.status == "resolved":
        raise TicketConflict(f"ticket {ticket_id} is already resolved")
    if ticket.status == "queued":
        raise TicketConflict(f"claim ticket {ticket_id} before answering it")
    if ticket.assigned_agent_id != agent.id:
        raise TicketConflict(f"{_holder_name(session, ticket)} holds ticket {ticket_id}")
    return ticket


def reply(session: Session, ticket_id: int, agent: AgentRef, text: str) -> tuple[Change, Message]:
    """Stores the agent's reply for the customer to receive (not yet delivered)."""
    ticket = _held(session, ticket_id, agent)
    change = _change(session, ticket)
    message = Message(
        conversation_id=ticket.conversation_id,
        author="agent",
        channel=change.channel,
        text=text,
        agent_id=agent.id,
        created_at=utcnow(),
    )
    session.add(message)
    if ticket.first_response_at is None:
        ticket.first_response_at = message.created_at
    session.flush()
    return change, message


def add_note(session: Session, ticket_id: int, agent: AgentRef, text: str) -> TicketNote:
    _ticket(session, ticket_id)
    note = TicketNote(ticket_id=ticket_id, agent_id=agent.id, text=text, created_at=utcnow())
    session.add(note)
    session.flush()
    return note


def resolve(session: Session, ticket_id: int, agent: AgentRef, outcome: str) -> Change:
    """Closes the ticket or hands the conversation back to the bot.

    The holder may; an admin may for anyone; a queued ticket may be closed by any agent
    (spam, or answered elsewhere). A closed ticket's conversation waits for the CSAT answer.
    """
    assert outcome in ("closed", "handed_back")
    ticket = _ticket(session, ticket_id)
    status = ticket.status
    if status == "resolved":
        raise TicketConflict(f"ticket {ticket_id} is already resolved")
    if status == "queued" and outcome == "handed_back":
        raise TicketConflict(f"claim ticket {ticket_id} before handing it back")
    if status == "assigned" and ticket.assigned_agent_id != agent.id and agent.role != "admin":
        raise TicketConflict(f"{_holder_name(session, ticket)} holds ticket {ticket_id}")
    done = session.execute(
        sa.update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.status == status)
        .values(status="resolved", outcome=outcome, resolved_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:
        raise TicketConflict(f"ticket {ticket_id} changed meanwhile; reload it")
    record_event(session, ticket_id, outcome, status, "resolved", agent)
    csat = {"csat_ticket_id": ticket_id} if outcome == "closed" else {"csat_ticket_id": None}
    _set_mode(session, ticket.conversation_id, "bot", **csat)
    return _change(session, ticket)


def record_csat(session: Session, conversation_id: str, ticket_id: int, score: int) -> None:
    session.execute(
        sa.update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.conversation_id == conversation_id)
        .values(csat=score, csat_at=utcnow())
    )
    record_event(session, ticket_id, "csat", "resolved", "resolved", actor="customer")
    if score <= LOW_CSAT:
        # A poor rating is a lesson for the trainers: the message that led to the handoff.
        ticket = session.get(Ticket, ticket_id)
        nlu = (ticket.details or {}).get("nlu") or {} if ticket else {}
        last = session.scalars(
            sa.select(Message.text)
            .where(Message.conversation_id == conversation_id, Message.author == "customer")
            .order_by(Message.id.desc())
            .offset(1)  # the rating itself is the last one
            .limit(1)
        ).first()
        text = nlu.get("text") or last
        if text:
            session.add(
                UnresolvedMessage(
                    conversation_id=conversation_id,
                    text=text,
                    reason="low_csat",
                    details={"nlu": nlu, "csat": score, "ticket": ticket_id},
                    created_at=utcnow(),
                )
            )
    session.execute(
        sa.update(Conversation).where(Conversation.id == conversation_id).values(csat_ticket_id=None)
    )


def forget_csat(session: Session, conversation_id: str) -> None:
    """The customer wrote something else after the CSAT question: it is not asked again."""
    session.execute(
        sa.update(Conversation).where(Conversation.id == conversation_id).values(csat_ticket_id=None)
    )


def open_ticket_of(session: Session, conversation_id: str) -> Ticket | None:
    return session.scalars(
        sa.select(Ticket)
        .where(Ticket.conversation_id == conversation_id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.id)
        .limit(1)
    ).first()


def position(session: Session, ticket: Ticket) -> int | None:
    """The ticket's place among the queued ones (1 = next), or None once claimed."""
    if ticket.status != "queued":
        return None
    queued = session.execute(
        sa.select(Ticket.id).where(Ticket.status == "queued").order_by(*PRIORITY_ORDER)
    ).scalars()
    for place, ticket_id in enumerate(queued, start=1):
        if ticket_id == ticket.id:
            return place
    return None


def expected_wait(session: Session, recent: int, min_samples: int) -> dt.timedelta | None:
    """The median wait from opening to claim of the latest claimed tickets, if enough."""
    rows = session.execute(
        sa.select(Ticket.created_at, Ticket.claimed_at)
        .where(Ticket.claimed_at.is_not(None))
        .order_by(Ticket.claimed_at.desc())
        .limit(recent)
    ).all()
    if len(rows) < min_samples:
        return None
    return dt.timedelta(seconds=statistics.median((as_utc(c) - as_utc(o)).total_seconds() for o, c in rows))


def tickets(session: Session, status: str = "open", limit: int = 200) -> list[Ticket]:
    """The open queue in serving order, or the latest resolved tickets."""
    if status == "resolved":
        query = sa.select(Ticket).where(Ticket.status == "resolved").order_by(Ticket.resolved_at.desc())
    else:
        query = sa.select(Ticket).where(Ticket.status.in_(OPEN_STATUSES)).order_by(*PRIORITY_ORDER)
    return list(session.scalars(query.limit(limit)))


def summaries(
    session: Session, rows: list[Ticket], sla_minutes: dict[str, int], now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """What the queue shows of each ticket, in a handful of queries for the whole list."""
    now = now or utcnow()
    conversation_ids = {ticket.conversation_id for ticket in rows}
    agent_ids = {ticket.assigned_agent_id for ticket in rows if ticket.assigned_agent_id}
    agents = {agent.id: agent for agent in session.scalars(sa.select(Agent).where(Agent.id.in_(agent_ids)))}
    people = {
        row.id: row
        for row in session.execute(
            sa.select(Conversation.id, Conversation.last_channel, Customer.id.label("customer_id"),
                      Customer.display_name, Customer.email)
            .join(Customer, Customer.id == Conversation.customer_id)
            .where(Conversation.id.in_(conversation_ids))
        )
    }  # fmt: skip
    latest = (
        sa.select(Message.conversation_id, sa.func.max(Message.id).label("id"))
        .where(Message.conversation_id.in_(conversation_ids), Message.author == "customer")
        .group_by(Message.conversation_id)
        .subquery()
    )
    last_texts = dict(
        session.execute(
            sa.select(Message.conversation_id, Message.text).join(latest, latest.c.id == Message.id)
        ).all()
    )
    places = {}
    if any(ticket.status == "queued" for ticket in rows):
        queued = session.execute(
            sa.select(Ticket.id).where(Ticket.status == "queued").order_by(*PRIORITY_ORDER)
        )
        places = {ticket_id: place for place, ticket_id in enumerate(queued.scalars(), start=1)}
    result = []
    for ticket in rows:
        person = people.get(ticket.conversation_id)
        agent = agents.get(ticket.assigned_agent_id)
        created = as_utc(ticket.created_at)
        ended = as_utc(ticket.claimed_at) or as_utc(ticket.resolved_at) or now
        target = 60 * int(sla_minutes.get(ticket.priority or "P3", 15))
        due = created + dt.timedelta(seconds=target)
        responded = as_utc(ticket.first_response_at)
        details = ticket.details or {}
        result.append(
            {
                "id": ticket.id,
                "conversation_id": ticket.conversation_id,
                "status": ticket.status,
                "outcome": ticket.outcome,
                "reason": ticket.reason,
                "priority": ticket.priority,
                "vip": bool(ticket.vip),
                "position": places.get(ticket.id),
                "created_at": created.isoformat(),
                "waiting_seconds": round((ended - created).total_seconds(), 1),
                "assigned_agent": (
                    {"id": agent.id, "email": agent.email, "name": agent.name, "role": agent.role}
                    if agent
                    else None
                ),
                "channel": person.last_channel if person else None,
                "customer": {
                    "id": person.customer_id if person else None,
                    "name": person.display_name if person else None,
                    "email": (person.email if person else None) or details.get("customer_email"),
                },
                "last_customer_message": last_texts.get(ticket.conversation_id),
                "cues": details.get("cues") or [],
                "sla": {
                    "target_seconds": target,
                    "due_at": due.isoformat(),
                    "responded_at": responded.isoformat() if responded else None,
                    "breached": (responded or now) > due,
                },
                "csat": ticket.csat,
            }
        )
    return result


def notes(session: Session, ticket_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        sa.select(TicketNote, Agent)
        .join(Agent, Agent.id == TicketNote.agent_id)
        .where(TicketNote.ticket_id == ticket_id)
        .order_by(TicketNote.id)
    ).all()
    return [note_dict(note, agent) for note, agent in rows]


def note_dict(note: TicketNote, agent: Agent | AgentRef) -> dict[str, Any]:
    return {
        "id": note.id,
        "agent": {"id": agent.id, "email": agent.email, "name": agent.name, "role": agent.role},
        "text": note.text,
        "created_at": as_utc(note.created_at).isoformat(),
    }


def events(session: Session, ticket_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
    )
    return [
        {
            "action": event.action,
            "from_status": event.from_status,
            "to_status": event.to_status,
            "actor": event.actor,
            "at": as_utc(event.at).isoformat(),
        }
        for event in rows
    ]


def message_dict(message: Message, agent_names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": message.id,
        "author": message.author,
        "agent": agent_names.get(message.agent_id) if message.agent_id else None,
        "channel": message.channel,
        "text": message.text,
        "payload": message.payload,
        "created_at": as_utc(message.created_at).isoformat(),
        "nlu": None,
    }


def transcript(session: Session, conversation_id: str) -> list[dict[str, Any]]:
    messages = list(
        session.scalars(
            sa.select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
        )
    )
    ids = {message.agent_id for message in messages if message.agent_id}
    names = dict(session.execute(sa.select(Agent.id, Agent.name).where(Agent.id.in_(ids))).all())
    return [message_dict(message, names) for message in messages]
