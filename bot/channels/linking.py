"""Claiming a link code (handoff/identity.py) from a channel, with its throttle.

The widget and Telegram both let a customer type the code the other channel showed them.
Codes are short enough to type, so failed claims are limited per claiming web session or
chat (LINK_THROTTLE: the login throttle's rules, 5 per 10 minutes); each channel only words
the outcome its own way.
"""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import DATABASE, LINK_THROTTLE
from handoff import identity
from handoff.conversations import ConversationRef


class TooManyWrongCodes(Exception):
    """The claiming identity guessed wrong too often; `minutes` until it may try again."""

    def __init__(self, wait_seconds: float) -> None:
        self.minutes = max(1, round(wait_seconds / 60))
        super().__init__(f"too many wrong codes; try again in {self.minutes} minutes")


async def claim_link_code(app: web.Application, code: str, channel: str, external_id: str) -> ConversationRef:
    """Joins `external_id` on `channel` to the customer who was shown `code`; returns the
    conversation it continues. Raises TooManyWrongCodes, or identity.LinkError saying why
    the code cannot be used."""
    throttle, key = app[LINK_THROTTLE], f"{channel}:{external_id}"
    wait = throttle.begin(key, None)
    if wait:
        raise TooManyWrongCodes(wait)
    succeeded = False
    try:
        linked = await app[DATABASE].run(identity.claim_code, code, channel, external_id)
        succeeded = True
    finally:
        throttle.end(key, None, succeeded=succeeded)
    return linked
