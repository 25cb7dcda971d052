"""The widget offers Telegram only when the gateway has a bot, in Debian's Chromium (Playwright):
on (the test stack's gateway polls the stand-in of the Bot API) it names the bot and gives its
t.me deep link; off (a gateway without TELEGRAM_TOKEN) there is no "Continue on Telegram"."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.support.stack import Stack
from tests.support.telegram_api import BOT_USERNAME

pytestmark = pytest.mark.e2e


def test_with_telegram_on_the_widget_names_the_bot_and_gives_its_deep_link(
    stack: Stack,
    page: Page,  # noqa: F811
) -> None:
    page.goto(stack.gateway_url + "/")
    page.click("#hlw-launcher")
    toggle = page.locator("#hlw-link-toggle")
    expect(toggle).to_be_visible(timeout=30_000)  # the test stack's gateway polls the stand-in
    toggle.click()
    panel = page.locator("#hlw-link-panel")
    expect(panel).to_contain_text(f"@{BOT_USERNAME}")
    code = page.locator("#hlw-link-code")
    expect(code).to_have_text(re.compile(r"^[2-9A-Z]{8}$"), timeout=10_000)
    link = page.locator("#hlw-telegram-link")
    expect(link).to_have_text(f"Open @{BOT_USERNAME} in Telegram")
    expect(link).to_have_attribute("href", f"https://t.me/{BOT_USERNAME}?start={code.inner_text()}")
    expect(panel.locator(".hlw-link-hint")).to_have_text(f"Or send this code to @{BOT_USERNAME} in Telegram:")


@pytest.fixture
def gateway_without_telegram(tmp_path: Path) -> Iterator[str]:
    """A second gateway with no TELEGRAM_TOKEN (and no Rasa behind it: the widget only connects)."""
    alone = Stack(tmp_path)
    alone.start(only=("gateway",))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(alone.gateway_url + "/widget.js", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the gateway did not start\n{alone.logs()}")
            time.sleep(0.3)
        yield alone.gateway_url
    finally:
        alone.stop_all()


def test_with_telegram_off_the_widget_offers_no_telegram(gateway_without_telegram: str, page: Page) -> None:  # noqa: F811
    page.goto(gateway_without_telegram + "/")
    page.click("#hlw-launcher")
    expect(page.locator("#hlw-status")).to_have_attribute("data-state", "bot", timeout=30_000)  # connected
    page.wait_for_timeout(500)  # the `channels` event follows the session's confirmation
    expect(page.locator("#hlw-link-toggle")).to_be_hidden()
    expect(page.locator("#hlw-link-panel")).to_be_hidden()
