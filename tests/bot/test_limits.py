"""Rate limits (bot/limits.py): one sender or one address cannot make everyone else wait.

The buckets alone (in process, in the local Redis shared by two gateways, and with Redis
gone), the client's address behind proxies, one message of a conversation at a time, and
what each channel's customer sees: REST's 429 with Retry-After, the widget's notice, with
nothing stored and no ticket opened.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import uuid
from typing import Any

import pytest
import redis.asyncio as redis
import socketio
import sqlalchemy as sa
from aiohttp import web

from bot.app import create_app
from bot.limits import PREFIX, Conversations, Limits, LimitSettings, TooManyMessages
from bot.settings import Settings
from handoff.addresses import client_address
from tests.support.stack import free_port
from token_buckets import TokenBuckets

REDIS_URL = "redis://127.0.0.1:6379/0"
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
# 600 a minute is one token every 100 ms: the tests wait for a refill in a fraction of a second.
FAST = LimitSettings(sender_per_minute=600, sender_burst=3, address_per_minute=600, address_burst=5)


async def admitted(limits: Limits, sender: str, address: str | None = None, text: str = "hi") -> bool:
    try:
        await limits.admit(sender, address, text)
        return True
    except TooManyMessages:
        return False


async def test_a_sender_gets_its_burst_then_waits_for_the_next_token() -> None:
    limits = Limits(FAST)
    assert [await admitted(limits, "s1") for _ in range(4)] == [True, True, True, False]
    with pytest.raises(TooManyMessages) as refused:
        await limits.admit("s1", None, "hi")
    assert refused.value.refusal.scope == "sender" and refused.value.refusal.retry_after_seconds == 1
    assert await admitted(limits, "another sender")  # each sender has its own bucket
    await asyncio.sleep(0.15)
    assert await admitted(limits, "s1")


async def test_senders_that_rotate_still_share_their_address_bucket() -> None:
    limits = Limits(FAST)
    results = [await admitted(limits, f"new-sender-{n}", "198.51.100.7") for n in range(7)]
    assert results == [True] * 5 + [False] * 2
    assert await admitted(limits, "new-sender-x", "198.51.100.8")


async def test_a_long_message_costs_more_and_one_longer_than_the_burst_still_fits_once() -> None:
    limits = Limits(LimitSettings(sender_per_minute=60, sender_burst=10))
    assert limits.cost("x" * 2000) == 5 and limits.cost("hi") == 1
    assert await admitted(limits, "s", text="x" * 2000)
    assert await admitted(limits, "s", text="x" * 2000)
    assert not await admitted(limits, "s", text="hi")


async def test_two_gateways_share_the_buckets_in_redis_and_the_keys_expire() -> None:
    sender = f"test-{uuid.uuid4().hex}"
    one, two = (
        Limits(FAST, TokenBuckets(PREFIX, redis.from_url(REDIS_URL))),
        Limits(FAST, TokenBuckets(PREFIX, redis.from_url(REDIS_URL))),
    )
    try:
        results = [await admitted(gateway, sender) for gateway in (one, two, one, two)]
        assert results == [True, True, True, False]
        ttl = await redis.from_url(REDIS_URL).pttl(f"harbor:limit:sender:{sender}")
        assert 0 < ttl <= 60_000
    finally:
        await one.close()
        await two.close()


async def test_with_redis_gone_the_gateway_limits_on_its_own(caplog: pytest.LogCaptureFixture) -> None:
    limits = Limits(FAST, TokenBuckets(PREFIX, redis.from_url(f"redis://127.0.0.1:{free_port()}/0")))
    with caplog.at_level(logging.WARNING, logger="token_buckets"):
        assert [await admitted(limits, "s") for _ in range(4)] == [True, True, True, False]
    assert "fall back to this process" in caplog.text
    await limits.close()


@pytest.mark.parametrize(
    ("peer", "forwarded", "address"),
    [
        ("203.0.113.5", None, "203.0.113.5"),
        ("203.0.113.5", "10.9.9.9", "203.0.113.5"),  # a client cannot name itself
        ("127.0.0.1", "203.0.113.5", "203.0.113.5"),  # nginx on this machine forwarded it
        ("127.0.0.1", "198.51.100.1, 203.0.113.5", "203.0.113.5"),  # the hop nginx saw
        ("127.0.0.1", "203.0.113.5, 127.0.0.1", "203.0.113.5"),
        ("127.0.0.1", None, None),  # this machine itself: limited per sender only
        ("::1", "garbage", "garbage"),
    ],
)
def test_the_client_address_behind_trusted_proxies(
    peer: str, forwarded: str | None, address: str | None
) -> None:
    assert client_address(peer, forwarded, LOOPBACK) == address


async def test_a_conversation_answers_one_message_at_a_time_in_order_and_refuses_a_pile() -> None:
    turns = Conversations(waiting=2)
    order: list[str] = []

    async def message(name: str) -> None:
        async with turns.turn("web:alice"):
            order.append(f"{name} starts")
            await asyncio.sleep(0.05)
            order.append(f"{name} ends")

    first = asyncio.create_task(message("1"))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(message(name)) for name in ("2", "3")]
    await asyncio.sleep(0)
    with pytest.raises(TooManyMessages) as busy:
        async with turns.turn("web:alice"):
            pass
    assert busy.value.refusal.scope == "busy"
    async with turns.turn("web:bob"):  # another conversation does not wait
        pass
    await asyncio.gather(first, *waiting)
    assert order == ["1 starts", "1 ends", "2 starts", "2 ends", "3 starts", "3 ends"]


class CountingRasa:
    def __init__(self) -> None:
        self.messages = 0
        self.metadata: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        async def webhook(request: web.Request) -> web.Response:
            body = await request.json()
            self.messages += 1
            self.metadata.append(body.get("metadata") or {})
            return web.json_response([{"recipient_id": body["sender"], "text": "Hello!"}])

        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", webhook)
        return app


async def _gateway(aiohttp_server: Any, database_url: str, rasa: CountingRasa) -> str:
    server = await aiohttp_server(rasa.app())
    settings = Settings(
        database_url=database_url,
        rasa_url=str(server.make_url("")).rstrip("/"),
        secret_key="k",
        limits=LimitSettings(sender_per_minute=6, sender_burst=3, address_per_minute=60, address_burst=5),
    )
    return str((await aiohttp_server(create_app(settings))).make_url("")).rstrip("/")


async def _rest_client(
    aiohttp_client: Any, aiohttp_server: Any, database_url: str, rasa: CountingRasa, limits: LimitSettings
) -> Any:
    """A client of a gateway in front of `rasa`, with the shop back end's REST secret."""
    server = await aiohttp_server(rasa.app())
    settings = Settings(
        database_url=database_url,
        rasa_url=str(server.make_url("")).rstrip("/"),
        limits=limits,
        rest_secret="back-end secret",
    )
    return await aiohttp_client(create_app(settings), headers={"Authorization": "Bearer back-end secret"})


