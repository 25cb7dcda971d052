"""How much one customer may send, so that one sender cannot make everyone else wait.

- Token buckets per sender (a web session, a Telegram chat, a REST sender) and per client
  address (token_buckets.py): a full bucket allows a burst, then messages at the sustained
  rate. A long message costs more tokens: Rasa's work grows with its length. With
  `REDIS_URL` the buckets live in Redis, shared by every gateway; otherwise in this process.
- One message of a sender's conversation at work at a time (`Conversations.turn`), a few
  more waiting their turn in order; past that the message is refused as "busy".

A refused message is not stored: the client is told how long to wait (REST: 429 with
`Retry-After`; the widget and Telegram: a notice), and the customer sends it again. No
ticket is opened for it, and the next message that is taken tells Rasa how many were
refused before it (`Refusals`): the bot does not count it as another try at being
understood (actions/assessment.py), so a flood of gibberish is not handed to a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pyrate_limiter import Rate

from token_buckets import TokenBuckets

MINUTE_MS = 60_000
PREFIX = "harbor:limit"


@dataclass(frozen=True)
class Refusal:
    """Why a message was not taken, and when to send it again."""

    scope: str  # "sender" | "address" | "busy"
    retry_after_seconds: int


def refusal_text(texts: dict[str, str], refusal: Refusal) -> str:
    """What the customer reads (bot/texts.yml)."""
    if refusal.scope == "busy":
        return texts["conversation_busy"]
    return texts["too_many_messages"].format(seconds=refusal.retry_after_seconds)


class TooManyMessages(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(f"too many messages ({refusal.scope}); retry after {refusal.retry_after_seconds} s")
        self.refusal = refusal


@dataclass(frozen=True)
class LimitSettings:
    sender_per_minute: int = 30
    sender_burst: int = 20
    address_per_minute: int = 120
    address_burst: int = 40
    # Each this many characters of a message cost one more token (2,000 characters: 5).
    chars_per_token: int = 500
    waiting_per_conversation: int = 2  # messages waiting behind the one at Rasa


class Limits:
    """The sender and address buckets (token_buckets.py: in Redis or in process)."""

    def __init__(self, settings: LimitSettings, buckets: TokenBuckets | None = None) -> None:
        self.settings = settings
        self._buckets = buckets or TokenBuckets(PREFIX)
        self._rates = {
            "sender": Rate(settings.sender_per_minute, MINUTE_MS, burst=settings.sender_burst),
            "address": Rate(settings.address_per_minute, MINUTE_MS, burst=settings.address_burst),
        }

    def cost(self, text: str) -> int:
        return 1 + len(text) // self.settings.chars_per_token

    async def admit(self, sender: str, address: str | None, text: str) -> None:
        """Takes the message's tokens from the sender's bucket, then the address's (when
        there is one); raises TooManyMessages when either is short. A bucket that refuses
        keeps its tokens."""
        weight = self.cost(text)
        checks = [("sender", sender)] + ([("address", address)] if address else [])
        for scope, key in checks:
            rate = self._rates[scope]
            decision = await self._buckets.take(f"{scope}:{key}", rate, min(weight, rate.burst))
            if not decision.allowed:
                wait_ms = decision.retry_after_ms or MINUTE_MS
                raise TooManyMessages(Refusal(scope, max(1, math.ceil(wait_ms / 1000))))

    async def close(self) -> None:
        await self._buckets.close()


def create_limits(settings: LimitSettings, redis_url: str | None) -> Limits:
    return Limits(settings, TokenBuckets.from_url(PREFIX, redis_url))


class Conversations:
    """One message of a conversation at Rasa at a time, in arrival order, and only a few
    waiting: a customer who sends five lines at once gets them answered one after another,
    and a client that floods one conversation is told it is busy."""

    def __init__(self, waiting: int) -> None:
        self._waiting = waiting
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._queued: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def turn(self, conversation_id: str) -> AsyncIterator[None]:
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = self._locks[conversation_id] = asyncio.Lock()
        queued = self._queued.get(conversation_id, 0)
        if lock.locked() and queued >= self._waiting:
            raise TooManyMessages(Refusal("busy", 3))
        self._queued[conversation_id] = queued + 1
        try:
            async with lock:
                self._queued[conversation_id] -= 1
                yield
        finally:
            if self._queued.get(conversation_id) == 0 and not lock.locked():
                del self._queued[conversation_id]


class Refusals:
    """How many messages of each sender were refused since its last one was taken, in this
    gateway (a sender's socket stays on one gateway). At most `senders` are remembered, the
    oldest forgotten first."""

    def __init__(self, senders: int = 10_000) -> None:
        self._senders = senders
        self._counts: OrderedDict[str, int] = OrderedDict()

    def refused(self, sender: str) -> None:
        self._counts[sender] = self._counts.pop(sender, 0) + 1
        if len(self._counts) > self._senders:
            self._counts.popitem(last=False)

    def taken(self, sender: str) -> int:
        """The sender's message is taken: how many were refused before it."""
        return self._counts.pop(sender, 0)
