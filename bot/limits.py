"""How much one customer may send, so that one sender cannot make everyone else wait.

- Token buckets per sender (a web session, a Telegram chat, a REST sender) and per client
  address, from pyrate-limiter (`TokenBucket`): a full bucket allows a burst, then messages
  at the sustained rate. A long message costs more tokens: Rasa's work grows with its length.
  With `REDIS_URL` the buckets live in Redis, shared by every gateway (one small hash per
  key that expires by itself); otherwise in this process.
- One message of a sender's conversation at work at a time (`Conversations.turn`), a few
  more waiting their turn in order; past that the message is refused as "busy".

A refused message is not stored: the client is told how long to wait (REST: 429 with
`Retry-After`; the widget and Telegram: a notice), and the customer sends it again. No
ticket is opened for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pyrate_limiter import Rate
from pyrate_limiter.abstracts.algorithm import Decision, TokenBucket
from pyrate_limiter.buckets.redis_state import RedisStateStore
from pyrate_limiter.buckets.state_bucket import InMemoryStateStore
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

MINUTE_MS = 60_000
# Keys kept by the in-process store; the least recently used go first (a bucket at rest is
# full again after burst / rate, so forgetting an idle sender loses nothing that matters).
KEPT_BUCKETS = 50_000


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


class _MemoryStores:
    """One in-process token-bucket state per key, the least recently used forgotten first."""

    def __init__(self) -> None:
        self._stores: OrderedDict[str, InMemoryStateStore] = OrderedDict()

    def get(self, key: str) -> InMemoryStateStore:
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = InMemoryStateStore()
            while len(self._stores) > KEPT_BUCKETS:
                self._stores.popitem(last=False)
        else:
            self._stores.move_to_end(key)
        return store


class Limits:
    """The sender and address buckets, in Redis (`redis`, an asyncio client) or in process."""

    def __init__(self, settings: LimitSettings, redis: Any = None) -> None:
        self.settings = settings
        self._algorithm = TokenBucket()
        self._rates = {
            "sender": [Rate(settings.sender_per_minute, MINUTE_MS, burst=settings.sender_burst)],
            "address": [Rate(settings.address_per_minute, MINUTE_MS, burst=settings.address_burst)],
        }
        self._redis = redis
        self._memory = _MemoryStores()
        self._warned_at = -math.inf

    def cost(self, text: str) -> int:
        return 1 + len(text) // self.settings.chars_per_token

    async def admit(self, sender: str, address: str | None, text: str) -> None:
        """Takes the message's tokens from the sender's bucket, then the address's (when
        there is one); raises TooManyMessages when either is short. A bucket that refuses
        keeps its tokens."""
        weight = self.cost(text)
        checks = [("sender", sender)] + ([("address", address)] if address else [])
        for scope, key in checks:
            rates = self._rates[scope]
            weight_here = min(weight, rates[0].burst)
            decision = await self._check(scope, key, rates, weight_here)
            if not decision.allowed:
                wait_ms = decision.retry_after_ms or MINUTE_MS
                raise TooManyMessages(Refusal(scope, max(1, math.ceil(wait_ms / 1000))))

    async def _check(self, scope: str, key: str, rates: list[Rate], weight: int) -> Decision:
        if self._redis is not None:
            store = RedisStateStore(self._redis, f"harbor:limit:{scope}:{key}")
            try:
                decision = store.check(self._algorithm, rates, int(time.time() * 1000), weight)
                return await decision if inspect.isawaitable(decision) else decision
            except (RedisError, OSError) as error:
                # Redis is away: this gateway limits on its own until it is back.
                self._warn_once(f"Rate limits fall back to this process: Redis failed ({error})")
        local = self._memory.get(f"{scope}:{key}")
        decision = local.check(self._algorithm, rates, int(time.monotonic() * 1000), weight)
        assert isinstance(decision, Decision)
        return decision

    def _warn_once(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:
            self._warned_at = now
            logger.warning(message)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.close()


def create_limits(settings: LimitSettings, redis_url: str | None) -> Limits:
    if not redis_url:
        return Limits(settings)
    import redis.asyncio as redis

    return Limits(settings, redis.from_url(redis_url))


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
