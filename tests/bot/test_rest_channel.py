"""The gateway's REST channel and health check, with Rasa really unreachable."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import web

from bot.app import create_app
from bot.channels.rest import sender_signature
from bot.settings import Settings
from tests.support.stack import free_port


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path, database_url: str):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: Rasa is down
    settings = Settings(database_url=database_url, rasa_url=closed, action_server_url=closed)
    return await aiohttp_client(create_app(settings))


def stored(database_url: str, table: str) -> list[tuple]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            if table == "messages":
                return [
                    tuple(r) for r in conn.execute(sa.text("SELECT author, text FROM messages ORDER BY id"))
                ]
            return [tuple(r) for r in conn.execute(sa.text("SELECT reason, status FROM tickets ORDER BY id"))]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"", 400, "body is empty"),
        (b"\xff\xfe\x00garbage", 400, "not valid UTF-8"),
        (b'{"sender": "a", "message": ', 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"message": "hi"}', 400, "'sender'"),
        (b'{"sender": 42, "message": "hi"}', 400, "'sender'"),
        (b'{"sender": "a", "message": 7}', 400, "'message' must be a string"),
        (b'{"sender": "a", "message": "   "}', 400, "'message' is empty"),
        (b'{"sender": "a", "message": "hi", "metadata": "x"}', 400, "'metadata'"),
        (b'{"sender": "a", "message": "\\ud800 broken"}', 400, "not valid text"),
        (b'{"sender": "\\u0000", "message": "hi"}', 400, "not valid text"),
        (('{"sender": "a", "message": "' + "x" * 2001 + '"}').encode(), 413, "limit is 2000"),
        (b'{"sender": "a", "message": "' + b"x" * 70000 + b'"}', 413, "too large"),
        (b"[" * 20000 + b"]" * 20000, 400, "nested too deeply"),  # was a 500
        (
            b'{"sender": "a", "message": "hi", "metadata": ' + b'{"a": ' * 40 + b"1" + b"}" * 41,
            400,
            "too deeply",
        ),
    ],
)
async def test_bad_input_gets_a_clear_4xx_and_nothing_is_stored(
    client, database_url, body, status, says
) -> None:
    response = await client.post(
        "/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == status
    error = (await response.json())["error"]
    assert says in error["message"]
    assert stored(database_url, "messages") == []


async def test_exactly_2000_characters_is_accepted(client) -> None:
    response = await client.post("/webhooks/rest/webhook", json={"sender": "a", "message": "x" * 2000})
    assert response.status == 200


async def test_rasa_down_gets_an_apology_a_ticket_and_loses_nothing(client, database_url) -> None:
    response = await client.post(
        "/webhooks/rest/webhook", json={"sender": "dana", "message": "where is my order 100234?"}
    )
    assert response.status == 200
    apology, wait = await response.json()
    assert apology["recipient_id"] == "dana"
    assert "trouble" in apology["text"]
    assert "queue" in wait["text"]  # its place, or when agents are back
    # From now on the conversation waits for a person: the bot is not asked again.
    response = await client.post(
        "/webhooks/rest/webhook", json={"sender": "dana", "message": "hello? anyone?"}
    )
    [reply] = await response.json()
    assert "number 1 in the queue" in reply["text"]
    messages = stored(database_url, "messages")
    assert [m[0] for m in messages] == ["customer", "bot", "bot", "customer", "bot"]
    assert messages[0] == ("customer", "where is my order 100234?")
    # One waiting ticket, however often the customer writes while the assistant is down.
    assert stored(database_url, "tickets") == [("assistant_unavailable", "queued")]


async def fake_rasa(aiohttp_server, answer):
    """A stand-in for Rasa's REST channel that calls `answer()` for its reply."""

    async def webhook(request: web.Request) -> web.Response:
        return web.json_response(answer())

    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", webhook)
    return await aiohttp_server(app)


