"""Scale mode with real processes (`make test-faults`): two gateways, two Rasa servers and two
action servers behind nginx, on PostgreSQL and Redis, under supervisord (deploy/scaled.py).

Customers chat over Socket.IO through nginx from addresses of their own (127.0.0.x), so they
spread over both gateways, while a process is killed with SIGKILL. What a customer would
notice is asserted: every message ends its turn (an answer, or the apology and a place in
the queue), every message is in the transcript, every line the helpdesk stored for a
customer reached them exactly once, a customer on a killed gateway reconnects to the other
and goes on, and supervisord brings the process back.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.support.agents import PASSWORD
from tests.support.chatter import APOLOGY, Chat, chat_while, conversation_id, transcript
from tests.support.scaled import ScaledStack
from tests.support.web_customer import WebCustomer, texts_of

pytestmark = pytest.mark.faults

CUSTOMERS = 8


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaledStack]:
    # Rasa's timeout, and so the wait before a message no gateway answered gets the apology
    # (twice this), shorter than the 30 s default.
    stack = ScaledStack(tmp_path_factory.mktemp("scaled"), env={"RASA_TIMEOUT_SECONDS": "15"})
    stack.start()
    try:
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop_all()


def _chat_while(scaled: ScaledStack, seconds: float, fault: Callable[[], object]) -> list[Chat]:
    # One second between a reply and the next message: faster than people, for more overlap.
    return chat_while(scaled.public_url, CUSTOMERS, seconds, fault, pause=1.0)


def _transcript(scaled: ScaledStack, chat: Chat) -> tuple[list[str], list[str]]:
    return transcript(scaled.query, chat)


def _assert_nothing_lost(scaled: ScaledStack, chats: list[Chat]) -> None:
    for chat in chats:
        assert chat.sent, chat
        assert not chat.unanswered, f"turns that never ended: {chat}"
        stored, lines = _transcript(scaled, chat)
        assert stored == chat.sent, f"what {chat.source} sent and what was stored differ"
        # Every line stored for the customer reached them once, in order: none twice, none lost.
        assert chat.received == lines, f"{chat.source} received {chat.received}, stored {lines}"


def _rest(scaled: ScaledStack, base: str, sender: str, text: str) -> list[dict[str, str]]:
    response = requests.post(
        f"{base}/webhooks/rest/webhook",
        json={"sender": sender, "message": text},
        headers=scaled.rest_headers,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _an_agent_on_the_other_gateway_answers(scaled: ScaledStack, email: str) -> None:
    scaled.create_agent(email, PASSWORD, "agent")
    one, other = scaled.gateway_urls

    async def run() -> None:
        customer = WebCustomer(one)  # straight to the first gateway
        await customer.connect()
        assert "support team" in texts_of(await customer.say("I want to talk to a real person"))
        agent = requests.Session()
        agent.headers["Origin"] = other  # the console's page, served by the other gateway
        login = agent.post(
            f"{other}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=30
        )
        assert login.status_code == 200, login.text
        queue = agent.get(f"{other}/api/v1/tickets", timeout=30).json()
        ticket = next(
            t
            for t in queue
            if t["last_customer_message"] == "I want to talk to a real person" and t["status"] == "queued"
        )
        assert agent.post(f"{other}/api/v1/tickets/{ticket['id']}/claim", timeout=30).status_code == 200
        sent = agent.post(
            f"{other}/api/v1/tickets/{ticket['id']}/messages", json={"text": "Alex here, on it."}, timeout=30
        )
        assert sent.status_code == 201, sent.text
        line = await customer.wait_for(
            "bot_uttered", lambda data: data.get("text") == "Alex here, on it.", 15
        )
        assert line == {"text": "Alex here, on it."}
        await asyncio.sleep(1)
        again = [data for name, data in customer.received if name == "bot_uttered" and data == line]
        assert again == [], "the agent's line came twice"
        await customer.close()

    asyncio.run(run())


def test_an_agent_on_one_gateway_answers_a_customer_on_the_other_live(scaled: ScaledStack) -> None:
    _an_agent_on_the_other_gateway_answers(scaled, "alex.scaled@shop.test")


def test_a_customer_with_a_tab_on_each_gateway_sees_each_reply_once_in_both(scaled: ScaledStack) -> None:
    one, other = scaled.gateway_urls

    async def run() -> None:
        first = WebCustomer(one)
        session = await first.connect()
        second = WebCustomer(other, session_id=session)
        assert await second.connect() == session  # the same session, from the other gateway
        replies = await first.say("how long is the warranty on headphones?")
        assert "1-year" in texts_of(replies)
        await asyncio.sleep(1)
        seen = [data for name, data in second.received if name == "bot_uttered"]
        assert seen == replies, "the other gateway's tab did not see the reply exactly once"
        await first.close()
        await second.close()

    asyncio.run(run())


def test_killing_a_rasa_server_under_load_loses_nothing(scaled: ScaledStack) -> None:
    killed: dict[str, float] = {}

    def kill() -> None:
        killed["pid"], killed["at"] = scaled.kill("rasa-1"), time.monotonic()

    chats = _chat_while(scaled, 30, kill)
    _assert_nothing_lost(scaled, chats)
    assert all(chat.received.count(APOLOGY) <= 1 for chat in chats)
    # The conversations pinned to the killed server (the gateway's crc32 of the id over
    # RASA_URL, rasa-1 first) went on with the other server while it was down: only the
    # message at work on it when it died got the apology, not every one after.
    pinned = [chat for chat in chats if zlib.crc32(conversation_id(scaled.query, chat).encode()) % 2 == 0]
    assert pinned, "no conversation on the killed server: more customers"
    moved_on = [texts for chat in pinned for texts in _answered_by_the_bot(chat, after=killed["at"] + 0.5)]
    assert moved_on, f"no conversation of the killed server was answered by the other: {pinned}"
    scaled.wait_restarted("rasa-1", int(killed["pid"]))
    assert "return" in str(
        _rest(scaled, scaled.public_url, "after-rasa-restart", "until when can I bring shoes back?")
    )


def _answered_by_the_bot(chat: Chat, after: float) -> list[list[str]]:
    """The bot's answers to messages sent after `after`, before any apology (after it, the
    conversation waits for a person, and the lines are about the queue)."""
    answers = []
    for sent_at, texts in chat.turns:
        if APOLOGY in texts:
            break
        if sent_at > after and texts:
            answers.append(texts)
    return answers


def test_killing_an_action_server_under_load_loses_nothing(scaled: ScaledStack) -> None:
    killed: list[int] = []
    chats = _chat_while(scaled, 25, lambda: killed.append(scaled.kill("actions-1")))
    _assert_nothing_lost(scaled, chats)
    # nginx sends the calls after the kill to the other action server: only the calls the
    # dead one had taken got the apology (were each call after it lost too, about every
    # conversation would have had one within seconds).
    assert sum(chat.received.count(APOLOGY) for chat in chats) <= CUSTOMERS // 2
    scaled.wait_restarted("actions-1", killed[0])


def test_a_customer_on_a_killed_gateway_reconnects_to_the_other_and_goes_on(scaled: ScaledStack) -> None:
    killed: list[int] = []
    chats = _chat_while(scaled, 25, lambda: killed.append(scaled.kill("gateway-1")))
    moved = [chat for chat in chats if chat.reconnects]
    assert moved, "no customer was on the killed gateway"
    assert all(chat.answered_after_reconnect for chat in moved), moved
    for chat in chats:
        assert not chat.unanswered, chat
        stored, lines = _transcript(scaled, chat)
        # What was sent is stored, the message the gateway died on included.
        assert stored == chat.sent, chat
        # Nothing came twice: a reply the gateway stored just before it died may be missing.
        assert all(chat.received.count(text) <= lines.count(text) for text in set(chat.received)), chat
    # The message a gateway died on is answered by the other: the apology and a ticket, once
    # twice Rasa's timeout has passed.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(_waits_for_an_answer(scaled, chat) for chat in moved):
        time.sleep(2)
    assert not [chat.source for chat in moved if _waits_for_an_answer(scaled, chat)]
    scaled.wait_restarted("gateway-1", killed[0])


def _waits_for_an_answer(scaled: ScaledStack, chat: Chat) -> bool:
    rows = scaled.query(
        "SELECT c.mode, m.author FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "JOIN channel_identities i ON i.customer_id = c.customer_id "
        "WHERE i.channel = 'socketio' AND i.external_id = :session ORDER BY m.id DESC LIMIT 1",
        session=chat.conversation_session,
    )
    return bool(rows) and rows[0] == ("bot", "customer")


def test_the_scaled_stack_restarts_what_it_runs(scaled: ScaledStack) -> None:
    status = scaled.supervisorctl("status")
    for program in ("rasa-1", "rasa-2", "actions-1", "actions-2", "gateway-1", "gateway-2", "nginx"):
        assert f"{program} " in status and "RUNNING" in status.split(program, 1)[1].splitlines()[0], status


def _postgres_restart() -> None:
    version = sorted(Path("/etc/postgresql").iterdir())[-1].name
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _redis_outage(seconds: float) -> None:
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], capture_output=True)
    try:
        time.sleep(seconds)
    finally:
        # As `make services` starts it (it keeps nothing on disk here).
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379"]
            + ["--save", "", "--appendonly", "no"],
            check=True,
            capture_output=True,
        )


@pytest.mark.skipif(
    not Path("/etc/postgresql").is_dir(), reason="PostgreSQL is not this machine's to restart"
)
def test_restarting_postgresql_under_load_the_processes_reconnect(scaled: ScaledStack) -> None:
    chats = _chat_while(scaled, 25, _postgres_restart)
    for chat in chats:
        assert not chat.unanswered, chat
        assert chat.answered_after_fault, f"{chat.source} got no answer after the restart: {chat}"
        stored, _ = _transcript(scaled, chat)
        # A message refused while the database was away was said to be refused (and sent
        # again); every other one is stored.
        assert [text for text in chat.sent if text not in chat.refused] == [
            text for text in stored if text not in chat.refused
        ], chat


def test_stopping_redis_customers_are_answered_and_it_recovers(scaled: ScaledStack) -> None:
    chats = _chat_while(scaled, 25, lambda: _redis_outage(5))
    for chat in chats:
        assert not chat.unanswered, chat
        stored, lines = _transcript(scaled, chat)
        assert stored == chat.sent, chat
        assert chat.received == lines, chat
    # Once Redis is back, Rasa takes its locks again and the gateways publish again: a new
    # customer is answered by the bot, and an agent on one gateway reaches a customer on
    # the other (test_an_agent_on_one_gateway... asserts it first, before any fault).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        replies = _rest(scaled, scaled.public_url, f"after-redis-{time.monotonic()}", "hello")
        if replies and replies[0].get("text") != APOLOGY:
            break
        time.sleep(2)
    assert replies and replies[0].get("text") != APOLOGY, replies
    _an_agent_on_the_other_gateway_answers(scaled, "sam.scaled@shop.test")
