"""Rasa's REST channel format on the gateway: POST /webhooks/rest/webhook.

Body `{"sender": str, "message": str, "metadata": {...}?}`; reply: the list of bot messages
Rasa's REST channel returns. Bad input gets a 4xx with a message saying what is wrong.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.appkeys import ROUTER, SETTINGS
from bot.errors import json_error
from bot.router import HelpdeskUnavailable, IncomingMessage

CHANNEL = "rest"
MAX_SENDER_CHARS = 255


class InvalidMessage(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_body(raw: bytes, max_message_chars: int) -> IncomingMessage:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidMessage(f"body is not valid UTF-8 (byte {error.start})") from error
    if not text.strip():
        raise InvalidMessage('body is empty; send JSON like {"sender": "...", "message": "..."}')
    try:
        body: Any = json.loads(text)
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
        if "\x00" in value or not _encodable(value):
            raise InvalidMessage(
                f"'{name}' contains a character that is not valid text (NUL or a lone surrogate)"
            )
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise InvalidMessage("'metadata' must be a JSON object")
    return IncomingMessage(channel=CHANNEL, sender=sender, text=message.strip(), metadata=metadata)


async def webhook(request: web.Request) -> web.Response:
    try:
        incoming = parse_body(await request.read(), request.app[SETTINGS].max_message_chars)
    except InvalidMessage as error:
        return json_error(error.status, str(error))
    try:
        replies = await request.app[ROUTER].handle(incoming)
    except HelpdeskUnavailable as error:
        return json_error(503, f"the helpdesk is unavailable: {error}")
    return web.json_response(replies)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/rest/webhook", webhook)
