"""The gateway's REST channel and health check, with Rasa really unreachable."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.app import create_app
from bot.settings import Settings
from tests.stack import free_port


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
    [reply] = await response.json()
    assert reply["recipient_id"] == "dana"
    assert "trouble" in reply["text"]
    messages = stored(database_url, "messages")
    assert messages[0] == ("customer", "where is my order 100234?")
    assert messages[1][0] == "bot"
    assert stored(database_url, "tickets") == [("assistant_unavailable", "queued")]


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
