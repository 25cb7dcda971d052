"""The helpdesk: the transcript and what happens around a ticket, for the gateway's router
and the agent API.

The router calls one method per thing that happens to a customer message (`conversation`,
`record_incoming`, `record_answer`, `record_exchange`, `customer_wrote`, `rating`) and never
writes the helpdesk's rows itself. The helpdesk stores through the database's units of work
(handoff/transcript.py), tells agents (and push channels) through the hub, and keeps the
assistant's memory in step through `Assistant`: while a person holds the conversation, the
customer's messages and the agent's replies are written into Rasa's tracker without Rasa
answering, so that after the hand-back the bot knows what was said.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy.orm import Session

from handoff import conversations, hub, tickets, transcript
from handoff.auth import AgentRef
from handoff.db import Database
from handoff.hub import LocalHub, RedisHub
from handoff.models import Message, Ticket, TicketNote, utcnow
from handoff.transcript import CustomerMessage, StoredMessage

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = Path(__file__).resolve().parent / "handoff.yml"
AGENT_HOURS_FILE = ROOT / "knowledge_base" / "agent_hours.yml"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CSAT_PAYLOAD = re.compile(r'^/csat\{"score":\s*([1-5])\}$')
CSAT_TYPED = re.compile(r"^([1-5])(?:\s*(?:/\s*5|out of 5|stars?))?\s*[.!]?$", re.IGNORECASE)


class Assistant(Protocol):
    """The part of Rasa's HTTP API the helpdesk needs (bot.rasa_client.RasaClient)."""

    async def log_user_message(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> None: ...

    async def append_events(self, conversation_id: str, events: list[dict[str, Any]]) -> None: ...

    async def tracker_events(self, conversation_id: str) -> list[dict[str, Any]] | None: ...

    async def tracker_slots(self, conversation_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class AgentHours:
    timezone: str
    open: dt.time
    close: dt.time
    days: tuple[str, ...]

    @classmethod
    def load(cls, path: Path = AGENT_HOURS_FILE) -> AgentHours:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        days = tuple(data.get("days") or DAYS)
        if not set(days) <= set(DAYS):
            raise ValueError(f"{path}: days must be among {', '.join(DAYS)}")
        return cls(
            data["timezone"], dt.time.fromisoformat(data["open"]), dt.time.fromisoformat(data["close"]), days
        )

    def _local(self, now: dt.datetime) -> dt.datetime:
        return now.astimezone(ZoneInfo(self.timezone))

    def on_duty(self, now: dt.datetime) -> bool:
        local = self._local(now)
        return DAYS[local.weekday()] in self.days and self.open <= local.time() < self.close

    def back_at(self, now: dt.datetime) -> dt.datetime:
        """When agents are next on duty (now, if they are)."""
        local = self._local(now)
        for offset in range(8):
            day = local.date() + dt.timedelta(days=offset)
            start = dt.datetime.combine(day, self.open, tzinfo=local.tzinfo)
            if DAYS[day.weekday()] in self.days and (start >= local or self.on_duty(now)):
                return max(start, local)
        raise ValueError("agent hours name no day")


@dataclass(frozen=True)
class HelpdeskConfig:
    first_response_minutes: dict[str, int]
    session_hours: float
    recent_tickets: int
    min_samples: int
    hours: AgentHours

    @classmethod
    def load(cls, path: Path = CONFIG_FILE, hours_file: Path = AGENT_HOURS_FILE) -> HelpdeskConfig:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            first_response_minutes={key: int(value) for key, value in data["first_response_minutes"].items()},
            session_hours=float(data["session_hours"]),
            recent_tickets=int(data["expected_wait"]["recent_tickets"]),
            min_samples=int(data["expected_wait"]["min_samples"]),
            hours=AgentHours.load(hours_file),
        )


def read_csat(text: str) -> int | None:
    """A score from the CSAT buttons' payload, or typed ("4", "5/5", "3 stars")."""
    match = CSAT_PAYLOAD.match(text.strip()) or CSAT_TYPED.match(text.strip())
    return int(match.group(1)) if match else None


def attach_understanding(transcript: list[dict[str, Any]], events: list[dict[str, Any]] | None) -> None:
    """Puts what Rasa understood of each customer message (intent, confidence, entities,
    frustration) beside it. The tracker's user events and the stored customer messages are
    the same messages in the same order; a message Rasa never saw (it was down) is skipped."""
    users = [event for event in events or [] if event.get("event") == "user"]
    start = 0
    for message in transcript:
        if message["author"] != "customer":
            continue
        for index in range(start, min(start + 5, len(users))):
            if (users[index].get("text") or "").strip() == (message["text"] or "").strip():
                parse = users[index].get("parse_data") or {}
                frustration = parse.get("frustration") or {}
                message["nlu"] = {
                    "intent": (parse.get("intent") or {}).get("name"),
                    "confidence": (parse.get("intent") or {}).get("confidence"),
                    "entities": [
                        {"entity": entity.get("entity"), "value": entity.get("value")}
                        for entity in parse.get("entities") or []
                    ],
                    "frustration": frustration.get("score"),
                    "cues": frustration.get("cues") or [],
                }
                start = index + 1
                break


@dataclass
class Helpdesk:
    database: Database
    hub: LocalHub | RedisHub
    assistant: Assistant
    texts: dict[str, str]
    config: HelpdeskConfig = field(default_factory=HelpdeskConfig.load)
    _tracker_locks: dict[str, tuple[asyncio.Lock, int]] = field(default_factory=dict, init=False, repr=False)
    _tracker_writes: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    # -- The customer's side (called by the gateway's router) --------------------------------

    async def conversation(self, message: CustomerMessage) -> conversations.ConversationRef:
        """The sender's conversation: one cheap query for a known sender (every message comes
        through here), a customer and a conversation created for a new one."""
        known = await self.database.execute(conversations.find_conversation, message.channel, message.sender)
        if known is not None:
            return known
        return await self.database.run(conversations.resolve_conversation, message.channel, message.sender)

    async def record_incoming(
        self, conversation: conversations.ConversationRef, message: CustomerMessage
    ) -> StoredMessage:
        """A message for the assistant to answer; its replies follow in `record_answer`."""
        return await self.database.execute(transcript.store_incoming, conversation, message)

    async def record_exchange(
        self, conversation: conversations.ConversationRef, message: CustomerMessage,
        replies: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        """A message the gateway answered itself (a photo without words), with the answer."""
        await self.database.execute(transcript.store_exchange, conversation, message, replies)

    async def record_answer(
        self, stored: StoredMessage, message: CustomerMessage, replies: list[dict[str, Any]],
        events: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Stores the assistant's replies and acts on its helpdesk events; returns (stored as
        well) what to tell the customer about the wait when a handoff opened a ticket."""
        handed_over = None
        if events:
            handed_over = await self.database.run(transcript.store_outcome, stored, message, replies, events)
        else:
            await self.database.execute(transcript.store_replies, stored, message, replies)
        if handed_over is None:
            return []
        notices = await self._ticket_opened(stored.conversation_id, *handed_over)
        await self.database.execute(transcript.store_replies, stored, message, notices)
        return notices

    async def answer_unanswered(
        self, after: dt.timedelta, window: dt.timedelta = dt.timedelta(hours=1)
    ) -> int:
        """Customer messages of the last `window` that no gateway answered within `after`
        get the apology and a ticket (transcript.take_unanswered); the lines go to the
        channel the customer used, live if they are connected. Returns how many."""
        now = utcnow()
        taken = await self.database.run(
            transcript.take_unanswered, now - after, now - window, self.texts["assistant_unavailable"]
        )
        for item in taken:
            notices = await self._ticket_opened(item.conversation_id, item.ticket_id, item.created)
            stored = await self.database.run(
                transcript.store_undelivered, item.conversation_id, item.channel, notices
            )
            change = tickets.Change(item.ticket_id, item.conversation_id, item.channel, {})
            for line in (item.apology, *stored):
                await self._announce(change, line)
        return len(taken)

    async def _ticket_opened(
        self, conversation_id: str, ticket_id: int, created: bool
    ) -> list[dict[str, Any]]:
        """Tells agents about the ticket; returns what to tell the customer about the wait."""
        summary, place, wait = await self.database.run(self._queue_facts, ticket_id)
        await self.hub.publish(hub.AGENTS, {"type": "ticket", "ticket": summary})
        status = {"mode": "queued", "agent": None}
        await self.hub.publish(
            hub.CUSTOMERS, {"conversation_id": conversation_id, "channel": None, "status": status}
        )
        if created:
            logger.info(
                "Ticket %s (%s, %s) queued at place %s",
                ticket_id,
                summary["reason"],
                summary["priority"],
                place,
            )
        return [{"text": text} for text in self.wait_notice(place, wait)]

    def _queue_facts(
        self, session: Session, ticket_id: int
    ) -> tuple[dict[str, Any], int | None, dt.timedelta | None]:
        ticket = session.get(Ticket, ticket_id)
        summary = tickets.summaries(session, [ticket], self.config.first_response_minutes)[0]
        wait = tickets.expected_wait(session, self.config.recent_tickets, self.config.min_samples)
        return summary, summary["position"], wait

    def wait_notice(
        self, place: int | None, wait: dt.timedelta | None, now: dt.datetime | None = None
    ) -> list[str]:
        now = now or utcnow()
        hours = self.config.hours
        if not hours.on_duty(now):
            back = hours.back_at(now)
            left = back - now
            return [
                self.texts["agents_away"].format(
                    open=hours.open.strftime("%H:%M"),
                    close=hours.close.strftime("%H:%M"),
                    timezone=hours.timezone,
                    back=_day_words(back, now.astimezone(back.tzinfo)),
                    hours=_count(max(1, round(left.total_seconds() / 3600)), "hour"),
                )
            ]
        lines = []
        if place is not None:
            lines.append(self.texts["queue_position"].format(position=place))
        if wait is not None:
            lines.append(
                self.texts["expected_wait"].format(
                    minutes=_count(max(1, round(wait.total_seconds() / 60)), "minute")
                )
            )
        return [" ".join(lines)] if lines else []

    async def customer_wrote(
        self, conversation: conversations.ConversationRef, message: CustomerMessage,
        metadata: dict[str, Any],
    ) -> tuple[StoredMessage, list[dict[str, Any]] | None]:  # fmt: skip
        """A message while the conversation waits for or is held by an agent: stored, shown to
        the agent live, recorded in Rasa's tracker without Rasa answering (in the background,
        in order), and a waiting customer is told where they stand. Returns the stored message
        and those replies (stored too); None for the replies when the ticket was resolved a
        moment ago, and the bot answers instead."""
        stored, line, ticket_id, place = await self.database.run(
            transcript.store_for_agents, conversation, message
        )
        if ticket_id is None:
            return stored, None
        await self.hub.publish(hub.AGENTS, {"type": "message", "ticket_id": ticket_id, "message": line})
        if line["payload"] is None:  # words, not a photo or a sticker
            self._in_order(
                conversation.id,
                lambda: self.assistant.log_user_message(conversation.id, line["text"], metadata),
            )
        if place is None:
            return stored, []
        replies = [{"text": self.texts["still_queued"].format(position=place)}]
        await self.database.execute(transcript.store_replies, stored, message, replies)
        return stored, replies

    async def rating(
        self, conversation: conversations.ConversationRef, message: CustomerMessage
    ) -> list[dict[str, Any]] | None:
        """The customer's answer to the rating question of the ticket closed last: recorded
        and thanked for (the thanks returned, stored). None when they wrote something else:
        the question is then not asked again, and the message is routed as any other."""
        assert conversation.csat_ticket_id is not None
        score = read_csat(message.text)
        if score is None:
            await self.database.execute(tickets.forget_csat, conversation.id)
            return None
        replies = [{"text": self.texts["csat_thanks"]}]
        await self.database.execute(transcript.store_exchange, conversation, message, replies)
        await self.database.run(tickets.record_csat, conversation.id, conversation.csat_ticket_id, score)
        logger.info("Ticket %s got CSAT %s", conversation.csat_ticket_id, score)
        await self._publish_ticket(conversation.csat_ticket_id)
        return replies

    def _in_order(self, conversation_id: str, write: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Runs a write into Rasa's tracker after the earlier ones of the conversation.

        The helpdesk's own records come first and are already committed; Rasa's memory is a
        copy, so a failure is logged, and no customer or agent waits for Rasa to take it.
        """
        lock, users = self._tracker_locks.get(conversation_id, (asyncio.Lock(), 0))
        self._tracker_locks[conversation_id] = (lock, users + 1)

        async def run() -> None:
            try:
                async with lock:
                    await write()
            except Exception as error:  # noqa: BLE001 - see above
                logger.warning("Could not update Rasa's tracker of %s: %s", conversation_id, error)
            finally:
                lock_, left = self._tracker_locks[conversation_id]
                if left <= 1:
                    del self._tracker_locks[conversation_id]
                else:
                    self._tracker_locks[conversation_id] = (lock_, left - 1)

        task = asyncio.create_task(run())
        self._tracker_writes.add(task)
        task.add_done_callback(self._tracker_writes.discard)
        return task

    # -- The agent's side (called by the API) ---------------------------------------------------

    async def queue(self, status: str) -> list[dict[str, Any]]:
        def work(session: Session) -> list[dict[str, Any]]:
            return tickets.summaries(
                session, tickets.tickets(session, status), self.config.first_response_minutes
            )

        return await self.database.run(work)

    async def detail(self, ticket_id: int) -> dict[str, Any]:
        def work(session: Session) -> dict[str, Any]:
            ticket = session.get(Ticket, ticket_id)
            if ticket is None:
                raise tickets.TicketNotFound(f"there is no ticket {ticket_id}")
            summary = tickets.summaries(session, [ticket], self.config.first_response_minutes)[0]
            return {
                **summary,
                "transcript": tickets.transcript(session, ticket.conversation_id),
                "context": {"reason": ticket.reason, "priority": ticket.priority, **(ticket.details or {})},
                "notes": tickets.notes(session, ticket_id),
                "events": tickets.events(session, ticket_id),
            }

        result = await self.database.run(work)
        try:
            attach_understanding(
                result["transcript"], await self.assistant.tracker_events(result["conversation_id"])
            )
        except Exception as error:  # noqa: BLE001 - the transcript is shown without annotations
            logger.warning("Could not read Rasa's tracker of %s: %s", result["conversation_id"], error)
        return result

    async def _publish_ticket(self, ticket_id: int) -> dict[str, Any]:
        def work(session: Session) -> dict[str, Any]:
            return tickets.summaries(
                session, [session.get(Ticket, ticket_id)], self.config.first_response_minutes
            )[0]

        summary = await self.database.run(work)
        await self.hub.publish(hub.AGENTS, {"type": "ticket", "ticket": summary})
        return summary

    @staticmethod
    def _notice(
        session: Session, change: tickets.Change, text: str, author: str = "system",
        payload: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """A line for the customer to collect (or a channel to push), written in the same
        unit of work as the transition it announces."""
        message = Message(
            conversation_id=change.conversation_id,
            author=author,
            channel=change.channel,
            text=text,
            payload=payload,
            created_at=utcnow(),
        )
        session.add(message)
        session.flush()
        return tickets.message_dict(message, {})

    async def _announce(
        self,
        change: tickets.Change,
        line: dict[str, Any],
        mode: str | None = None,
        agent: AgentRef | None = None,
    ) -> None:
        """Shows the line to agents, and hands it to the channel the customer used last."""
        await self.hub.publish(
            hub.AGENTS, {"type": "message", "ticket_id": change.ticket_id, "message": line}
        )
        event: dict[str, Any] = {
            "conversation_id": change.conversation_id,
            "channel": change.channel,
            "message": line,
        }
        if mode is not None:
            event["status"] = {"mode": mode, "agent": agent.name if agent else None}
        await self.hub.publish(hub.CUSTOMERS, event)

    async def claim(self, ticket_id: int, agent: AgentRef) -> dict[str, Any]:
        def work(session: Session) -> tuple[tickets.Change, dict[str, Any] | None]:
            change, now_claimed = tickets.claim(session, ticket_id, agent)
            if not now_claimed:
                return change, None
            return change, self._notice(session, change, self.texts["agent_joined"].format(agent=agent.name))

        change, line = await self.database.run(work)
        if line is not None:
            logger.info("Ticket %s claimed by %s", ticket_id, agent.email)
            await self._announce(change, line, mode="agent", agent=agent)
            self._in_order(
                change.conversation_id,
                lambda: self.assistant.append_events(
                    change.conversation_id, [_bot_event(line["text"], agent)]
                ),
            )
        return await self._publish_ticket(ticket_id)

    async def reply(self, ticket_id: int, agent: AgentRef, text: str) -> dict[str, Any]:
        change, message = await self.database.run(tickets.reply, ticket_id, agent, text)
        line = tickets.message_dict(message, {agent.id: agent.name})
        await self._announce(change, line)
        self._in_order(
            change.conversation_id,
            lambda: self.assistant.append_events(change.conversation_id, [_bot_event(text, agent)]),
        )
        return line

    async def note(self, ticket_id: int, agent: AgentRef, text: str) -> dict[str, Any]:
        def work(session: Session) -> dict[str, Any]:
            note: TicketNote = tickets.add_note(session, ticket_id, agent, text)
            return tickets.note_dict(note, agent)

        note = await self.database.run(work)
        await self.hub.publish(hub.AGENTS, {"type": "note", "ticket_id": ticket_id, "note": note})
        return note

    async def handback(self, ticket_id: int, agent: AgentRef) -> dict[str, Any]:
        text = self.texts["handed_back"].format(agent=agent.name)
        await self._give_back(ticket_id, agent, "handed_back", text, None)
        logger.info("Ticket %s handed back to the bot by %s", ticket_id, agent.email)
        return await self._publish_ticket(ticket_id)

    async def close(self, ticket_id: int, agent: AgentRef) -> dict[str, Any]:
        buttons = [{"title": str(score), "payload": f'/csat{{"score":{score}}}'} for score in range(1, 6)]
        await self._give_back(ticket_id, agent, "closed", self.texts["csat_question"], {"buttons": buttons})
        logger.info("Ticket %s closed by %s", ticket_id, agent.email)
        return await self._publish_ticket(ticket_id)

    async def _give_back(
        self, ticket_id: int, agent: AgentRef, outcome: str, text: str, payload: dict[str, Any] | None
    ) -> None:
        """Resolves the ticket with the customer's notice, then gives Rasa the conversation
        back, waiting until its tracker has every earlier write: the customer's next message
        must meet a bot that knows the handoff is over."""

        def work(session: Session) -> tuple[tickets.Change, dict[str, Any]]:
            change = tickets.resolve(session, ticket_id, agent, outcome)
            return change, self._notice(session, change, text, author="bot", payload=payload)

        change, line = await self.database.run(work)
        await self._announce(change, line, mode="bot")

        async def resume() -> None:
            slots = await self.assistant.tracker_slots(change.conversation_id)
            events = [_bot_event(line["text"]), *_bot_resumes(), *_remembered(change.details, slots or {})]
            await self.assistant.append_events(change.conversation_id, events)

        await self._in_order(change.conversation_id, resume)


def _count(number: int, unit: str) -> str:
    """ "1 hour", "3 hours"."""
    return f"{number} {unit}" if number == 1 else f"{number} {unit}s"


def _day_words(moment: dt.datetime, now: dt.datetime) -> str:
    """ "today at 08:00", "tomorrow at 08:00" or "on Friday at 08:00"."""
    days = (moment.date() - now.date()).days
    day = "today" if days == 0 else "tomorrow" if days == 1 else f"on {moment.strftime('%A')}"
    return f"{day} at {moment.strftime('%H:%M')}"


def _bot_event(text: str, agent: AgentRef | None = None) -> dict[str, Any]:
    metadata = {"agent": agent.email} if agent else {}
    return {"event": "bot", "text": text, "metadata": metadata, "timestamp": utcnow().timestamp()}


# What the ticket remembers of the conversation, and the slots it goes back into if Rasa's
# tracker lost them meanwhile (a session expires after an hour of silence).
REMEMBERED = {"order_id": ("order_id",), "customer_email": ("customer_email", "verified_email")}


def _remembered(details: dict[str, Any], slots: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    for key, names in REMEMBERED.items():
        value = details.get(key)
        for name in names:
            if value and slots.get(name) is None:
                events.append({"event": "slot", "name": name, "value": value})
    return events


def _bot_resumes() -> list[dict[str, Any]]:
    """The tracker events that give the conversation back to the bot (see actions/escalation.py)."""
    return [
        {"event": "slot", "name": "handed_over", "value": False},
        {"event": "slot", "name": "human_offered", "value": False},
    ]
