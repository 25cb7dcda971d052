"""The agent console in Debian's Chromium (Playwright): an agent logs in, sees the ticket of a
customer who escalated through the gateway appear live, claims it and replies; the customer
receives the reply; a customer's markup shows as text, never as HTML."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.support.agents import PASSWORD, log_in
from tests.support.stack import Stack, texts

pytestmark = pytest.mark.e2e

HOSTILE = "<img src=x onerror=alert(1)> my parcel <b>never</b> came"


def test_an_agent_answers_a_customer_from_the_console(stack: Stack, page: Page) -> None:
    email = f"robin-{uuid.uuid4().hex[:6]}@shop.test"
    stack.create_agent(email, PASSWORD, "agent", "Robin")
    log_in(page, stack, email)

    sender = f"browser-{uuid.uuid4().hex[:8]}"
    assert "support team" in texts(stack.say(sender, "I need a human"))
    # Waiting, the customer writes on; the queue shows their latest message.
    opening = f"my reference is {sender}"
    assert "in the queue" in texts(stack.say(sender, opening))
    ticket = page.locator("li.ticket", has_text=opening)
    expect(ticket).to_be_visible()  # live, over the websocket: no reload

    ticket.click()
    expect(page.locator("#transcript")).to_contain_text(opening)
    page.click("#claim")
    expect(page.locator("#ticket-holder")).to_have_text("held by you")
    stack.say(sender, HOSTILE)
    customer_line = page.locator('#transcript li.message[data-author="customer"] .text', has_text="never")
    expect(customer_line).to_have_text(HOSTILE)  # the markup as typed, not rendered
    assert page.locator("#transcript img, #transcript b").count() == 0
    assert page.dialogs == []  # type: ignore[attr-defined]

    page.fill("#reply-text", "Hi, Robin here. I'm looking into your parcel now.")
    page.keyboard.press("Enter")
    expect(page.locator('#transcript li.message[data-author="agent"] .text')).to_have_text(
        "Hi, Robin here. I'm looking into your parcel now."
    )
    received = [line["text"] for line in stack.collect(sender)]
    assert received[-1] == "Hi, Robin here. I'm looking into your parcel now."


def test_the_console_works_from_the_keyboard(stack: Stack, page: Page) -> None:
    email = f"kim-{uuid.uuid4().hex[:6]}@shop.test"
    stack.create_agent(email, PASSWORD, "agent", "Kim")
    sender = f"keys-{uuid.uuid4().hex[:8]}"
    assert "support team" in texts(stack.say(sender, "I need a human"))
    opening = f"my reference is {sender}"
    stack.say(sender, opening)
    log_in(page, stack, email)
    ticket = page.locator("li.ticket", has_text=opening)
    ticket.focus()
    page.keyboard.press("Enter")  # open
    expect(page.locator("#transcript")).to_contain_text(opening)
    page.keyboard.press("c")  # claim
    expect(page.locator("#ticket-holder")).to_have_text("held by you")
    expect(page.locator("#reply-text")).to_be_focused()  # claimed: ready to answer
    page.keyboard.type("Typed without a mouse.")
    page.keyboard.press("Enter")
    expect(page.locator('#transcript li.message[data-author="agent"] .text')).to_have_text(
        "Typed without a mouse."
    )
    assert stack.collect(sender)[-1]["text"] == "Typed without a mouse."
