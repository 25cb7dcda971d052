"""Rasa's REST channel format on the gateway: POST /webhooks/rest/webhook.

Body `{"sender": str, "message": str, "metadata": {...}?}`; reply: the list of bot messages
Rasa's REST channel returns. Bad input gets a 4xx with a message saying what is wrong; a
sender or an address over its rate limit gets 429 with `Retry-After` (bot/limits.py).
GET /webhooks/rest/messages?sender=S: what an agent sent S since S last asked (REST has
no push; the web and Telegram channels push instead).

The REST channel is for the shop's own back end, since the sender id is the customer's
only name here. With REST_CHANNEL_SECRET set, both routes need either
`Authorization: Bearer <secret>` (the back end itself) or `X-Sender-Signature: <hex
HMAC-SHA256 of the sender id with the secret>` (a client the back end gave its own
signature), compared in constant time; anything else gets 401. Without the secret, only
requests from this machine that no proxy forwarded are served (development, a back end on
the same host); others get 403 saying so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import json
import logging
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.appkeys import DATABASE, ROUTER, SETTINGS, TEXTS
from bot.errors import json_error
from bot.limits import TooManyMessages, refusal_text
from bot.router import HelpdeskUnavailable, IncomingMessage
from handoff import conversations
from handoff.addresses import client_address
from handoff.api import TooDeep, loads_limited, plain_text
from handoff.db import Database

logger = logging.getLogger(__name__)

CHANNEL = "rest"
MAX_SENDER_CHARS = 255


class InvalidMessage(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_body(raw: bytes, max_message_chars: int) -> IncomingMessage:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidMessage(f"body is not valid UTF-8 (byte {error.start})") from error
    if not text.strip():
        raise InvalidMessage('body is empty; send JSON like {"sender": "...", "message": "..."}')
    try:
        body: Any = loads_limited(text)
    except TooDeep as error:
        raise InvalidMessage(str(error)) from error
    except json.JSONDecodeError as error:
        raise InvalidMessage(
            f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from error
    if not isinstance(body, dict):
        raise InvalidMessage("body must be a JSON object with 'sender' and 'message'")
    sender, message, metadata = body.get("sender"), body.get("message"), body.get("metadata", {})
    if not isinstance(sender, str) or not sender.strip():
        raise InvalidMessage("'sender' must be a non-empty string")
    if len(sender) > MAX_SENDER_CHARS:
        raise InvalidMessage(f"'sender' must be at most {MAX_SENDER_CHARS} characters")
    if not isinstance(message, str):
        raise InvalidMessage("'message' must be a string")
    if not message.strip():
        raise InvalidMessage("'message' is empty")
    if len(message) > max_message_chars:
        raise InvalidMessage(
            f"'message' has {len(message)} characters; the limit is {max_message_chars}", status=413
        )
    for name, value in (("sender", sender), ("message", message)):
        if not plain_text(value):
            raise InvalidMessage(
                f"'{name}' contains a character that is not valid text (NUL or a lone surrogate)"
            )
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise InvalidMessage("'metadata' must be a JSON object")
    return IncomingMessage(channel=CHANNEL, sender=sender, text=message.strip(), metadata=metadata)


def sender_signature(secret: str, sender: str) -> str:
    """What a client sends as X-Sender-Signature for `sender`."""
    return hmac.new(secret.encode("utf-8"), sender.encode("utf-8"), hashlib.sha256).hexdigest()


def _refused(request: web.Request, sender: str, address: str | None) -> web.Response | None:
    """401/403 unless the request may speak for `sender` (see the module's docstring)."""
    secret = request.app[SETTINGS].rest_secret
    if secret is None:
        if address is None and _is_loopback(request.remote):  # this machine, not forwarded
            return None
        return json_error(403, "the REST channel serves this machine only until REST_CHANNEL_SECRET is set")
    bearer = request.headers.get("Authorization", "")
    if bearer.startswith("Bearer ") and hmac.compare_digest(bearer[7:].encode(), secret.encode()):
        return None
    signature = request.headers.get("X-Sender-Signature", "")
    if signature and hmac.compare_digest(signature.encode(), sender_signature(secret, sender).encode()):
        return None
    return json_error(
        401, "give Authorization: Bearer <REST channel secret>, or the sender's X-Sender-Signature"
    )


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _address(request: web.Request) -> str | None:
    settings = request.app[SETTINGS]
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), settings.trusted_proxies)


async def webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    try:
        incoming = parse_body(await request.read(), settings.max_message_chars)
    except InvalidMessage as error:
        return json_error(error.status, str(error))
    address = _address(request)
    refused = _refused(request, incoming.sender, address)
    if refused is not None:
        return refused
    try:
        replies = await request.app[ROUTER].handle(dataclasses.replace(incoming, address=address))
    except HelpdeskUnavailable as error:
        return json_error(503, f"the helpdesk is unavailable: {error}")
    except TooManyMessages as error:
        refusal = error.refusal
        response = json_error(429, refusal_text(request.app[TEXTS], refusal))
        response.headers["Retry-After"] = str(refusal.retry_after_seconds)
        return response
    return web.json_response(replies)


async def collect(database: Database, sender: str, after: int | None = None) -> list[dict[str, Any]]:
    """What an agent (or the helpdesk) sent `sender` since they last collected, in Rasa's
    REST format plus each line's `id`; an unknown sender has nothing waiting. See
    conversations.undelivered for `after`."""

    def work(session: Session) -> list[dict[str, Any]]:
        conversation = conversations.find_conversation(session, CHANNEL, sender, touch=False)
        if conversation is None:
            return []
        return [
            {"recipient_id": sender, "id": message.id, "text": message.text, **(message.payload or {})}
            for message in conversations.undelivered(session, conversation.id, after)
        ]

    return await database.run(work)


async def messages(request: web.Request) -> web.Response:
    """What an agent (or the helpdesk) sent the customer since they last asked. With
    `after=<id of the last line received>`, lines are acknowledged by the next request rather
    than by being sent, so a client that lost a response gets them again."""
    sender = request.query.get("sender", "")
    if not sender.strip():
        return json_error(400, "give the sender: GET /webhooks/rest/messages?sender=...")
    if len(sender) > MAX_SENDER_CHARS:
        return json_error(400, f"'sender' must be at most {MAX_SENDER_CHARS} characters")
    if not plain_text(sender):
        return json_error(
            400, "'sender' contains a character that is not valid text (NUL or a lone surrogate)"
        )
    refused = _refused(request, sender, _address(request))
    if refused is not None:
        return refused
    after = request.query.get("after")
    if after is not None and not (after.isascii() and after.isdigit() and len(after) < 12):
        return json_error(400, "'after' must be the id of the last line received")
    try:
        lines = await collect(request.app[DATABASE], sender, int(after) if after else None)
        return web.json_response(lines)
    except SQLAlchemyError as error:
        logger.error("Could not read the messages waiting for %s: %s", sender, error)
        return json_error(503, "the helpdesk is unavailable; ask again")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/rest/webhook", webhook)
    app.router.add_get("/webhooks/rest/messages", messages)