async def test_an_empty_answer_from_rasa_gets_the_apology_and_a_ticket(
    aiohttp_client, aiohttp_server, database_url
) -> None:
    # Rasa answers [] when an action fails, for example when the action server is down.
    rasa = await fake_rasa(aiohttp_server, lambda: [])
    settings = Settings(database_url=database_url, rasa_url=str(rasa.make_url("")).rstrip("/"))
    client = await aiohttp_client(create_app(settings))
    response = await client.post("/webhooks/rest/webhook", json={"sender": "eve", "message": "hi"})
    assert response.status == 200
    assert "trouble" in (await response.json())[0]["text"]
    assert stored(database_url, "tickets") == [("assistant_unavailable", "queued")]


async def test_a_database_failure_after_rasa_answered_is_a_clear_503(
    aiohttp_client, aiohttp_server, database_url
) -> None:
    def break_the_database_then_answer() -> list[dict[str, str]]:
        engine = sa.create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE messages RENAME TO messages_gone"))
        engine.dispose()
        return [{"recipient_id": "x", "text": "Hello!"}]

    rasa = await fake_rasa(aiohttp_server, break_the_database_then_answer)
    settings = Settings(database_url=database_url, rasa_url=str(rasa.make_url("")).rstrip("/"))
    client = await aiohttp_client(create_app(settings))
    response = await client.post("/webhooks/rest/webhook", json={"sender": "fay", "message": "hi"})
    assert response.status == 503
    assert "send it again" in (await response.json())["error"]["message"]


async def test_health_is_503_and_names_what_is_down(client) -> None:
    response = await client.get("/health")
    assert response.status == 503
    report = await response.json()
    assert report["status"] == "degraded"
    components = report["components"]
    assert components["gateway"]["status"] == "up"
    assert components["database"]["status"] == "up"
    assert components["rasa"]["status"] == "down"
    assert components["action_server"]["status"] == "down"


async def test_unknown_route_is_a_json_404(client) -> None:
    response = await client.get("/nope")
    assert response.status == 404
    assert "error" in await response.json()


async def _rest_gateway(aiohttp_client, aiohttp_server, database_url, secret: str | None):
    rasa = await fake_rasa(aiohttp_server, lambda: [{"recipient_id": "x", "text": "Hello!"}])
    settings = Settings(
        database_url=database_url, rasa_url=str(rasa.make_url("")).rstrip("/"), rest_secret=secret
    )
    return await aiohttp_client(create_app(settings))


async def test_with_a_secret_only_the_back_end_or_the_senders_signature_may_speak_for_a_sender(
    aiohttp_client, aiohttp_server, database_url
) -> None:
    client = await _rest_gateway(aiohttp_client, aiohttp_server, database_url, "s3cret")
    body = {"sender": "dana", "message": "hi"}
    own = {"X-Sender-Signature": sender_signature("s3cret", "dana")}
    others = {"X-Sender-Signature": sender_signature("s3cret", "mallory")}
    for headers, status in (
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        (others, 401),  # a signature is for one sender only
        ({"X-Sender-Signature": "0" * 64}, 401),
        ({"Authorization": "Bearer s3cret"}, 200),
        (own, 200),
    ):
        response = await client.post("/webhooks/rest/webhook", json=body, headers=headers)
        assert response.status == status, headers
        pulled = await client.get("/webhooks/rest/messages", params={"sender": "dana"}, headers=headers)
        assert pulled.status == status, headers
    assert (
        "Authorization: Bearer"
        in (await (await client.get("/webhooks/rest/messages?sender=dana")).json())["error"]["message"]
    )
    # Refused messages were not stored: two accepted messages and their replies.
    assert len(stored(database_url, "messages")) == 4


async def test_without_a_secret_only_this_machine_is_served(
    aiohttp_client, aiohttp_server, database_url
) -> None:
    client = await _rest_gateway(aiohttp_client, aiohttp_server, database_url, None)
    assert (await client.post("/webhooks/rest/webhook", json={"sender": "a", "message": "hi"})).status == 200
    forwarded = {"X-Forwarded-For": "203.0.113.9"}  # through a proxy: someone elsewhere
    response = await client.post(
        "/webhooks/rest/webhook", json={"sender": "a", "message": "hi"}, headers=forwarded
    )
    assert response.status == 403 and "REST_CHANNEL_SECRET" in (await response.json())["error"]["message"]
    assert (await client.get("/webhooks/rest/messages?sender=a", headers=forwarded)).status == 403
