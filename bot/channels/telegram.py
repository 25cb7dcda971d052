"""Telegram, with python-telegram-bot: polling in development, a webhook in production.

Every text goes through the router like any channel's message; replies with buttons become
inline keyboards whose presses come back as the button's payload. Bot and agent text is
Markdown (the knowledge base's **bold**), sent in Telegram's HTML parse mode by
`telegram_html`. Photos are kept (the agent sees them) and their caption, if any, is read as
the message; stickers and other media get a polite answer. `/start CODE` (the widget's deep
link) and `/link` join this chat and the web chat into one customer. Without TELEGRAM_TOKEN
the channel is off, and the log says so. The Bot API's address is configuration
(`TELEGRAM_BASE_URL`), which is how the tests run a real client against a local stand-in.

In webhook mode Telegram POSTs updates to `/webhooks/telegram` with the secret given to
setWebhook in the `X-Telegram-Bot-Api-Secret-Token` header; anything else gets 403.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import time
from html import escape
from typing import Any

from aiohttp import web
from markdown_it import MarkdownIt
from markdown_it.token import Token
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.appkeys import DATABASE, ROUTER, TEXTS
from bot.channels.linking import TooManyWrongCodes, claim_link_code
from bot.limits import TooManyMessages, refusal_text
from bot.router import HelpdeskUnavailable, IncomingMessage
from bot.settings import Settings
from handoff import conversations, identity
from handoff.api import loads_limited

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CALLBACK_LIMIT = 64  # bytes Telegram allows in callback_data

# The Markdown the widget renders (bot/static/markdown.js), minus linkify: Telegram links bare
# URLs itself. Raw HTML, headings, images and the rest stay off and arrive as written.
MARKDOWN = MarkdownIt("zero", {"breaks": True, "html": False}).enable(
    ["emphasis", "list", "link", "newline", "backticks", "escape"]
)


def _link_allowed(url: str) -> bool:
    return url.lower().startswith(("http://", "https://", "mailto:"))  # javascript: & co. stay text


MARKDOWN.validateLink = _link_allowed  # type: ignore[method-assign]
TAGS = {"strong_open": "<b>", "strong_close": "</b>", "em_open": "<i>", "em_close": "</i>"}


def telegram_html(markdown: str) -> str:
    """Markdown as Telegram's HTML parse mode: <b>, <i>, <code> and <a href> (http(s) only; a
    mailto link becomes its text and address), list items as "• " or "1. " lines, paragraphs
    apart by an empty line, and every <, > and & of the text escaped."""
    parts: list[str] = []
    gap = ""  # what separates the next piece of text from the one before
    lists: list[list[int] | None] = []  # the open lists: [next number] when ordered
    for token in MARKDOWN.parse(markdown):
        if token.type in ("bullet_list_open", "ordered_list_open"):
            ordered = token.type == "ordered_list_open"
            lists.append([int(token.attrGet("start") or 1)] if ordered else None)
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            gap = "\n" if lists else "\n\n"
        elif token.type == "list_item_open":
            number = lists[-1] if lists else None
            marker = f"{number[0]}. " if number else "• "
            if number:
                number[0] += 1
            parts.append(((gap or "\n") if parts else "") + "  " * (len(lists) - 1) + marker)
            gap = ""
        elif token.type == "inline":
            parts.append((gap if parts else "") + _inline_html(token.children or []))
            gap = ""
        elif token.type in ("paragraph_close", "list_item_close"):
            gap = gap or ("\n" if token.hidden or token.type == "list_item_close" else "\n\n")
    return "".join(parts).strip()


def _inline_html(tokens: list[Token]) -> str:
    out: list[str] = []
    links: list[tuple[int, str]] = []  # each open link: where its label starts, what ends it
    for token in tokens:
        if token.type == "text":
            out.append(escape(token.content, quote=False))
        elif token.type in ("softbreak", "hardbreak"):
            out.append("\n")
        elif token.type == "code_inline":
            out.append(f"<code>{escape(token.content, quote=False)}</code>")
        elif token.type == "link_open":
            href = str(token.attrGet("href") or "")
            if href.lower().startswith(("http://", "https://")):
                out.append(f'<a href="{escape(href)}">')
                links.append((len(out), "</a>"))
            else:  # mailto: Telegram links web pages only, and links a written address itself
                links.append((len(out), escape(href.split(":", 1)[-1], quote=False)))
        elif token.type == "link_close" and links:
            start, end = links.pop()
            label = "".join(out[start:])
            if end == "</a>":
                out.append(end)
            elif end != label:  # "[jane@x.com](mailto:jane@x.com)" shows the address once
                out.append(f" ({end})")
        elif token.type in TAGS:
            out.append(TAGS[token.type])
        elif token.content:
            out.append(escape(token.content, quote=False))
    return "".join(out)


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
        # When each chat over its rate limit was last told so (monotonic seconds it holds until).
        self._refusal_notices: dict[str, float] = {}
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
            data = loads_limited(await request.text())  # TooDeep and bad JSON are ValueErrors
            if not isinstance(data, dict):
                raise ValueError("the body is not a JSON object")
            update = Update.de_json(data, self.application.bot)
        except Exception as error:  # noqa: BLE001 - whatever python-telegram-bot cannot read
            # Its parser fails on malformed fields with anything from KeyError to OverflowError.
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
        except TooManyMessages as error:
            # Said once for each run of refusals: a flood gets no flood of notices back.
            if self._refusal_notices.get(incoming.sender, 0) < time.monotonic():
                if len(self._refusal_notices) > 10_000:
                    self._refusal_notices.clear()
                self._refusal_notices[incoming.sender] = time.monotonic() + error.refusal.retry_after_seconds
                await update.effective_chat.send_message(refusal_text(self.app[TEXTS], error.refusal))
            return
        for reply in replies:
            await self._send(int(incoming.sender), reply)

    async def _send(self, chat_id: int, reply: dict[str, Any]) -> None:
        bot = self.application.bot
        text = telegram_html(reply["text"]) if reply.get("text") else ""
        mode = ParseMode.HTML if text else None  # text or caption: Markdown as Telegram's HTML
        if reply.get("image"):
            await bot.send_photo(chat_id, reply["image"], caption=text or None, parse_mode=mode)
        elif text:
            await bot.send_message(
                chat_id, text, parse_mode=mode, reply_markup=keyboard(reply.get("buttons"))
            )

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
        try:
            linked = await claim_link_code(self.app, context.args[0], CHANNEL, chat)
        except TooManyWrongCodes as error:
            await update.effective_chat.send_message(f"{str(error).capitalize()}.")
            return
        except identity.LinkError as error:
            await update.effective_chat.send_message(f"Sorry, {error}.")
            return
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
