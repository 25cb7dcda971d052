"""Delivers what the helpdesk writes for customers outside their own requests (an agent's
reply, "Alex has joined", the rating question) to the channel each customer used last.

Every gateway process listens on the hub's customer topic. The web channel emits to the
conversation's sockets connected to this process (a customer who is away gets the lines when
they connect again); Telegram sends from whichever process first claims the line in the
database, so it goes out once; REST customers collect their lines themselves
(GET /webhooks/rest/messages).

Every gateway also looks, every `UNANSWERED_CHECK_SECONDS`, for customer messages that no
gateway answered: one that was killed while Rasa worked on a message stored it but never
stored a reply. After twice Rasa's timeout, such a message gets the apology and a ticket,
as when Rasa fails (Helpdesk.answer_unanswered), and the apology reaches the customer like
an agent's line: live, or when they reconnect.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from aiohttp import web

from bot.appkeys import HUB, SETTINGS, SOCKETIO, TELEGRAM
from bot.channels import Channel
from handoff import api, hub

logger = logging.getLogger(__name__)

UNANSWERED_CHECK_SECONDS = 10.0


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


async def answer_unanswered_forever(app: web.Application) -> None:
    after = dt.timedelta(seconds=2 * app[SETTINGS].rasa_timeout_seconds)
    while True:
        await asyncio.sleep(UNANSWERED_CHECK_SECONDS)
        try:
            await app[api.HELPDESK].answer_unanswered(after)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the database is away: look again next time
            logger.warning("Could not look for unanswered messages: %s", error)
