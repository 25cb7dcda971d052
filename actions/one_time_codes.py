"""One-time codes that prove a customer reads the order's mailbox, asked before an order is
cancelled (actions/cancellation.py).

A code is six random digits, kept only as a salted SHA-256 digest under its subject (what it
confirms, in which conversation: "cancel:<sender>:<order>"), for ONE_TIME_CODE_MINUTES
(default 10), with ONE_TIME_CODE_TRIES (default 3) wrong entries allowed; a new code for the
same subject replaces the old one. Codes mailed per order are limited too
(ONE_TIME_CODES_PER_ORDER per hour, default 5), so the chat cannot flood an owner's mailbox.
A code entered right is `confirmed`; the action it guards then `consume`s it, once.

Kept in Redis when REDIS_URL is set (every action server sees every code), in this process
otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pyrate_limiter import Rate

from token_buckets import TokenBuckets

PREFIX = "harbor:codes"
DIGITS = 6
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class CodeRules:
    minutes: int = 10
    tries: int = 3
    per_order_per_hour: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> CodeRules:
        return cls(
            minutes=int(environ.get("ONE_TIME_CODE_MINUTES", cls.minutes)),
            tries=int(environ.get("ONE_TIME_CODE_TRIES", cls.tries)),
            per_order_per_hour=int(environ.get("ONE_TIME_CODES_PER_ORDER", cls.per_order_per_hour)),
        )


@dataclass(frozen=True)
class Check:
    outcome: Literal["confirmed", "wrong", "spent"]  # spent: no code (left), or none pending
    tries_left: int = 0


def digest(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def normalise_code(text: str) -> str | None:
    """The code in what the customer typed ("482 913", "482-913."), if it has its shape."""
    digits = "".join(ch for ch in text if ch.isdigit())
    rest = "".join(ch for ch in text if not ch.isdigit() and ch not in " -.")
    return digits if len(digits) == DIGITS and not rest else None


class OneTimeCodes:
    def __init__(
        self, rules: CodeRules | None = None, redis: Any = None, sends: TokenBuckets | None = None
    ) -> None:
        self.rules = rules or CodeRules()
        self._redis = redis  # an asyncio Redis client, or None: this process's dict
        self._local: dict[str, tuple[float, dict[str, Any]]] = {}
        self._sends = sends or TokenBuckets(f"{PREFIX}:sent")
        self._send_rate = Rate(self.rules.per_order_per_hour, HOUR_MS, burst=self.rules.per_order_per_hour)

    async def issue(self, subject: str, order: str) -> str | None:
        """A new code for `subject`, or None when `order` had its codes for this hour."""
        decision = await self._sends.take(f"order:{order}", self._send_rate)
        if not decision.allowed:
            return None
        code = f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"
        salt = secrets.token_hex(8)
        await self._save(subject, {"salt": salt, "digest": digest(salt, code), "tries": self.rules.tries})
        return code

    async def check(self, subject: str, typed: str) -> Check:
        record = await self._load(subject)
        if record is None or int(record["tries"]) <= 0:
            return Check("spent")
        code = normalise_code(typed) or ""
        if hmac.compare_digest(digest(record["salt"], code), record["digest"]):
            await self._update(subject, {"confirmed": "1", "tries": 0})
            return Check("confirmed")
        tries = await self._spend_try(subject)
        return Check("wrong", tries) if tries > 0 else Check("spent")

    async def consume(self, subject: str) -> bool:
        """True once for a code entered right (and not yet used); the code is gone after."""
        record = await self._load(subject)
        await self._delete(subject)
        return bool(record and record.get("confirmed") == "1")

    # Storage: a Redis hash that expires by itself, or (expiry, record) in this process.
    async def _save(self, subject: str, record: dict[str, Any]) -> None:
        if self._redis is None:
            self._local[subject] = (time.monotonic() + self.rules.minutes * 60, dict(record))
            return
        key = f"{PREFIX}:{subject}"
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.delete(key).hset(key, mapping=record).expire(key, self.rules.minutes * 60).execute()

    async def _load(self, subject: str) -> dict[str, Any] | None:
        if self._redis is None:
            expires, record = self._local.get(subject, (0.0, {}))
            return record if expires > time.monotonic() else None
        record = await self._redis.hgetall(f"{PREFIX}:{subject}")
        return {key.decode(): value.decode() for key, value in record.items()} or None

    async def _update(self, subject: str, changes: dict[str, Any]) -> None:
        if self._redis is None:
            if subject in self._local:
                self._local[subject][1].update(changes)
            return
        key = f"{PREFIX}:{subject}"
        if await self._redis.exists(key):
            await self._redis.hset(key, mapping=changes)

    async def _spend_try(self, subject: str) -> int:
        """One wrong entry: the tries left after it (atomic in Redis, so no two count as one)."""
        if self._redis is None:
            record = self._local[subject][1]
            record["tries"] = int(record["tries"]) - 1
            return record["tries"]
        key = f"{PREFIX}:{subject}"
        async with self._redis.pipeline(transaction=True) as pipe:
            tries, ttl = await pipe.hincrby(key, "tries", -1).ttl(key).execute()
        if ttl == -1:  # it expired just now: the decrement made a stray hash
            await self._redis.delete(key)
        return int(tries)

    async def _delete(self, subject: str) -> None:
        if self._redis is None:
            self._local.pop(subject, None)
        else:
            await self._redis.delete(f"{PREFIX}:{subject}")


@functools.lru_cache(maxsize=1)
def get_one_time_codes() -> OneTimeCodes:
    redis_url = os.environ.get("REDIS_URL")
    redis = None
    if redis_url:
        import redis.asyncio as aioredis

        redis = aioredis.from_url(redis_url)
    return OneTimeCodes(CodeRules.from_env(), redis, TokenBuckets(f"{PREFIX}:sent", redis))
