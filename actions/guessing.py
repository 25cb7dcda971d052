"""Failed ownership checks, counted across conversations, so that an order's email cannot
be guessed by starting conversation after conversation.

Each failed check (an email that does not match the order, or an order or RMA number that
does not exist) takes a token from three buckets: the order's (or the number's), the
email's that was tried, and the client address's (the gateway passes it in the message's
metadata). While any of them is empty, no check is made at all: the customer is told it
cannot be checked now and a person is offered. A successful check costs nothing.

The buckets are pyrate-limiter's token buckets, in Redis when REDIS_URL is set (shared by
every action server), in this process otherwise.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import time
from collections import OrderedDict
from typing import Any

from pyrate_limiter import Rate
from pyrate_limiter.abstracts.algorithm import TokenBucket
from pyrate_limiter.buckets.redis_state import RedisStateStore
from pyrate_limiter.buckets.state_bucket import InMemoryStateStore
from rasa_sdk import Tracker
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

HOUR_MS = 3_600_000
# Failed checks allowed at once, then per hour: for one order, one email, one address.
RATES = {
    "order": Rate(5, HOUR_MS, burst=5),
    "email": Rate(5, HOUR_MS, burst=5),
    "address": Rate(10, HOUR_MS, burst=10),
}
KEPT = 50_000


def check_keys(tracker: Tracker, reference: str | None, email: str | None) -> list[tuple[str, str]]:
    """The buckets one check of `email` against `reference` (an order or RMA number) draws on."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    address = metadata.get("address") if isinstance(metadata, dict) else None
    keys = [("order", reference.upper())] if reference else []
    if email:
        keys.append(("email", email.lower()))
    if isinstance(address, str) and address:
        keys.append(("address", address))
    return keys


class FailedChecks:
    def __init__(self, redis: Any = None) -> None:
        self._redis = redis
        self._algorithm = TokenBucket()
        self._local: OrderedDict[str, InMemoryStateStore] = OrderedDict()

    def _local_store(self, scope: str, key: str) -> InMemoryStateStore:
        name = f"{scope}:{key}"
        store = self._local.get(name)
        if store is None:
            store = self._local[name] = InMemoryStateStore()
            while len(self._local) > KEPT:
                self._local.popitem(last=False)
        self._local.move_to_end(name)
        return store

    async def _run(self, scope: str, key: str, work: Any) -> Any:
        """`work(store, now)` on the shared store, or on this process's when Redis fails."""
        if self._redis is not None:
            try:
                store = RedisStateStore(self._redis, f"harbor:failed-checks:{scope}:{key}")
                result = work(store, int(time.time() * 1000))
                return await result if inspect.isawaitable(result) else result
            except (RedisError, OSError) as error:
                logger.warning("Failed checks counted in this process only: Redis failed (%s)", error)
        result = work(self._local_store(scope, key), int(time.monotonic() * 1000))
        return await result if inspect.isawaitable(result) else result

    async def blocked(self, keys: list[tuple[str, str]]) -> bool:
        """True when one of the buckets has no failure left to spend (nothing is spent)."""
        for scope, key in keys:
            rates = [RATES[scope]]

            async def spare(store: Any, now: int, rates: list[Rate] = rates) -> bool:
                state = store.read(self._algorithm, rates)
                state = await state if inspect.isawaitable(state) else state
                return self._algorithm.step(rates, state, now, 1)[1].allowed

            if not await self._run(scope, key, spare):
                logger.warning("Ownership checks for this %s stopped for a while: too many failed", scope)
                return True
        return False

    async def failed(self, keys: list[tuple[str, str]]) -> None:
        """Spends one failure from each bucket."""
        for scope, key in keys:
            await self._run(
                scope,
                key,
                lambda store, now, scope=scope: store.check(self._algorithm, [RATES[scope]], now, 1),
            )


@functools.lru_cache(maxsize=1)
def get_failed_checks() -> FailedChecks:
    url = os.environ.get("REDIS_URL")
    if not url:
        return FailedChecks()
    import redis.asyncio as redis

    return FailedChecks(redis.from_url(url))


def retry_minutes() -> int:
    """How long, at most, until a spent bucket allows one more try (for the reply)."""
    return max(1, math.ceil(min(rate.interval / rate.limit for rate in RATES.values()) / 60_000))
