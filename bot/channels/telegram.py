"""Telegram, with python-telegram-bot: polling in development, a webhook in production.

Every text goes through the router like any channel's message; replies with buttons become
inline keyboards whose presses come back as the button's payload. Photos are kept (the
agent sees them) and their caption, if any, is read as the message; stickers and other media
get a polite answer. `/start CODE` (the widget's deep link) and `/link` join this chat and
the web chat into one customer. Without TELEGRAM_TOKEN the channel is off, and the log says
so. The Bot API's address is configuration (`TELEGRAM_BASE_URL`), which is how the tests
run a real client against a local stand-in.

In webhook mode Telegram POSTs updates to `/webhooks/telegram` with the secret given to
setWebhook in the `X-Telegram-Bot-Api-Secret-Token` header; anything else gets 403.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from typing import Any

from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.appkeys import DATABASE, LINK_THROTTLE, ROUTER, TEXTS
from bot.router import HelpdeskUnavailable, IncomingMessage
from bot.settings import Settings
from handoff import conversations, identity

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CALLBACK_LIMIT = 64  # bytes Telegram allows in callback_data


def keyboard(buttons: list[dict[str, Any]] | None) -> InlineKeyboardMarkup | None:
    """Buttons as an inline keyboard, one per row. A payload too long for Telegram's
    callback data is replaced by the button's title, which the assistant also understands."""
    if not buttons:
        return None
    rows = []
    for button in buttons:
        title, payload = (
            str(button.get("title") or ""),
            str(button.get("payload") or button.get("title") or ""),
        )
        data = (
            payload
            if len(payload.encode("utf-8")) <= CALLBACK_LIMIT
            else title.encode("utf-8")[:64].decode("utf-8", "ignore")
        )
        rows.append([InlineKeyboardButton(title, callback_data=data)])
    return InlineKeyboardMarkup(rows)


