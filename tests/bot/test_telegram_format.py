"""Markdown in bot and agent text reaches Telegram in its HTML parse mode, escaped: the converter
on its own, then a real python-telegram-bot client against the local stand-in of the Bot API."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aiohttp import web

from bot.channels.telegram import telegram_html
from tests.support.gateway import FakeRasa, webhook_gateway

CHAT = 515151
RETURN_WINDOW = (
    "You can return most items within **30 days** of delivery.\n"
    "Electronics have a shorter window: **15 days** from delivery."
)


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("a < b & **c**", "a &lt; b &amp; <b>c</b>"),
        (
            RETURN_WINDOW,
            "You can return most items within <b>30 days</b> of delivery.\n"
            "Electronics have a shorter window: <b>15 days</b> from delivery.",
        ),
        (
            "*gently* and _softly_, `code <here>`",
            "<i>gently</i> and <i>softly</i>, <code>code &lt;here&gt;</code>",
        ),
        ("Steps:\n\n1. pack it\n2. print the label", "Steps:\n\n1. pack it\n2. print the label"),
        ("- one\n- **two**\n  - nested\n\nDone.", "• one\n• <b>two</b>\n  • nested\n\nDone."),
        ("first\n\nsecond", "first\n\nsecond"),
        (
            "[our policy](https://shop.test/returns?a=1&b=2)",
            '<a href="https://shop.test/returns?a=1&amp;b=2">our policy</a>',
        ),
        ("[write to us](mailto:help@shop.test)", "write to us (help@shop.test)"),
        ("[help@shop.test](mailto:help@shop.test)", "help@shop.test"),
        # Raw HTML and links Telegram must not get arrive as the characters written.
        (
            "<b>bold?</b> <script>alert(1)</script>",
            "&lt;b&gt;bold?&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;",
        ),
        ('<img src=x onerror="alert(1)">', '&lt;img src=x onerror="alert(1)"&gt;'),
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))"),
        ("# not a heading, \\*not bold\\*", "# not a heading, *not bold*"),
        ("Order 100234 (trail running shoes), $5.95", "Order 100234 (trail running shoes), $5.95"),
    ],
)
def test_markdown_becomes_telegram_html(markdown: str, html: str) -> None:
    assert telegram_html(markdown) == html


def test_blank_text_converts_to_nothing() -> None:
    assert telegram_html("  \n ") == ""


@dataclass
class MarkdownRasa(FakeRasa):
    """Answers with Markdown: a text with <, & and bold, then a question with buttons."""

    async def webhook(self, request: web.Request) -> web.Response:
        self.webhook_calls.append((await request.json())["message"])
        return web.json_response(
            [
                {"text": "a < b & **c**"},
                {"text": RETURN_WINDOW, "buttons": [{"title": "Yes, thanks", "payload": "/affirm"}]},
            ]
        )


async def test_replies_are_sent_in_html_parse_mode(aiohttp_server, database_url) -> None:
    bot_api = await webhook_gateway(aiohttp_server, database_url, MarkdownRasa().app())

    assert await bot_api.send_text(CHAT, "how long do i have to return shoes?") == 200
    first = await bot_api.wait_sent(method="sendMessage", chat_id=CHAT)
    second = await bot_api.wait_sent(method="sendMessage", chat_id=CHAT, since=bot_api.sent.index(first) + 1)
    assert first["parse_mode"] == "HTML"
    assert first["text"] == "a &lt; b &amp; <b>c</b>"
    assert second["parse_mode"] == "HTML"
    assert second["text"].startswith("You can return most items within <b>30 days</b> of delivery.\n")
    assert "**" not in second["text"]
    assert second["reply_markup"]["inline_keyboard"][0][0]["text"] == "Yes, thanks"
