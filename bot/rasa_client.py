"""Rasa's HTTP API, as the gateway uses it: the REST channel, and the tracker routes that
keep the assistant's memory in step while a person holds the conversation.

With several Rasa servers (RASA_URL lists them) each conversation is pinned to one by a hash
of its id, the same in every gateway process: all of a conversation's messages and tracker
changes reach the server that holds its lock and its kept tracker, and the servers share
the SQL tracker store. When the pinned server refuses the connection (it died, or is
restarting), the message goes to the next one: nothing reached the first, so nothing is
answered twice, and with the shared tracker store and Redis lock store of scale mode the
next server continues the conversation where the first left it. A server that fails once
the message is sent (a timeout, a dropped connection) is not asked again: it may have
acted on it. A new model is loaded into every server.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import aiohttp


class RasaUnavailable(Exception):
    """Rasa did not answer, or answered with something other than a list of messages."""


class _NotReached(Exception):
    """The connection to a Rasa server was refused: nothing was sent to it."""


class RasaClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str | Sequence[str],
        timeout_seconds: float,
        token: str | None = None,
    ) -> None:
        self._session = session
        self.base_urls = (base_url,) if isinstance(base_url, str) else tuple(base_url)
        if not self.base_urls:
            raise ValueError("RasaClient needs at least one Rasa URL")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        # Rasa's API routes need the token when Rasa runs with --auth-token.
        self._params = {"token": token} if token else {}

    def base_url(self, sender: str) -> str:
        """The Rasa server that serves this conversation."""
        return self.base_urls[self._pinned(sender)]

    def _pinned(self, sender: str) -> int:
        return zlib.crc32(sender.encode("utf-8")) % len(self.base_urls)

    async def send_message(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """Sends one customer message; returns the bot's replies in Rasa's REST format."""
        replies = await self._request(
            sender,
            "POST",
            "/webhooks/rest/webhook",
            {"sender": sender, "message": text, "metadata": metadata},
            params={},  # the REST channel needs no token
        )
        if not isinstance(replies, list):
            raise RasaUnavailable("Rasa's reply is not a list of messages")
        return replies

    async def _request(
        self, sender: str, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """The conversation's server answers, or the next one when it refuses the connection."""
        first = self._pinned(sender)
        servers = [
            self.base_urls[(first + step) % len(self.base_urls)] for step in range(len(self.base_urls))
        ]
        for base_url in servers:
            try:
                return await self._call(base_url, method, path, body, params)
            except _NotReached as error:
                refused = error
        raise RasaUnavailable(f"no Rasa server took the connection ({refused.__cause__})")

    async def _call(
        self, base_url: str, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        try:
            async with self._session.request(
                method,
                f"{base_url}{path}",
                json=body,
                params=self._params if params is None else params,
                timeout=self._timeout,
            ) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {response.status} on {path}")
                return await response.json()
        except aiohttp.ClientConnectorError as error:
            raise _NotReached() from error
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise RasaUnavailable(str(error) or type(error).__name__) from error

    async def log_user_message(self, sender: str, text: str, metadata: dict[str, Any]) -> None:
        """Adds a customer message to the tracker, understood by the NLU, without an answer."""
        await self._request(
            sender,
            "POST",
            f"/conversations/{quote(sender)}/messages",
            {"text": text, "sender": "user", "metadata": metadata},
        )

    async def append_events(self, sender: str, events: list[dict[str, Any]]) -> None:
        path = f"/conversations/{quote(sender)}/tracker/events"
        await self._request(sender, "POST", path, events)

    async def tracker_events(self, sender: str) -> list[dict[str, Any]] | None:
        tracker = await self._request(
            sender,
            "GET",
            f"/conversations/{quote(sender)}/tracker",
            params={**self._params, "include_events": "ALL"},
        )
        return tracker.get("events") if isinstance(tracker, dict) else None

    async def tracker_slots(self, sender: str) -> dict[str, Any] | None:
        tracker = await self._request(
            sender,
            "GET",
            f"/conversations/{quote(sender)}/tracker",
            params={**self._params, "include_events": "NONE"},
        )
        return tracker.get("slots") if isinstance(tracker, dict) else None

    async def load_model(self, path: str) -> None:
        """Makes every Rasa server serve another model (PUT /model), one after the other; each
        answers once its model is loaded, and the others keep answering meanwhile."""
        for base_url in self.base_urls:
            try:
                async with self._session.put(
                    f"{base_url}/model",
                    json={"model_file": path},
                    params=self._params,
                    timeout=aiohttp.ClientTimeout(total=300),
                ) as response:
                    if response.status != 204:
                        refusal = await response.text()
                        raise RasaUnavailable(
                            f"Rasa at {base_url} refused the model: HTTP {response.status} {refusal}"
                        )
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                raise RasaUnavailable(str(error) or type(error).__name__) from error

    async def model_file(self) -> str | None:
        """The model Rasa serves now (GET /status of the first server)."""
        try:
            status = await self._call(self.base_urls[0], "GET", "/status")
        except _NotReached as error:
            raise RasaUnavailable(f"Rasa at {self.base_urls[0]} refused the connection") from error
        return status.get("model_file") if isinstance(status, dict) else None
