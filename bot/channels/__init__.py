"""Channels turn their own formats into IncomingMessage and the router's replies back.

Every channel hands its messages to `Router.handle`. The channels that can reach a customer
outside the customer's own request (the web's sockets, Telegram) are also `Channel`s: the
helpdesk's lines for customers are pushed through them (bot.delivery). REST has no push:
its customers collect their lines (GET /webhooks/rest/messages).
"""

from __future__ import annotations

from typing import Any, Protocol


class Channel(Protocol):
    """A channel the helpdesk's lines are pushed through."""

    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> bool:
        """Sends a line (tickets.message_dict) to the conversation's customer, if this process
        reaches them; True once it went out. The line is marked delivered first, so it goes
        out once whichever gateway process tries."""
        ...

    async def status(self, conversation_id: str, status: dict[str, Any]) -> None:
        """Tells the customer the conversation's mode changed: `{"mode", "agent"}`."""
        ...
