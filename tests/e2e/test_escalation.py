"""Frustration through the real stack: scored by the NLU pipeline, escalated by the dialogue."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.support.stack import Stack, texts

pytestmark = pytest.mark.e2e


def new_sender() -> str:
    return f"upset-{uuid.uuid4().hex[:8]}"


def test_the_parse_result_carries_a_frustration_score(stack: Stack) -> None:
    parsed = requests.post(
        f"{stack.rasa_url}/model/parse",
        json={"text": "still NOTHING?? this is ridiculous"},
        params=stack.rasa_params,
        timeout=30,
    ).json()
    frustration = parsed["frustration"]
    assert frustration["score"] >= frustration["threshold"] == 0.5
    assert {"repetition", "exasperation"} <= set(frustration["cues"])


def test_a_furious_customer_is_handed_over_without_asking(stack: Stack) -> None:
    sender = new_sender()
    reply = texts(
        stack.say(
            sender,
            "This is the THIRD time I'm writing about my order and NOBODY answers!!! "
            "Absolutely useless, I'll dispute the charge with my bank",
        )
    )
    assert "handing you to a person" in reply
    [(reason, details)] = stack.tickets(sender)
    assert reason == "frustration"
    assert details["priority"] in ("P1", "P2") and details["frustration"] >= 0.5
    assert {"repetition", "threat"} <= set(details["cues"])
    [(queued_priority,)] = stack.query(
        "SELECT t.priority FROM tickets t JOIN conversations c ON c.id = t.conversation_id "
        "JOIN channel_identities i ON i.customer_id = c.customer_id WHERE i.external_id = :sender",
        sender=sender,
    )
    assert queued_priority == details["priority"]


def test_a_calm_problem_report_is_not_escalated(stack: Stack) -> None:
    sender = new_sender()
    reply = texts(stack.say(sender, "the lid of the jar was cracked, could I get another one?"))
    assert "handing you to a person" not in reply
    assert "order number" in reply  # the bot sorts it out itself (tests/e2e/test_returns.py)
    assert stack.tickets(sender) == []


def test_two_messages_not_understood_in_a_row_bring_a_person(stack: Stack) -> None:
    sender = new_sender()
    assert "didn't quite understand" in texts(stack.say(sender, "blorp zzzq"))
    time.sleep(1.5)  # reads the answer and tries again (a message at once is not a new try)
    assert "handing you to a person" in texts(stack.say(sender, "vrrm qxx plonk"))
    assert [reason for reason, _ in stack.tickets(sender)] == ["repeated_fallback"]


def test_a_safety_problem_goes_straight_to_a_person(stack: Stack) -> None:
    sender = new_sender()
    reply = texts(stack.say(sender, "my new kettle sparked and started smoking when I switched it on"))
    assert "handing you to a person" in reply
    [(reason, details)] = stack.tickets(sender)
    assert reason == "high_impact" and details["problem"] == "safety"
    assert "order number" not in reply  # the problem form does not start after the handoff


def test_frustration_in_the_middle_of_an_order_check_ends_it_and_brings_a_person(stack: Stack) -> None:
    sender = new_sender()
    assert "email" in texts(stack.say(sender, "where is my order 100234?")).lower()
    reply = texts(stack.say(sender, "this is RIDICULOUS, I have asked THREE times already, useless!!!"))
    assert "handing you to a person" in reply
    assert "email" not in reply.lower()  # the check does not carry on after the handoff
    assert [reason for reason, _ in stack.tickets(sender)] == ["frustration"]
    again = texts(stack.say(sender, "WHERE IS IT, this is a joke!!!"))
    assert "handing you to a person" not in again  # said once, not at every message
    assert len(stack.tickets(sender)) == 1
