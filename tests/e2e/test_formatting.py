"""Formatting in Debian's Chromium (Playwright), against the real stack: Markdown from the
knowledge base shows as bold in the shop's widget and in the agent's transcript, what a customer
types stays text, and hostile markup in an agent's line stays inert on both sides."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.agents import PASSWORD, log_in
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

HOSTILE_REPLY = (
    "**Sorted**: see [our policy](https://shop.test/returns). "
    "<script>window.__xss = 1</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))"
)
TYPED = "**my** box <b>never</b> came"
BOT_LINES = '.hlw-msg[data-author="bot"] .hlw-text'


def send(widget: Page, text: str) -> None:
    widget.fill("#hlw-input", text)
    widget.keyboard.press("Enter")


def assert_inert(scope: Locator, on: Page) -> None:
    """The hostile reply's Markdown is drawn, its markup is text and nothing of it runs."""
    expect(scope.locator("strong", has_text="Sorted")).to_be_visible()
    expect(scope.locator('a[href="https://shop.test/returns"]')).to_have_text("our policy")
    expect(scope).to_contain_text("<script>window.__xss = 1</script>")
    expect(scope).to_contain_text("<img src=x onerror=alert(1)>")
    expect(scope).to_contain_text("[x](javascript:alert(1))")
    assert scope.locator("script, img, [onerror], a[href^='javascript']").count() == 0
    assert on.evaluate("() => window.__xss") is None
    assert on.dialogs == []  # type: ignore[attr-defined]


def test_markdown_is_drawn_in_the_widget_and_the_console_and_markup_stays_inert(
    stack: Stack,
    browser: Browser,  # noqa: F811
    page: Page,  # noqa: F811
) -> None:
    page.goto(stack.gateway_url + "/")
    page.click("#hlw-launcher")
    send(page, "how long do i have to return shoes?")
    answer = page.locator(BOT_LINES, has_text="30 days").first
    expect(answer).to_be_visible(timeout=30_000)
    expect(answer.locator("strong", has_text="30 days")).to_be_visible()  # the article's **30 days**
    assert "**" not in page.locator("#hlw-log").inner_text()

    # What the customer types is never read as Markdown or HTML.
    send(page, TYPED)
    typed = page.locator('.hlw-msg[data-author="customer"] .hlw-text', has_text="never")
    expect(typed).to_have_text(TYPED)
    assert typed.locator("strong, b").count() == 0

    send(page, "I want to talk to a person")
    expect(page.locator("#hlw-log")).to_contain_text("support team", timeout=30_000)
    marker = f"my reference is {uuid.uuid4().hex[:6]}"
    send(page, marker)
    expect(page.locator("#hlw-log")).to_contain_text("in the queue", timeout=30_000)

    email = f"md-{uuid.uuid4().hex[:6]}@shop.test"
    stack.create_agent(email, PASSWORD, "agent", "Robin")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    console = context.new_page()
    console.dialogs = []  # type: ignore[attr-defined]
    console.on("dialog", lambda dialog: (console.dialogs.append(dialog.message), dialog.dismiss()))  # type: ignore[attr-defined]
    try:
        log_in(console, stack, email)
        console.locator("li.ticket", has_text=marker).click()
        transcript = console.locator("#transcript")
        expect(transcript).to_contain_text(marker)
        bot_answer = console.locator(
            '#transcript li.message[data-author="bot"] .text', has_text="30 days"
        ).first
        expect(bot_answer.locator("strong", has_text="30 days")).to_be_visible()
        assert "**" not in bot_answer.inner_text()
        customer = console.locator('#transcript li.message[data-author="customer"] .text', has_text="never")
        expect(customer).to_have_text(TYPED)
        assert customer.locator("strong, b").count() == 0

        console.click("#claim")
        expect(console.locator("#ticket-holder")).to_have_text("held by you")
        console.fill("#reply-text", HOSTILE_REPLY)
        console.keyboard.press("Enter")
        agent_line = console.locator('#transcript li.message[data-author="agent"] .text').last
        expect(agent_line).to_contain_text("Sorted")
        assert_inert(agent_line, console)
    finally:
        context.close()

    # The agent's line reaches the widget, drawn the same way.
    pushed = page.locator(BOT_LINES, has_text="Sorted").last
    expect(pushed).to_be_visible(timeout=10_000)
    assert_inert(pushed, page)
    expect(pushed.locator("a")).to_have_attribute("rel", "noopener noreferrer")
