"""Publish/subscribe between the helpdesk's writers and its live listeners.

The gateway publishes queue and ticket events (for agents' websockets) and messages for
customers (for channels that push). In one process an in-memory hub is enough; with
REDIS_URL set, events go through Redis pub/sub, so an agent connected to one gateway process
sees a ticket opened by another. Publishing never fails the caller's request: an event that
cannot be published is logged, and the console's periodic refresh catches up from the
database, which holds everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

logger = logging.getLogger(__name__)

AGENTS = "helpdesk:agents"  # queue, ticket and transcript events for the agent console
# Lines for customers written outside their own requests (agent replies, notices), and the
# conversation's mode: {"conversation_id", "channel" (the one they used last), "message"?,
# "status"?: {"mode", "agent"}}. Each channel delivers what is addressed to it.
CUSTOMERS = "helpdesk:customers"


class LocalHub:
    """Subscribers in this process; each gets its own queue, so a slow one delays no one."""

    def __init__(self, max_backlog: int = 1000) -> None:
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._max_backlog = max_backlog

    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        for queue in list(self._queues.get(topic, ())):
            if queue.full():
                logger.warning(
                    "A %s subscriber is %d events behind; dropping its oldest", topic, queue.qsize()
                )
                queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._max_backlog)
        self._queues[topic].add(queue)

        async def events() -> AsyncIterator[dict[str, Any]]:
            while True:
                yield await queue.get()

        try:
            yield events()
        finally:
            self._queues[topic].discard(queue)
            if not self._queues[topic]:
                del self._queues[topic]

    async def close(self) -> None:
        self._queues.clear()


class RedisHub:
    """Redis pub/sub: every gateway process publishes and listens through one server."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)

    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        try:
            await self._redis.publish(topic, json.dumps(event, default=str))
        except Exception as error:  # noqa: BLE001 - the database has the event; see module doc
            logger.error("Could not publish a %s event to Redis: %s", topic, error)

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(topic)
        # Wait for Redis to confirm, so that nothing published after this returns is missed.
        await pubsub.get_message(timeout=5.0)

        async def events() -> AsyncIterator[dict[str, Any]]:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
                if message is not None and message.get("type") == "message":
                    yield json.loads(message["data"])

        try:
            yield events()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe(topic)
                await pubsub.close()

    async def close(self) -> None:
        await self._redis.close()


def create_hub(redis_url: str | None) -> LocalHub | RedisHub:
    return RedisHub(redis_url) if redis_url else LocalHub()
