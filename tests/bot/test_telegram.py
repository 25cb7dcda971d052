"""The Telegram channel at the gateway, with a real python-telegram-bot client against a local
stand-in of the Bot API (tests/support/telegram_api.py) and a stand-in of Rasa."""

from __future__ import annotations

import sqlalchemy as sa

from tests.support.gateway import FakeRasa, webhook_gateway

CHAT = 424242


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
