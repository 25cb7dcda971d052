"""Named token buckets (pyrate-limiter's TokenBucket), in Redis or in this process.

Used by the gateway's rate limits (bot/limits.py) and the action server's count of failed
ownership checks (actions/guessing.py). With a Redis client, each bucket is one small hash
(`<prefix>:<name>`) that expires by itself, shared by every process that uses the same
Redis; if Redis fails, the process falls back to its own buckets for that call and logs it
once a minute. Without Redis, the buckets live in the process, the least recently used
forgotten first (a bucket at rest refills, so forgetting an idle one loses nothing).
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections import OrderedDict
from typing import Any

from pyrate_limiter import Rate
from pyrate_limiter.abstracts.algorithm import Decision, TokenBucket
from pyrate_limiter.buckets.redis_state import RedisStateStore
from pyrate_limiter.buckets.state_bucket import InMemoryStateStore
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEPT = 50_000


class TokenBuckets:
    def __init__(self, prefix: str, redis: Any = None) -> None:
        self._prefix = prefix
        self._redis = redis  # an asyncio client (redis.asyncio), or None
        self._algorithm = TokenBucket()
        self._local: OrderedDict[str, InMemoryStateStore] = OrderedDict()
        self._warned_at = -math.inf

    @classmethod
    def from_url(cls, prefix: str, redis_url: str | None) -> TokenBuckets:
        if not redis_url:
            return cls(prefix)
        import redis.asyncio as redis

        return cls(prefix, redis.from_url(redis_url))

    async def take(self, name: str, rate: Rate, weight: int = 1) -> Decision:
        """Spends `weight` tokens if the bucket has them; the decision says when it will."""
        return await self._run(name, lambda store, now: store.check(self._algorithm, [rate], now, weight))

    async def has(self, name: str, rate: Rate, weight: int = 1) -> bool:
        """Whether the bucket has `weight` tokens, spending none."""

        async def spare(store: Any, now: int) -> bool:
            state = store.read(self._algorithm, [rate])
            state = await state if inspect.isawaitable(state) else state
            return self._algorithm.step([rate], state, now, weight)[1].allowed

        return bool(await self._run(name, spare))

    async def _run(self, name: str, work: Any) -> Any:
        """`work(store, now)` on the shared store, or on this process's when Redis fails."""
        if self._redis is not None:
            try:
                store = RedisStateStore(self._redis, f"{self._prefix}:{name}")
                result = work(store, int(time.time() * 1000))
                return await result if inspect.isawaitable(result) else result
            except (RedisError, OSError) as error:
                self._warn(f"Token buckets {self._prefix} fall back to this process: Redis failed ({error})")
        result = work(self._local_store(name), int(time.monotonic() * 1000))
        return await result if inspect.isawaitable(result) else result

    def _local_store(self, name: str) -> InMemoryStateStore:
        store = self._local.get(name)
        if store is None:
            store = self._local[name] = InMemoryStateStore()
            while len(self._local) > KEPT:
                self._local.popitem(last=False)
        else:
            self._local.move_to_end(name)
        return store

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:
            self._warned_at = now
            logger.warning(message)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.close()