class TelegramChannel:
    def __init__(self, app: web.Application, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        builder = (
            Application.builder()
            .token(settings.telegram_token or "")
            .base_url(settings.telegram_base_url)
            .base_file_url(settings.telegram_base_file_url)
        )
        if settings.telegram_mode == "webhook":
            builder = builder.updater(None)  # Telegram POSTs the updates to the gateway
        self.application = builder.build()
        self.application.add_handler(CommandHandler("start", self.on_start))
        self.application.add_handler(CommandHandler("link", self.on_link))
        self.application.add_handler(CallbackQueryHandler(self.on_button))
        self.application.add_handler(MessageHandler(filters.PHOTO, self.on_photo))
        self.application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self.on_text))
        self.application.add_handler(
            MessageHandler(~filters.TEXT & ~filters.PHOTO & ~filters.COMMAND, self.on_other)
        )
        self.application.add_error_handler(self.on_error)

    async def start(self) -> None:
        await self.application.initialize()
        await self.application.start()
        if self.settings.telegram_mode == "webhook":
            await self.application.bot.set_webhook(
                url=self.settings.telegram_webhook_url,
                secret_token=self.settings.telegram_secret_token,
                allowed_updates=["message", "callback_query"],
            )
            logger.info("Telegram: webhook set to %s", self.settings.telegram_webhook_url)
        else:
            await self.application.bot.delete_webhook()
            assert self.application.updater is not None
            await self.application.updater.start_polling(poll_interval=0.0, timeout=10)
            logger.info("Telegram: polling as @%s", self.application.bot.username)

    async def stop(self) -> None:
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def webhook(self, request: web.Request) -> web.Response:
        secret = self.settings.telegram_secret_token or ""
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, ""), secret):
            return web.json_response({"error": {"status": 403, "message": "wrong secret token"}}, status=403)
        try:
            update = Update.de_json(await request.json(), self.application.bot)
        except (ValueError, TypeError, KeyError) as error:
            return web.json_response(
                {"error": {"status": 400, "message": f"not a Telegram update: {error}"}}, status=400
            )
        await self.application.process_update(update)
        return web.Response(status=200)

    # -- Customer messages --------------------------------------------------------------------

    async def _handle(self, update: Update, incoming: IncomingMessage) -> None:
        assert update.effective_chat is not None
        try:
            replies = await self.app[ROUTER].handle(incoming)
        except HelpdeskUnavailable as error:
            logger.error("Telegram message from %s not stored: %s", incoming.sender, error)
            await update.effective_chat.send_message(
                "Sorry, I couldn't save that message. Please send it again."
            )
            return
        for reply in replies:
            await self._send(int(incoming.sender), reply)

    async def _send(self, chat_id: int, reply: dict[str, Any]) -> None:
        bot = self.application.bot
        if reply.get("image"):
            await bot.send_photo(chat_id, reply["image"], caption=reply.get("text"))
        elif reply.get("text"):
            await bot.send_message(chat_id, reply["text"], reply_markup=keyboard(reply.get("buttons")))

    @staticmethod
    def _incoming(update: Update, text: str, **extra: Any) -> IncomingMessage:
        assert update.effective_chat is not None
        user = update.effective_user
        metadata = {"telegram": {"username": user.username, "first_name": user.first_name}} if user else {}
        return IncomingMessage(
            channel=CHANNEL, sender=str(update.effective_chat.id), text=text, metadata=metadata, **extra
        )

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        text = (update.message.text or "").strip()[: self.settings.max_message_chars]
        if text:
            await self._handle(update, self._incoming(update, text))

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer()
        if query.message is not None:  # the buttons are spent once one is pressed
            with contextlib.suppress(TelegramError):
                await query.edit_message_reply_markup(reply_markup=None)
        if query.data:
            await self._handle(update, self._incoming(update, query.data))

    async def on_photo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.photo
        photo = await update.message.photo[-1].get_file()
        data = bytes(await photo.download_as_bytearray())
        caption = (update.message.caption or "").strip()
        await self._handle(
            update, self._incoming(update, caption, kind="photo", attachment=(data, "image/jpeg"))
        )

    async def on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.message is not None:
            await self._handle(update, self._incoming(update, "", kind="other"))

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`/start CODE` from the widget's deep link joins the chats; a bare /start says hello."""
        assert update.effective_chat is not None
        if not context.args:
            await self._handle(update, self._incoming(update, "hello"))
            return
        chat = str(update.effective_chat.id)
        throttle = self.app[LINK_THROTTLE]
        wait = throttle.begin(f"{CHANNEL}:{chat}", None)
        if wait:
            await update.effective_chat.send_message(
                f"Too many wrong codes; try again in {max(1, round(wait / 60))} minutes."
            )
            return
        linked = None
        try:
            linked = await self.app[DATABASE].run(identity.claim_code, context.args[0], CHANNEL, chat)
        except identity.LinkError as error:
            await update.effective_chat.send_message(f"Sorry, {error}.")
            return
        finally:
            throttle.end(f"{CHANNEL}:{chat}", None, succeeded=linked is not None)
        logger.info("Telegram chat %s joined conversation %s", chat, linked.id)
        await update.effective_chat.send_message(self.app[TEXTS]["link_claimed"])

    async def on_link(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        code, _ = await self.app[DATABASE].run(identity.issue_code, CHANNEL, str(update.effective_chat.id))
        await update.effective_chat.send_message(self.app[TEXTS]["link_code"].format(code=code))

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        logger.error("Telegram update failed: %s", context.error, exc_info=context.error)

    # -- Pushes from the helpdesk (bot.delivery) ----------------------------------------------

    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> bool:
        """Sends an agent's line to the customer's Telegram chat; one gateway process sends it."""
        database = self.app[DATABASE]
        chat = await database.execute(conversations.identity_of, conversation_id, CHANNEL)
        if chat is None or not await database.execute(conversations.mark_delivered, message["id"]):
            return False
        try:
            await self._send(int(chat), {"text": message["text"], **(message["payload"] or {})})
        except TelegramError as error:
            logger.error("Could not send a line to Telegram chat %s: %s", chat, error)
            await database.execute(conversations.unmark_delivered, message["id"])
            return False
        return True

    async def status(self, conversation_id: str, status: dict[str, Any]) -> None:
        """Telegram shows the notices themselves ("Alex has joined"); nothing more to send."""

    @property
    def username(self) -> str | None:
        return self.application.bot.username if self.application.running else None
