"""Small talk, fallback, handoff and health, through the real stack."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.support.stack import Stack, texts

pytestmark = pytest.mark.e2e


def conversation_of(stack: Stack, sender: str) -> str:
    [(conversation_id,)] = stack.query(
        "SELECT c.id FROM conversations c JOIN channel_identities i ON i.customer_id = c.customer_id "
        "WHERE i.channel = 'rest' AND i.external_id = :sender",
        sender=sender,
    )
    return conversation_id


def test_health_reports_every_component_up(stack: Stack) -> None:
    report = requests.get(f"{stack.gateway_url}/health", timeout=10).json()
    assert report["status"] == "ok"
    rasa = report["components"]["rasa"]
    assert rasa["model"].startswith("model-")
    # as make run: two Rasa servers, both serving the model
    assert len(stack.rasa_ports) == 2
    assert [server["status"] for server in rasa["servers"].values()] == ["up", "up"]
    assert {server["model"] for server in rasa["servers"].values()} == {rasa["model"]}


def test_rasas_api_refuses_requests_without_the_token_while_the_gateway_chats(stack: Stack) -> None:
    for port in stack.rasa_ports:  # as make run: `rasa run --auth-token "$RASA_TOKEN"`, twice
        rasa = f"http://127.0.0.1:{port}"
        refused = [
            requests.get(f"{rasa}/status", timeout=10),
            requests.get(f"{rasa}/status", params={"token": "a guess"}, timeout=10),
            requests.post(f"{rasa}/model/parse", json={"text": "hello"}, timeout=10),
            requests.get(f"{rasa}/conversations/someone/tracker", timeout=10),
            requests.post(f"{rasa}/conversations/someone/tracker/events", json=[], timeout=10),
            requests.put(f"{rasa}/model", json={"model_file": "models/other.tar.gz"}, timeout=10),
        ]
        assert [response.status_code for response in refused] == [401] * len(refused), rasa
        assert requests.get(f"{rasa}/status", params=stack.rasa_params, timeout=10).json()["model_file"]
    # The gateway has the same RASA_TOKEN: it chats, and health (GET /status) says Rasa is up.
    assert "Harbor Lane Supply assistant" in texts(stack.say(f"c-{uuid.uuid4().hex[:8]}", "hello there"))
    health = requests.get(f"{stack.gateway_url}/health", timeout=10).json()
    assert health["components"]["rasa"]["status"] == "up"


def test_small_talk(stack: Stack) -> None:
    sender = f"c-{uuid.uuid4().hex[:8]}"
    assert "Harbor Lane Supply assistant" in texts(stack.say(sender, "hello there"))
    assert "virtual assistant" in texts(stack.say(sender, "am I talking to a bot?"))
    off_topic = texts(stack.say(sender, "can you recommend a good movie"))
    assert "not sure I can help with that" in off_topic and "connect you with a person" in off_topic
    assert "Goodbye" in texts(stack.say(sender, "bye for now"))


def test_gibberish_is_admitted_logged_and_a_human_offered(stack: Stack) -> None:
    sender = f"c-{uuid.uuid4().hex[:8]}"
    replies = stack.say(sender, "blorp zzzq")
    assert "didn't quite understand" in texts(replies)
    assert [b["payload"] for r in replies for b in r.get("buttons", [])] == ["/affirm", "/deny"]
    assert not any("custom" in reply for reply in replies), "helpdesk payloads stay inside"

    conversation = conversation_of(stack, sender)
    [(text, reason, details)] = stack.query(
        "SELECT text, reason, details FROM unresolved_messages WHERE conversation_id = :c",
        c=conversation,
    )
    assert (text, reason) == ("blorp zzzq", "nlu_fallback")
    assert '"intent_ranking"' in details

    assert "anything else" in texts(stack.say(sender, "no thanks"))
    assert stack.query("SELECT id FROM tickets WHERE conversation_id = :c", c=conversation) == []


def test_asking_for_a_person_opens_a_ticket_and_the_transcript_is_kept(stack: Stack) -> None:
    sender = f"c-{uuid.uuid4().hex[:8]}"
    stack.say(sender, "hi")
    assert "support team" in texts(stack.say(sender, "let me talk to a real person"))
    conversation = conversation_of(stack, sender)
    assert stack.query("SELECT reason, status FROM tickets WHERE conversation_id = :c", c=conversation) == [
        ("customer_request", "queued")
    ]
    authors = [
        a
        for (a,) in stack.query(
            "SELECT author FROM messages WHERE conversation_id = :c ORDER BY id", c=conversation
        )
    ]
    # The handoff's own reply, then where the customer stands in the queue.
    assert authors == ["customer", "bot", "customer", "bot", "bot"]


def test_an_ignored_offer_of_a_person_lapses(stack: Stack) -> None:
    sender = f"c-{uuid.uuid4().hex[:8]}"
    assert "didn't quite understand" in texts(stack.say(sender, "blorp zzzq"))
    assert "Harbor Lane Supply assistant" in texts(stack.say(sender, "hello"))
    assert "anything else" in texts(stack.say(sender, "yes"))
    assert (
        stack.query("SELECT id FROM tickets WHERE conversation_id = :c", c=conversation_of(stack, sender))
        == []
    )
