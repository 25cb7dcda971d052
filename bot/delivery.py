"""Delivers what the helpdesk writes for customers outside their own requests (an agent's
reply, "Alex has joined", the rating question) to the channel each customer used last.

Every gateway process listens on the hub's customer topic. The web channel emits to the
conversation's sockets connected to this process (a customer who is away gets the lines when
they connect again); Telegram sends from whichever process first claims the line in the
database, so it goes out once; REST customers collect their lines themselves
(GET /webhooks/rest/messages).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from bot.appkeys import HUB, SOCKETIO, TELEGRAM
from bot.channels import Channel
from handoff import hub

logger = logging.getLogger(__name__)


def channels(app: web.Application) -> dict[str, Channel]:
    """The push channels on in this process, by the name the transcript gives them."""
    found = {"socketio": app.get(SOCKETIO), "telegram": app.get(TELEGRAM)}
    return {name: channel for name, channel in found.items() if channel is not None}


async def deliver(app: web.Application, event: dict[str, Any]) -> None:
    conversation_id = event["conversation_id"]
    for channel in channels(app).values():
        if event.get("status"):
            await channel.status(conversation_id, event["status"])
    channel = channels(app).get(event.get("channel") or "")
    if channel is not None and event.get("message"):
        await channel.deliver(conversation_id, event["message"])


async def deliver_forever(app: web.Application) -> None:
    while True:
        try:
            async with app[HUB].subscribe(hub.CUSTOMERS) as events:
                async for event in events:
                    try:
                        await deliver(app, event)
                    except Exception:  # noqa: BLE001 - the line stays undelivered, not lost
                        logger.exception(
                            "Could not deliver a line to conversation %s", event.get("conversation_id")
                        )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - Redis went away: listen again shortly
            logger.warning("Customer deliveries stopped (%s); listening again in 2 s", error)
            await asyncio.sleep(2)
