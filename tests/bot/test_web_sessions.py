"""Web sessions are issued by the gateway: an id a client makes up, or one issued for another
site, starts a new, empty session, so another customer's session id read from elsewhere
gives nothing of theirs. The customer's own id, from the page it was issued for, keeps the
conversation across reconnects."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from bot.app import create_app
from bot.settings import Settings
from tests.support.gateway import FakeRasa

SHOP = "https://shop.example"
EVIL = "https://evil.example"


class Socket:
    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, asyncio.Queue[Any]] = {}
        for name in ("session_confirm", "bot_uttered", "helpdesk_status", "error", "link_result"):
            self.events[name] = asyncio.Queue()
            self.client.on(name, self.events[name].put_nowait)

    async def open(self, base: str, origin: str, session_id: str | None) -> str:
        await self.client.connect(
            base, transports=["websocket"], socketio_path="socket.io", headers={"Origin": origin}
        )
        await self.client.emit("session_request", {"session_id": session_id})
        return await asyncio.wait_for(self.events["session_confirm"].get(), 10)

    async def next(self, name: str, timeout: float = 10) -> Any:
        return await asyncio.wait_for(self.events[name].get(), timeout)

    def nothing_came(self, name: str) -> bool:
        return self.events[name].empty()


async def _gateway(aiohttp_server: Any, database_url: str) -> str:
    rasa = await aiohttp_server(FakeRasa().app())  # hands every conversation over
    settings = Settings(
        database_url=database_url, rasa_url=str(rasa.make_url("")).rstrip("/"), secret_key="k"
    )
    return str((await aiohttp_server(create_app(settings))).make_url("")).rstrip("/")


async def test_only_the_id_issued_for_the_page_continues_the_conversation(
    aiohttp_server, database_url
) -> None:
    base = await _gateway(aiohttp_server, database_url)
    customer, again, thief, guesser = Socket(), Socket(), Socket(), Socket()
    try:
        token = await customer.open(base, SHOP, None)
        session_id, _, signature = token.partition(".")
        assert len(session_id) == 32 and signature  # issued and signed by the gateway
        await customer.client.emit("user_uttered", {"message": "I want a person"})
        assert (await customer.next("bot_uttered"))["text"] == "A person will take over."

        # The same id from the page it was issued for: the same conversation, waiting for a person.
        assert await again.open(base, SHOP, token) == token
        assert (await again.next("helpdesk_status"))["mode"] == "queued"

        # The id from another site, and the bare session id without its signature: new sessions.
        stolen = await thief.open(base, EVIL, token)
        guessed = await guesser.open(base, SHOP, session_id)
        assert len({token, stolen, guessed}) == 3
        await customer.client.emit("user_uttered", {"message": "hello?"})
        await asyncio.sleep(1.0)
        assert all(socket.nothing_came("helpdesk_status") for socket in (thief, guesser))
        assert all(socket.nothing_came("bot_uttered") for socket in (thief, guesser))
    finally:
        for socket in (customer, again, thief, guesser):
            await socket.client.disconnect()


async def test_a_made_up_id_gets_a_new_session(aiohttp_server, database_url) -> None:
    base = await _gateway(aiohttp_server, database_url)
    socket = Socket()
    try:
        issued = await socket.open(base, SHOP, "my-own-session-id-1234")
        assert not issued.startswith("my-own-session-id-1234")
        assert "." in issued
    finally:
        await socket.client.disconnect()


async def test_events_without_data_get_an_answer(aiohttp_server, database_url) -> None:
    base = await _gateway(aiohttp_server, database_url)
    socket = Socket()
    try:
        await socket.open(base, SHOP, None)
        await socket.client.emit("user_uttered")
        assert "non-empty string" in (await socket.next("error"))["message"]
        await socket.client.emit("link_claim")
        assert (await socket.next("link_result"))["ok"] is False
        await socket.client.emit("session_request")
        assert "." in await socket.next("session_confirm")
    finally:
        await socket.client.disconnect()
