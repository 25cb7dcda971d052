"""Claiming a link code (handoff/identity.py) from a channel, with its throttle.

The widget and Telegram both let a customer type the code the other channel showed them.
Codes are short enough to type, so failed claims slow down (LINK_THROTTLE, a Backoff): after
three wrong codes of a web session or chat, or ten of a client address (web sessions are
free to make), each try waits twice as long as the one before; each channel only words the
outcome its own way.
"""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import DATABASE, LINK_THROTTLE
from handoff import identity
from handoff.auth import wait_words
from handoff.conversations import ConversationRef


class TooManyWrongCodes(Exception):
    """The claiming identity guessed wrong too often; `minutes` until it may try again."""

    def __init__(self, wait_seconds: float) -> None:
        super().__init__(f"too many wrong codes; try again in {wait_words(wait_seconds)}")


async def claim_link_code(
    app: web.Application, code: str, channel: str, external_id: str, address: str | None = None
) -> ConversationRef:
    """Joins `external_id` on `channel` to the customer who was shown `code`; returns the
    conversation it continues. Raises TooManyWrongCodes, or identity.LinkError saying why
    the code cannot be used."""
    throttle, key = app[LINK_THROTTLE], f"{channel}:{external_id}"
    wait = throttle.begin(key, address)
    if wait:
        raise TooManyWrongCodes(wait)
    succeeded = False
    try:
        linked = await app[DATABASE].run(identity.claim_code, code, channel, external_id)
        succeeded = True
    finally:
        throttle.end(key, address, succeeded=succeeded)
    return linked
