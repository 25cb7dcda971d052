"""Human handoff through the running stack: a customer escalates over REST, an agent created
with the command logs in through the API, claims, replies; the customer collects the reply;
a second agent's claim gets 409; after the hand-back the bot answers again and still knows
the order the customer proved before the handoff."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.support.agents import PASSWORD, Agent
from tests.support.stack import Stack, texts

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def agents(stack: Stack) -> tuple[Agent, Agent]:
    stack.create_agent("alex.e2e@shop.test", PASSWORD, "agent", "Alex")
    stack.create_agent("sam.e2e@shop.test", PASSWORD, "agent", "Sam")
    return Agent(stack, "alex.e2e@shop.test"), Agent(stack, "sam.e2e@shop.test")


def test_an_agent_takes_over_and_hands_back_to_a_bot_that_remembers(stack: Stack, agents) -> None:
    alex, sam = agents
    sender = f"handoff-{uuid.uuid4().hex[:8]}"
    stack.say(sender, "where is my order 100234?")
    assert "100234" in texts(stack.say(sender, "jane.doe@example.com"))
    escalated = texts(stack.say(sender, "I want to talk to a real person"))
    assert "support team" in escalated
    assert "queue" in escalated  # the place in it, or when agents are back

    ticket = alex.ticket_of("I want to talk to a real person")
    assert ticket["status"] == "queued" and ticket["priority"] in ("P1", "P2", "P3")
    assert alex.call("POST", f"/tickets/{ticket['id']}/claim").status_code == 200
    taken = sam.call("POST", f"/tickets/{ticket['id']}/claim")
    assert taken.status_code == 409 and "Alex" in taken.json()["error"]["message"]

    reply = alex.call(
        "POST", f"/tickets/{ticket['id']}/messages", {"text": "Hi, Alex here. Let me check 100234."}
    )
    assert reply.status_code == 201
    assert [line["text"] for line in stack.collect(sender)] == [
        "Alex from our support team has joined the conversation.",
        "Hi, Alex here. Let me check 100234.",
    ]
    # While Alex holds the conversation, the bot says nothing, and Alex sees the message.
    assert stack.say(sender, "ok, thanks, I'll wait") == []
    detail = alex.call("GET", f"/tickets/{ticket['id']}").json()
    lines = [(m["author"], m["text"]) for m in detail["transcript"]]
    assert ("customer", "ok, thanks, I'll wait") in lines
    first = detail["transcript"][0]
    assert first["nlu"]["intent"] == "order_status" and first["nlu"]["confidence"] > 0.5
    assert {"entity": "order_id", "value": "100234"} in first["nlu"]["entities"]
    assert detail["context"]["order_id"] == "100234"
    assert "100234" in [order["number"] for order in detail["context"]["orders"]]

    assert alex.call("POST", f"/tickets/{ticket['id']}/handback").status_code == 200
    assert "handed you back" in stack.collect(sender)[-1]["text"]
    # The bot answers again, and still knows the order proven before the handoff.
    answer = texts(stack.say(sender, "so where is my order now?"))
    assert "100234" in answer and "email" not in answer.lower()
    # What the agent said is in Rasa's memory of the conversation too.
    conversation = detail["conversation_id"]
    tracker = requests.get(
        f"{stack.rasa_url}/conversations/{conversation}/tracker", params=stack.rasa_params, timeout=30
    ).json()
    said = [event.get("text") for event in tracker["events"] if event["event"] == "bot"]
    assert "Hi, Alex here. Let me check 100234." in said


def test_closing_asks_the_customer_for_csat(stack: Stack, agents) -> None:
    alex, _ = agents
    sender = f"csat-{uuid.uuid4().hex[:8]}"
    stack.say(sender, "can I speak to a human agent please")
    ticket = alex.ticket_of("can I speak to a human agent please")
    alex.call("POST", f"/tickets/{ticket['id']}/claim")
    alex.call("POST", f"/tickets/{ticket['id']}/messages", {"text": "Done: your refund is on its way."})
    assert alex.call("POST", f"/tickets/{ticket['id']}/close").status_code == 200
    question = stack.collect(sender)[-1]
    assert [button["title"] for button in question["buttons"]] == ["1", "2", "3", "4", "5"]
    assert texts(stack.say(sender, question["buttons"][4]["payload"])) == "Thank you for your rating!"
    assert alex.call("GET", f"/tickets/{ticket['id']}").json()["csat"] == 5
    # The bot has the conversation again (while an agent held it, it said nothing).
    assert "30 days" in texts(stack.say(sender, "how long do I have to return a sweater?"))
