"""A flood from one sender, through the real stack with make run's limits: 300 messages in
30 s over the widget's socket (some of them 2,000 emoji, which cost Rasa the most; neutral
ones, so that no frustration is detected), while
another customer chats at a human pace. The flood is refused with a notice, no ticket is
opened, and the other customer gets every answer, never the apology. How quickly is
measured by `make bench-flood` (benchmarks/flood.py), beside the same questions with no flood."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.flood import FLOOD_MESSAGES, flood_beside_a_customer, tickets
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def test_a_flood_from_one_sender_is_refused_and_another_customer_is_still_answered(stack: Stack) -> None:
    tickets_before = tickets(stack.helpdesk_db)
    outcome = asyncio.run(flood_beside_a_customer(stack.gateway_url))
    texts = [" ".join(replies) for _, replies in outcome["turns"]]
    assert all(texts), f"a question went unanswered: {texts}"
    assert not any("having trouble" in text for text in texts), texts
    assert outcome["customer_refused"] == 0
    # Most of the flood was refused, each with a notice saying how long to wait.
    assert outcome["refused"] >= FLOOD_MESSAGES - 60
    assert "faster than I can read" in outcome["notice"]["message"]
    # No ticket: overload opens none, and gibberish faster than anyone reads the answers is
    # not the bot failing to understand a customer again and again (actions/assessment.py).
    opened = [
        reason for ticket, reason in tickets(stack.helpdesk_db) if (ticket, reason) not in tickets_before
    ]
    assert opened == [], f"tickets opened: {opened}"
    assert not any("support team" in text for text in texts)  # not the calm customer's
