"""The trainer console in Chromium: a trainer sees the messages the bot missed, grouped, and
labels a group from the page (the whole retraining loop is tests/e2e/test_trainer_loop.py)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.support.agents import PASSWORD
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

MISSED = [
    "do you sell replacement laces for boots",
    "can i buy spare shoelaces",
    "are shoe laces sold separately",
]


def test_a_trainer_labels_a_group_of_missed_messages(stack: Stack, page: Page) -> None:  # noqa: F811
    for text in MISSED:
        stack.say(f"laces-{uuid.uuid4().hex[:8]}", text)
    email = f"tia-{uuid.uuid4().hex[:6]}@shop.test"
    stack.create_agent(email, PASSWORD, "trainer", "Tia")
    page.goto(f"{stack.gateway_url}/trainer")
    expect(page).to_have_url(re.compile(r"/agent/login\?next=/trainer$"))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/trainer$"))  # back where the trainer was going
    expect(page.locator("#groups")).to_have_attribute("aria-busy", "false", timeout=60_000)
    group = page.locator("#groups > li.group", has=page.locator("li.message", has_text=MISSED[0]))
    expect(group).to_have_count(1)
    texts = group.locator("li.message label.text").all_inner_texts()
    assert len(texts) >= 2 and set(texts) <= set(MISSED)  # similar misses, grouped
    group.locator("input.intent").fill("ask_laces")
    group.locator("button.label").click()
    expect(page.locator("#status")).to_contain_text(str(len(texts)))
    for text in texts:  # decided: they leave the list
        expect(page.locator("li.message", has_text=text)).to_have_count(0)
