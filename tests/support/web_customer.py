"""A customer on the web channel, as a widget is one: python-socketio's client speaking Rasa's
socketio protocol to the gateway. Used by the channel tests and the channels benchmark."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import socketio


class NotConnected(ConnectionError):
    """A message could not be sent: the connection had dropped before."""


def loopback_addresses(customers: int) -> list[str]:
    """One loopback address per customer (127.0.0.11 onwards), as customers have their own:
    nginx keeps each address on one gateway."""
    return [f"127.0.{(10 + n) // 250}.{(10 + n) % 250 + 1}" for n in range(customers)]


def connect_from(client: socketio.AsyncClient, source: str) -> aiohttp.ClientSession:
    """Makes `client` connect from the loopback address `source`; returns the HTTP session
    it uses, for the caller to close."""
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))
    client.eio.http, client.eio.external_http = http, True
    return http


class WebCustomer:
    def __init__(
        self,
        url: str,
        session_id: str | None = None,
        custom_data: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        self.url = url
        self.session_id = session_id
        self.custom_data = custom_data or {}  # sent with every message, as a widget's customData
        # The address the customer connects from (127.0.0.x): nginx keeps each address on one
        # gateway, so customers from several addresses spread over the gateways.
        self.source = source
        self._http: aiohttp.ClientSession | None = None
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[str, Any]] = []  # (event, payload), everything the gateway sent
        self._changed = asyncio.Event()
        self._turn_done: asyncio.Queue[float] = asyncio.Queue()
        for event in (
            "bot_uttered",
            "helpdesk_status",
            "link_code",
            "link_result",
            "error",
            "session_confirm",
        ):
            self.client.on(event, self._recorder(event))
        self.client.on("typing", self._typing)
        self.disconnected = asyncio.Event()  # the gateway went away (a crash, say)
        self.client.on("disconnect", self._disconnected)

    async def _disconnected(self, *_: Any) -> None:
        self.disconnected.set()
        self._turn_done.put_nowait(-1.0)  # a turn being waited for ends without its replies

    def _recorder(self, event: str) -> Callable[[Any], Any]:
        async def record(data: Any = None) -> None:
            self.received.append((event, data))
            self._changed.set()

        return record

    async def _typing(self, data: dict[str, Any]) -> None:
        if not data.get("on"):
            self._turn_done.put_nowait(time.perf_counter())

    async def connect(self) -> str:
        if self.source is not None and self._http is None:
            self._http = connect_from(self.client, self.source)
        await self.client.connect(self.url, transports=["websocket"], socketio_path="socket.io")
        await self.client.emit("session_request", {"session_id": self.session_id})
        confirmed = await self.wait_for("session_confirm")
        self.session_id = confirmed if isinstance(confirmed, str) else confirmed["session_id"]
        return self.session_id

    async def wait_for(
        self, event: str, where: Callable[[Any], bool] = lambda _: True, timeout: float = 30
    ) -> Any:
        """The first payload of `event` not yet taken that matches; waits for it to come."""
        deadline = time.monotonic() + timeout
        while True:
            for index, (name, data) in enumerate(self.received):
                if name == event and where(data):
                    del self.received[index]
                    return data
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {event} came; received {self.received}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                continue

    async def say(self, text: str) -> list[dict[str, Any]]:
        """Sends a message; returns the replies (every bot_uttered until the turn ends).
        Raises ConnectionError when the connection drops before the turn ends."""
        await self.send(text)
        if await asyncio.wait_for(self._turn_done.get(), 60) < 0:
            raise ConnectionError("the gateway closed the connection")
        replies = [data for name, data in self.received if name == "bot_uttered"]
        self.received = [(name, data) for name, data in self.received if name != "bot_uttered"]
        return replies

    async def send(self, text: str) -> None:
        """Raises NotConnected, having sent nothing, when the connection is gone."""
        try:
            await self.client.emit(
                "user_uttered",
                {"message": text, "session_id": self.session_id, "customData": self.custom_data},
            )
        except socketio.exceptions.BadNamespaceError as error:
            raise NotConnected("the connection to the gateway is gone") from error

    async def timed_say(self, text: str) -> float:
        started = time.perf_counter()
        await self.send(text)
        return await asyncio.wait_for(self._turn_done.get(), 60) - started

    async def request_link(self) -> dict[str, Any]:
        await self.client.emit("link_request", {})
        return await self.wait_for("link_code")

    async def claim(self, code: str) -> dict[str, Any]:
        await self.client.emit("link_claim", {"code": code})
        return await self.wait_for("link_result")

    async def close(self) -> None:
        await self.client.disconnect()
        if self._http is not None:
            await self._http.close()


def texts_of(replies: list[dict[str, Any]]) -> str:
    return "\n".join(reply.get("text") or "" for reply in replies)
