"""What the web widget learns from the gateway: whether Telegram is on and the bot's name (the
`channels` event after the session's confirmation) and the link code's deep link."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio

from bot.app import create_app
from bot.settings import Settings
from tests.support.gateway import FakeRasa
from tests.support.telegram_api import BOT_USERNAME, DEFAULT_TOKEN, FakeBotApi


class Visitor:
    """A widget's socket: the events it got, by name."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, asyncio.Queue[Any]] = {}
        for name in ("session_confirm", "channels", "link_code"):
            self.events[name] = asyncio.Queue()
            self.client.on(name, self.events[name].put_nowait)

    async def connect(self, base: str) -> None:
        await self.client.connect(base, transports=["websocket"], socketio_path="socket.io")
        await self.client.emit("session_request", {"session_id": None})
        await self.next("session_confirm")

    async def next(self, name: str) -> Any:
        return await asyncio.wait_for(self.events[name].get(), 10)


async def gateway(aiohttp_server, database_url: str, **telegram: Any) -> str:
    rasa = await aiohttp_server(FakeRasa().app())
    settings = Settings(
        database_url=database_url, rasa_url=str(rasa.make_url("")).rstrip("/"), secret_key="k", **telegram
    )
    return str((await aiohttp_server(create_app(settings))).make_url("")).rstrip("/")


@pytest.fixture
async def visitor() -> AsyncIterator[Visitor]:
    visitor = Visitor()
    yield visitor
    await visitor.client.disconnect()


async def test_without_telegram_the_widget_is_told_it_is_off(aiohttp_server, database_url, visitor) -> None:
    await visitor.connect(await gateway(aiohttp_server, database_url))
    assert await visitor.next("channels") == {"telegram": None}
    await visitor.client.emit("link_request", {})
    link = await visitor.next("link_code")
    assert link["telegram_url"] is None and link["telegram_bot"] is None


async def test_with_telegram_the_widget_gets_the_bot_and_its_deep_link(
    aiohttp_server, database_url, visitor
) -> None:
    bot_api = FakeBotApi(DEFAULT_TOKEN)
    bot_api.attach(await aiohttp_server(bot_api.app()))
    base = await gateway(
        aiohttp_server,
        database_url,
        telegram_token=DEFAULT_TOKEN,
        telegram_base_url=bot_api.base_url,
        telegram_base_file_url=bot_api.base_file_url,
    )
    await visitor.connect(base)
    assert await visitor.next("channels") == {"telegram": BOT_USERNAME}  # from getMe
    await visitor.client.emit("link_request", {})
    link = await visitor.next("link_code")
    assert link["telegram_bot"] == BOT_USERNAME
    assert link["telegram_url"] == f"https://t.me/{BOT_USERNAME}?start={link['code']}"


async def test_telegram_in_another_process_is_named_by_its_setting(
    aiohttp_server, database_url, visitor
) -> None:
    await visitor.connect(
        await gateway(aiohttp_server, database_url, telegram_bot_username="harbor_shop_bot")
    )
    assert await visitor.next("channels") == {"telegram": "harbor_shop_bot"}
