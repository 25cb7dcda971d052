"""Failed ownership checks, counted across conversations, so that an order's email cannot
be guessed by starting conversation after conversation.

Each failed check (an email that does not match the order, or an order or RMA number that
does not exist) takes a token from three buckets: the order's (or the number's), the
email's that was tried, and the client address's (the gateway passes it in the message's
metadata). While any of them is empty, no check is made at all: the customer is told it
cannot be checked now and a person is offered. A successful check costs nothing.

The buckets are token_buckets.py's, in Redis when REDIS_URL is set (shared by every action
server), in this process otherwise.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping

from pyrate_limiter import Rate
from rasa_sdk import Tracker

from token_buckets import TokenBuckets

logger = logging.getLogger(__name__)

HOUR_MS = 3_600_000
PREFIX = "harbor:failed-checks"
# Failed checks allowed at once, then per hour: for one order, one email, one address.
DEFAULT_PER_HOUR = {"order": 5, "email": 5, "address": 10}


def hourly_rates(environ: Mapping[str, str] = os.environ) -> dict[str, Rate]:
    """FAILED_CHECKS_PER_ORDER, _PER_EMAIL and _PER_ADDRESS, or the defaults."""
    rates = {}
    for scope, default in DEFAULT_PER_HOUR.items():
        per_hour = int(environ.get(f"FAILED_CHECKS_PER_{scope.upper()}", default))
        rates[scope] = Rate(per_hour, HOUR_MS, burst=per_hour)
    return rates


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
    def __init__(self, buckets: TokenBuckets | None = None, rates: dict[str, Rate] | None = None) -> None:
        self._buckets = buckets or TokenBuckets(PREFIX)
        self._rates = rates or hourly_rates({})

    async def blocked(self, keys: list[tuple[str, str]]) -> bool:
        """True when one of the buckets has no failure left to spend (nothing is spent)."""
        for scope, key in keys:
            if not await self._buckets.has(f"{scope}:{key}", self._rates[scope]):
                logger.warning("Ownership checks for this %s stopped for a while: too many failed", scope)
                return True
        return False

    async def failed(self, keys: list[tuple[str, str]]) -> None:
        """Spends one failure from each bucket."""
        for scope, key in keys:
            await self._buckets.take(f"{scope}:{key}", self._rates[scope])


@functools.lru_cache(maxsize=1)
def get_failed_checks() -> FailedChecks:
    return FailedChecks(TokenBuckets.from_url(PREFIX, os.environ.get("REDIS_URL")), hourly_rates())
