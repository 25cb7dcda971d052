"""The Telegram channel at the gateway, with a real python-telegram-bot client against a local
stand-in of the Bot API (tests/telegram_api.py) and a stand-in of Rasa."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web

from bot.app import create_app
from bot.settings import Settings
from tests.handoff.test_api import FakeRasa
from tests.stack import free_port
from tests.telegram_api import DEFAULT_TOKEN, FakeBotApi

CHAT = 424242


async def webhook_gateway(aiohttp_server: Any, database_url: str, rasa_app: web.Application) -> FakeBotApi:
    """A gateway with Telegram in webhook mode against the Bot API stand-in (returned), and
    `rasa_app` standing in for Rasa."""
    bot_api = FakeBotApi(DEFAULT_TOKEN)
    bot_api.attach(await aiohttp_server(bot_api.app()))
    rasa = await aiohttp_server(rasa_app)
    port = free_port()
    settings = Settings(
        database_url=database_url,
        rasa_url=str(rasa.make_url("")).rstrip("/"),
        secret_key="k",
        telegram_token=DEFAULT_TOKEN,
        telegram_mode="webhook",
        telegram_webhook_url=f"http://127.0.0.1:{port}/webhooks/telegram",
        telegram_secret_token="s3cret-token",
        telegram_base_url=bot_api.base_url,
        telegram_base_file_url=bot_api.base_file_url,
    )
    await aiohttp_server(create_app(settings), port=port)
    return bot_api


async def test_the_webhook_takes_updates_only_with_the_secret(aiohttp_server, database_url) -> None:
    bot_api = await webhook_gateway(aiohttp_server, database_url, FakeRasa().app())
    assert bot_api.webhook["url"].endswith("/webhooks/telegram")

    assert await bot_api.send_text(CHAT, "hello", secret_token="a guess") == 403
    assert await bot_api.send_text(CHAT, "hello", secret_token=None) == 403
    assert bot_api.messages_to(CHAT) == []
    assert await bot_api.send_text(CHAT, "I want a person") == 200
    reply = await bot_api.wait_sent(method="sendMessage", chat_id=CHAT)
    assert reply["text"] == "A person will take over."

    # A photo is kept for the agent; a sticker gets a polite answer. Both are stored.
    since = len(bot_api.sent)
    assert await bot_api.send_photo(CHAT, b"\xff\xd8 a jpeg of a broken lamp") == 200
    assert await bot_api.send_sticker(CHAT) == 200
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        [(data,)] = connection.execute(sa.text("SELECT data FROM attachments")).all()
        texts = [
            row[0]
            for row in connection.execute(sa.text("SELECT text FROM messages WHERE author = 'customer'"))
        ]
    engine.dispose()
    assert bytes(data) == b"\xff\xd8 a jpeg of a broken lamp"
    assert texts == ["I want a person", "(photo)", "(sticker or file)"]
    # The conversation waits for a person now, so both went to the agents, who see them.
    assert all("in the queue" in text for text in bot_api.messages_to(CHAT)[since:] if text)
