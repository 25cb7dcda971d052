"""The Telegram Bot API stand-in works with a real python-telegram-bot client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.support.telegram_api import BOT_USERNAME, FakeBotApi

TOKEN = "123456789:AAHarborLaneTestToken_for-the-stand-in"


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeBotApi:
    api = FakeBotApi(TOKEN)
    return api.attach(await aiohttp_server(api.app()))


def build_app(fake: FakeBotApi, *handlers: Any, updater: bool = True) -> Application:
    builder = Application.builder().token(TOKEN).base_url(fake.base_url).base_file_url(fake.base_file_url)
    if not updater:
        builder = builder.updater(None)
    app = builder.build()
    for handler in handlers:
        app.add_handler(handler)
    return app


@contextlib.asynccontextmanager
async def polling(fake: FakeBotApi, *handlers: Any) -> AsyncIterator[Application]:
    app = build_app(fake, *handlers)
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.message.reply_text(f"echo: {update.message.text}")


async def test_polling_echo(fake: FakeBotApi) -> None:
    async with polling(fake, MessageHandler(filters.TEXT & ~filters.COMMAND, echo)) as app:
        assert app.bot.username == BOT_USERNAME
        update_id = await fake.send_text(42, "hello", first_name="Ada", username="ada")
        call = await fake.wait_sent(method="sendMessage", chat_id=42)
        assert call["text"] == "echo: hello"
        assert call["result"]["chat"] == {"id": 42, "type": "private", "first_name": "Ada", "username": "ada"}
        await fake.send_text(42, "again")
        await fake.wait_sent(method="sendMessage", since=1)
    assert fake.messages_to(42) == ["echo: hello", "echo: again"]
    # the bot's messages follow the customer's in the chat's numbering
    assert [call["result"]["message_id"] for call in fake.sent] == [2, 4]
    # stopping the updater confirmed every update it fetched
    assert fake.pending_updates == []
    assert update_id == 100_000_001


async def test_start_command_args(fake: FakeBotApi) -> None:
    seen: list[list[str]] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(list(context.args))
        await update.message.reply_text("welcome", reply_to_message_id=update.message.message_id)

    async with polling(fake, CommandHandler("start", start)):
        await fake.send_text(7, "/start CODE")
        call = await fake.wait_sent(method="sendMessage", chat_id=7)
    assert seen == [["CODE"]]
    assert call["reply_parameters"]["message_id"] == 1  # PTB 22 sends reply_to_message_id this way
    assert call["result"]["reply_to_message"]["text"] == "/start CODE"


async def test_inline_button(fake: FakeBotApi) -> None:
    async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = [[InlineKeyboardButton("Track my order", callback_data="track:1001")]]
        await update.message.reply_text("What can I do?", reply_markup=InlineKeyboardMarkup(keyboard))

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await query.answer()
        await query.edit_message_text(f"You chose {query.data}")

    async with polling(fake, CommandHandler("menu", menu), CallbackQueryHandler(pressed)):
        await fake.send_text(9, "/menu")
        shown = await fake.wait_sent(method="sendMessage", chat_id=9)
        assert shown["reply_markup"] == {
            "inline_keyboard": [[{"text": "Track my order", "callback_data": "track:1001"}]]
        }
        await fake.press_button(9, shown["result"]["message_id"], "track:1001")
        await fake.wait_sent(method="answerCallbackQuery")
        edited = await fake.wait_sent(method="editMessageText")
    assert edited["text"] == "You chose track:1001"
    # editing the text without a reply_markup removes the keyboard, as on Telegram
    assert "reply_markup" not in fake.message(9, shown["result"]["message_id"])


async def test_photo_download_and_upload(fake: FakeBotApi) -> None:
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    received: list[bytes] = []

    async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        file = await update.message.photo[-1].get_file()
        received.append(bytes(await file.download_as_bytearray()))
        await update.message.reply_photo(photo=received[-1], caption=update.message.caption)

    async with polling(fake, MessageHandler(filters.PHOTO, photo)):
        await fake.send_photo(5, picture, caption="the broken lid")
        call = await fake.wait_sent(method="sendPhoto", chat_id=5)
    assert received == [picture]
    assert call["photo"] == picture  # uploaded as multipart/form-data
    assert call["caption"] == "the broken lid"
    assert len(call["result"]["photo"]) == 2


async def test_webhook(fake: FakeBotApi, aiohttp_server: Any) -> None:
    app = build_app(fake, MessageHandler(filters.TEXT, echo), updater=False)

    async def receive(request: web.Request) -> web.Response:
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != "s3cret":
            return web.Response(status=403)
        await app.process_update(Update.de_json(await request.json(), app.bot))
        return web.Response()

    hook_app = web.Application()
    hook_app.router.add_post("/telegram", receive)
    hook = await aiohttp_server(hook_app)

    async with app:
        await app.bot.set_webhook(url=str(hook.make_url("/telegram")), secret_token="s3cret")
        assert fake.webhook is not None and fake.webhook["secret_token"] == "s3cret"
        assert (await app.bot.get_webhook_info()).url == str(hook.make_url("/telegram"))
        with pytest.raises(Conflict, match="webhook is active"):
            await app.bot.get_updates()

        assert await fake.send_text(3, "hi", secret_token="wrong") == 403
        assert fake.sent == []
        assert "403" in (await app.bot.get_webhook_info()).last_error_message

        assert await fake.send_text(3, "hi") == 200
        assert fake.messages_to(3) == ["echo: hi"]

        await app.bot.delete_webhook()
        assert fake.webhook is None
        assert await app.bot.get_updates(timeout=0) == ()


async def test_errors_like_telegram(fake: FakeBotApi) -> None:
    async with Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url) as bot:
        with pytest.raises(BadRequest, match="(?i)not implemented in the stand-in"):
            await bot.send_dice(1)
        with pytest.raises(BadRequest, match="(?i)message text is empty"):
            await bot.send_message(1, " ")
        fake.blocked.add(2)
        with pytest.raises(Forbidden, match="(?i)blocked by the user"):
            await bot.send_message(2, "hello?")
        sent = await bot.send_message(1, "same", reply_markup=InlineKeyboardMarkup([]))
        with pytest.raises(BadRequest, match="(?i)message is not modified"):
            await bot.edit_message_text("same", chat_id=1, message_id=sent.message_id)
    with pytest.raises(InvalidToken):
        async with Bot("999:wrong", base_url=fake.base_url):
            pass


def test_threaded_stand_in_for_synchronous_tests() -> None:
    with FakeBotApi.running(TOKEN) as fake:
        assert fake.base_url.startswith("http://127.0.0.1:") and fake.base_url.endswith("/bot")
        update_id = fake.send_text_sync(11, "/start")
        fake.send_sticker_sync(11)

        async def bot_side() -> tuple[Any, ...]:
            async with Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url) as bot:
                updates = await bot.get_updates(timeout=1)
                await bot.send_chat_action(11, "typing")
                await bot.send_message(11, "hello from the bot")
                return updates

        # A loop of our own (asyncio.run would drop the loop pytest-asyncio leaves set, unclosed).
        loop = asyncio.new_event_loop()
        try:
            updates = loop.run_until_complete(bot_side())
        finally:
            loop.close()
        assert [update.update_id for update in updates] == [update_id, update_id + 1]
        assert updates[0].message.text == "/start"
        assert updates[1].message.sticker.type == "regular"
        assert fake.wait_sent_sync(method="sendMessage", chat_id=11)["text"] == "hello from the bot"
        assert fake.messages_to(11) == ["hello from the bot"]

        # Raw requests: JSON and urlencoded bodies, the envelope, and a wrong token.
        def post(path: str, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
            request = urllib.request.Request(
                fake.root_url + path, data=body, headers={"Content-Type": content_type}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())

        status, body = post(
            f"/bot{TOKEN}/sendMessage",
            json.dumps({"chat_id": 11, "text": "json", "reply_markup": '{"inline_keyboard": []}'}).encode(),
            "application/json",
        )
        assert status == 200 and body["ok"] is True and body["result"]["text"] == "json"
        assert fake.sent[-1]["reply_markup"] == {"inline_keyboard": []}
        form = urllib.parse.urlencode({"chat_id": "11", "text": "123"}).encode()
        status, body = post(f"/bot{TOKEN}/sendMessage", form, "application/x-www-form-urlencoded")
        assert status == 200 and body["result"]["text"] == "123"  # text stays a string
        status, body = post("/bot1:nope/getMe", b"", "application/x-www-form-urlencoded")
        assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
        status, body = post(f"/bot{TOKEN}/sendDice", b"", "application/x-www-form-urlencoded")
        assert status == 400 and body["ok"] is False and body["error_code"] == 400