def _count(database_url: str, table: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


async def test_rest_over_the_limit_gets_429_with_retry_after_and_nothing_is_stored(
    aiohttp_client, aiohttp_server, database_url
) -> None:
    rasa = CountingRasa()
    limits = LimitSettings(sender_per_minute=6, sender_burst=3, address_per_minute=60, address_burst=5)
    client = await _rest_client(aiohttp_client, aiohttp_server, database_url, rasa, limits)
    statuses = []
    for n in range(5):
        response = await client.post(
            "/webhooks/rest/webhook", json={"sender": "flood", "message": f"spam {n}"}
        )
        statuses.append(response.status)
    assert statuses == [200, 200, 200, 429, 429]
    assert response.headers["Retry-After"] == "10"  # 6 a minute: a token every 10 s
    assert "faster than I can read" in (await response.json())["error"]["message"]
    assert rasa.messages == 3
    assert _count(database_url, "messages") == 6  # three messages and their replies
    assert _count(database_url, "tickets") == 0
    calm = await client.post("/webhooks/rest/webhook", json={"sender": "calm", "message": "hello"})
    assert calm.status == 200
    # Forwarded by the proxy on this machine: the client's address has its own bucket, and
    # senders made up one after another run it dry.
    forwarded = []
    for n in range(7):
        response = await client.post(
            "/webhooks/rest/webhook",
            json={"sender": f"rotating-{n}", "message": "hi"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        forwarded.append(response.status)
    assert forwarded == [200] * 5 + [429] * 2


async def test_the_message_after_a_refusal_tells_rasa_how_many_were_refused(
    aiohttp_client, aiohttp_server, database_url
) -> None:
    # The bot does not count it as another try at being understood (actions/assessment.py).
    rasa = CountingRasa()
    limits = LimitSettings(sender_per_minute=60, sender_burst=1, address_per_minute=600, address_burst=50)
    client = await _rest_client(aiohttp_client, aiohttp_server, database_url, rasa, limits)

    async def send(sender: str, text: str) -> int:
        response = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
        return response.status

    assert [await send("flood", f"ping {n}") for n in range(3)] == [200, 429, 429]
    assert await send("calm", "hello") == 200
    await asyncio.sleep(1.1)  # a token every second
    assert await send("flood", "ping 3") == 200
    assert await send("flood", "ping 4") == 429
    await asyncio.sleep(1.1)
    assert await send("flood", "ping 5") == 200
    assert [meta["refused_before"] for meta in rasa.metadata] == [0, 0, 2, 1]
    # A client cannot say it for itself.
    await asyncio.sleep(1.1)
    response = await client.post(
        "/webhooks/rest/webhook",
        json={"sender": "flood", "message": "hi", "metadata": {"refused_before": 9}},
    )
    assert response.status == 200 and rasa.metadata[-1]["refused_before"] == 0


async def test_the_widget_is_told_to_wait_and_gets_its_text_back(aiohttp_server, database_url) -> None:
    rasa = CountingRasa()
    base = await _gateway(aiohttp_server, database_url, rasa)
    client = socketio.AsyncClient(reconnection=False)
    events: dict[str, asyncio.Queue[Any]] = {
        name: asyncio.Queue() for name in ("session_confirm", "bot_uttered", "rate_limited")
    }
    for name, queue in events.items():
        client.on(name, queue.put_nowait)
    await client.connect(base, transports=["websocket"], socketio_path="socket.io")
    try:
        await client.emit("session_request", {"session_id": None})
        await asyncio.wait_for(events["session_confirm"].get(), 10)
        for n in range(4):
            await client.emit("user_uttered", {"message": f"line {n}"})
        for _ in range(3):
            assert (await asyncio.wait_for(events["bot_uttered"].get(), 10))["text"] == "Hello!"
        refused = await asyncio.wait_for(events["rate_limited"].get(), 10)
        assert refused["text"] == "line 3" and refused["retry_after"] == 10
        assert "wait 10 seconds" in refused["message"]
    finally:
        await client.disconnect()
    assert rasa.messages == 3 and _count(database_url, "tickets") == 0
