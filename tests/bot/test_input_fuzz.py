"""Hypothesis against what the channels accept from anyone: the REST channel's body, query
and headers, the widget's Socket.IO events and its signed session ids, Telegram's webhook,
and the parsers under them (`loads_limited`'s depth limit, the client's address behind
proxies). Whatever arrives, the answer is one the channel documents: a 4xx saying what is
wrong, never a 5xx, never a dropped connection, and a refused message is not stored.

The gateway is the real one (`create_app`), beside FakeRasa; the Telegram webhook has the
Bot API stand-in. Each property runs a bounded number of examples (deadline off: a
request's time is not the point), on SQLite, and the REST one also on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import string
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st

from bot.app import create_app
from bot.channels.rest import sender_signature
from bot.channels.socketio import SessionTokens
from bot.limits import LimitSettings
from bot.settings import Settings
from handoff.addresses import client_address, parse_networks
from handoff.api import MAX_JSON_DEPTH, TooDeep, loads_limited
from tests.support.gateway import FakeRasa, webhook_gateway

# Fixtures live for the whole property, not one example: the gateway is shared on purpose.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PURE = settings(max_examples=300, deadline=None)

SHOP = "https://shop.example"
SECRET = "rest-channel-secret"
UNLIMITED = LimitSettings(sender_burst=100_000, sender_per_minute=100_000, address_burst=100_000)

# Any JSON value, nested a little.
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Text, up to past the 2,000 characters a message may have; the fields take it or any JSON.
texts = st.text(max_size=60) | st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=2100)
rest_messages = st.fixed_dictionaries(
    {},
    optional={
        "sender": texts | json_values,
        "message": texts | json_values,
        "metadata": st.dictionaries(st.text(max_size=10), json_values, max_size=3) | json_values,
    },
)
# What a customer might well type: any characters, a few of them.
lines = st.text(min_size=1, max_size=80).filter(str.strip)
well_formed = st.fixed_dictionaries(
    {"sender": lines, "message": lines},
    optional={"metadata": st.dictionaries(st.text(max_size=8), json_values)},
)
rest_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(json.dumps),
    rest_messages.map(json.dumps),
    rest_messages.map(lambda body: json.dumps(body, ensure_ascii=False)),
    well_formed.map(lambda body: json.dumps(body, ensure_ascii=False)),
).map(lambda body: body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass"))


def _settings(database_url: str, rasa_url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url, rasa_url=rasa_url, secret_key="k", limits=UNLIMITED, **overrides
    )


async def _gateway(aiohttp_server: Any, database_url: str, **overrides: Any) -> str:
    rasa = await aiohttp_server(FakeRasa().app())  # hands every conversation over
    settings = _settings(database_url, str(rasa.make_url("")).rstrip("/"), **overrides)
    return str((await aiohttp_server(create_app(settings))).make_url("")).rstrip("/")


def _stored_messages(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM messages")).scalar() or 0)
    finally:
        engine.dispose()


async def _error_of(response: Any) -> str:
    """The message of a JSON error answer, which every refusal must be."""
    assert response.content_type == "application/json", await response.text()
    error = (await response.json())["error"]
    assert error["status"] == response.status
    assert isinstance(error["message"], str) and error["message"]
    return str(error["message"])


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Requests sent as written (no cookie jar)."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    yield session
    await session.close()


# -- REST ------------------------------------------------------------------------------------


@pytest.fixture
async def rest(aiohttp_server, database_url: str) -> str:
    return await _gateway(aiohttp_server, database_url)


@FUZZ
@given(body=rest_bodies)
async def test_any_rest_body_gets_an_answer_or_a_4xx_and_a_refusal_stores_nothing(
    rest, http, database_url, body: bytes
) -> None:
    before = _stored_messages(database_url)
    async with http.post(
        f"{rest}/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status in (200, 400, 413, 429), (response.status, await response.text())
        hypothesis_event(f"HTTP {response.status}")
        if response.status == 200:
            replies = await response.json()
            assert isinstance(replies, list) and all(isinstance(reply, dict) for reply in replies)
            return
        await _error_of(response)
    assert _stored_messages(database_url) == before


@FUZZ
@given(
    sender=st.text(max_size=300),
    after=st.none() | st.text(max_size=20) | st.integers(-5, 10**15).map(str),
)
async def test_collecting_lines_with_any_query_gets_a_list_or_a_400(rest, http, sender, after) -> None:
    query = {"sender": sender} if after is None else {"sender": sender, "after": after}
    async with http.get(f"{rest}/webhooks/rest/messages", params=query) as response:
        assert response.status in (200, 400), (response.status, await response.text())
        hypothesis_event(f"HTTP {response.status}")
        if response.status == 200:
            assert isinstance(await response.json(), list)
        else:
            await _error_of(response)


header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)


@FUZZ
@given(forwarded=header_text)
async def test_any_x_forwarded_for_from_the_proxy_is_refused_cleanly_without_a_secret(
    rest, http, forwarded: str
) -> None:
    # This machine is a trusted proxy: a forwarded request comes from elsewhere, and without
    # REST_CHANNEL_SECRET only this machine is served (403), whatever the header holds.
    headers = {"X-Forwarded-For": forwarded}
    body = {"sender": "fwd", "message": "hello"}
    async with http.post(f"{rest}/webhooks/rest/webhook", json=body, headers=headers) as response:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        only_this_machine = all(hop in ("127.0.0.1", "::1") for hop in hops)
        assert response.status == (200 if only_this_machine else 403), (forwarded, response.status)
        if response.status == 403:
            assert "REST_CHANNEL_SECRET" in await _error_of(response)


@pytest.fixture
async def rest_with_secret(aiohttp_server, tmp_path: Path) -> str:
    return await _gateway(aiohttp_server, f"sqlite:///{tmp_path / 'secret.db'}", rest_secret=SECRET)


@FUZZ
@given(
    sender=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40),
    position=st.integers(min_value=0),
    replacement=st.sampled_from("0123456789abcdefABCDEF "),
    authorization=header_text,
)
async def test_a_signature_with_any_character_changed_is_refused(
    rest_with_secret, http, sender: str, position: int, replacement: str, authorization: str
) -> None:
    assume(sender.strip())
    assume(authorization != f"Bearer {SECRET}")
    right = sender_signature(SECRET, sender)
    index = position % len(right)
    forged = right[:index] + replacement + right[index + 1 :]
    assume(forged != right)
    url, body = f"{rest_with_secret}/webhooks/rest/webhook", {"sender": sender, "message": "hi"}
    for headers in ({"X-Sender-Signature": forged}, {"Authorization": authorization}, {}):
        async with http.post(url, json=body, headers=headers) as response:
            assert response.status == 401, (headers, response.status)
            assert "Authorization" in await _error_of(response)
    async with http.post(url, json=body, headers={"X-Sender-Signature": right}) as response:
        assert response.status == 200, await response.text()  # the sender's own signature works


# -- The widget's Socket.IO events -----------------------------------------------------------


class Socket:
    """One widget connection; every event it receives, in order."""

    ANSWERS = ("session_confirm", "bot_uttered", "error", "rate_limited", "link_result", "link_code")

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for name in (*self.ANSWERS, "typing", "channels", "helpdesk_status"):
            self.client.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Any:
        async def record(data: Any = None) -> None:
            await self.received.put((name, data))

        return record

    async def open(self, base: str, origin: str = SHOP) -> None:
        await self.client.connect(
            base, transports=["websocket"], socketio_path="socket.io", headers={"Origin": origin}
        )

    async def next_of(self, *names: str, timeout: float = 10) -> tuple[str, Any]:
        """The next event among `names` (others before it are passed over)."""
        while True:
            name, data = await asyncio.wait_for(self.received.get(), timeout)
            if name in names:
                return name, data

    async def session(self, session_id: Any = None) -> str:
        await self.client.emit("session_request", {"session_id": session_id})
        _, token = await self.next_of("session_confirm")
        return str(token)


@pytest.fixture
async def widget_gateway(aiohttp_server, tmp_path: Path) -> AsyncIterator[str]:
    yield await _gateway(aiohttp_server, f"sqlite:///{tmp_path / 'widget.db'}")
    # Engine.IO leaves each closed connection's next ping asleep for 25 s; a property opens
    # dozens of connections, whose sleepers would each be reported destroyed at exit.
    for task in asyncio.all_tasks():
        if getattr(task.get_coro(), "__qualname__", "") == "AsyncSocket._send_ping":
            task.cancel()


# What each event is answered with, whatever its data.
ANSWERED_WITH = {
    "user_uttered": ("error", "bot_uttered", "rate_limited"),
    "session_request": ("session_confirm",),
    "link_claim": ("link_result",),
    "link_request": ("link_code",),
}
any_data = st.none() | json_values | st.binary(max_size=50)
events = st.one_of(
    st.tuples(
        st.just("user_uttered"),
        st.fixed_dictionaries({"message": lines}, optional={"customData": json_values})
        | st.fixed_dictionaries({}, optional={"message": texts | json_values, "customData": json_values})
        | any_data,
    ),
    st.tuples(st.just("session_request"), st.fixed_dictionaries({"session_id": json_values}) | any_data),
    st.tuples(st.just("link_claim"), st.fixed_dictionaries({"code": texts | json_values}) | any_data),
    st.tuples(st.just("link_request"), any_data),
)


@FUZZ
@given(sent=events)
async def test_any_widget_event_is_answered_and_the_socket_stays_open(widget_gateway, sent) -> None:
    event, data = sent
    socket = Socket()
    try:
        await socket.open(widget_gateway)
        await socket.session()
        await socket.client.emit(event, data)
        name, answer = await socket.next_of(*ANSWERED_WITH[event])
        hypothesis_event(f"{event} -> {name}")
        if name == "error":
            assert isinstance(answer["message"], str) and answer["message"]
        # Still connected and still served: the same session, confirmed again.
        assert socket.client.connected
        assert "." in await socket.session()
    finally:
        await socket.client.disconnect()


@pytest.fixture
async def widget(widget_gateway) -> AsyncIterator[Socket]:
    socket = Socket()
    await socket.open(widget_gateway)
    yield socket
    await socket.client.disconnect()


async def test_a_session_id_with_its_last_character_changed_starts_a_new_session(widget) -> None:
    # The character base64 leaves spare bits in: three other values of it verified before.
    issued = await widget.session()
    for character in TOKEN_CHARACTERS.replace(issued[-1], ""):
        assert await widget.session(issued[:-1] + character) != issued, character
    assert await widget.session(issued) == issued  # the id as issued still continues it


TOKEN_CHARACTERS = string.ascii_letters + string.digits + "-_."


@settings(max_examples=30, deadline=None)
@given(
    session=st.from_regex(r"[A-Za-z0-9_-]{8,64}", fullmatch=True),
    origin=st.text(max_size=30),
    other=st.text(max_size=30),
)
def test_only_the_token_as_issued_names_its_session(session: str, origin: str, other: str) -> None:
    tokens = SessionTokens("k")
    token = tokens.issue(session, origin)
    assert tokens.session_of(token, origin) == session
    # Every character changed to every other one a token may hold, and each one left out.
    for index in range(len(token)):
        assert tokens.session_of(token[:index] + token[index + 1 :], origin) is None
        for character in TOKEN_CHARACTERS.replace(token[index], ""):
            forged = token[:index] + character + token[index + 1 :]
            assert tokens.session_of(forged, origin) is None, f"{forged!r} passed for {token!r}"
    if other != origin:
        assert tokens.session_of(token, other) is None  # issued for another site's page


# -- Telegram's webhook ----------------------------------------------------------------------

TELEGRAM_SECRET = "s3cret-token"  # what tests.support.gateway.webhook_gateway registers

users = st.fixed_dictionaries(
    {"id": st.integers(1, 2**40), "is_bot": st.booleans(), "first_name": st.text(max_size=10)}
)
chats = st.fixed_dictionaries({"id": st.integers(-(2**40), 2**40), "type": st.just("private")})
messages = st.fixed_dictionaries(
    {"message_id": st.integers(1, 2**31), "date": st.integers(0, 2**31), "chat": chats},
    optional={"text": texts | json_values, "from": users | json_values, "caption": texts},
)
updates = st.fixed_dictionaries(
    {"update_id": st.integers(1, 2**31) | json_values},
    optional={
        "message": messages | json_values,
        "callback_query": st.fixed_dictionaries(
            {"id": st.text(max_size=8), "from": users, "chat_instance": st.text(max_size=8)},
            optional={"data": texts | json_values},
        )
        | json_values,
    },
)
telegram_bodies = st.one_of(
    st.binary(max_size=100), json_values.map(json.dumps), updates.map(json.dumps)
).map(lambda body: body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass"))


@pytest.fixture
async def telegram_webhook(aiohttp_server, tmp_path: Path) -> str:
    bot_api = await webhook_gateway(aiohttp_server, f"sqlite:///{tmp_path / 'telegram.db'}", FakeRasa().app())
    assert bot_api.webhook is not None
    return str(bot_api.webhook["url"])


@FUZZ
@given(body=telegram_bodies, wrong_secret=st.none() | header_text)
async def test_any_webhook_post_gets_200_or_400_and_403_without_the_secret(
    telegram_webhook, http, body: bytes, wrong_secret: str | None
) -> None:
    assume(wrong_secret != TELEGRAM_SECRET)
    headers = {"Content-Type": "application/json"}
    if wrong_secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = wrong_secret
    async with http.post(telegram_webhook, data=body, headers=headers) as response:
        assert response.status == 403, response.status
    headers["X-Telegram-Bot-Api-Secret-Token"] = TELEGRAM_SECRET
    async with http.post(telegram_webhook, data=body, headers=headers) as response:
        assert response.status in (200, 400), (response.status, await response.text(), body[:200])
        hypothesis_event(f"HTTP {response.status}")
        if response.status == 400:
            assert "not a Telegram update" in await _error_of(response)


# -- The parsers -----------------------------------------------------------------------------


def _depth(value: Any) -> int:
    """Brackets open at the deepest point: 0 for a scalar, 1 for [] and [1], 2 for [[]]."""
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@st.composite
def nested(draw: st.DrawFn) -> Any:
    """A document nested 0-40 levels deep, through lists and objects, around any leaf."""
    value = draw(scalars | st.just([]) | st.just({}))
    wrappers = draw(st.lists(st.sampled_from(["list", "dict"]), max_size=40))
    for wrapper in wrappers:
        value = [value] if wrapper == "list" else {draw(st.text(max_size=3)): value}
    return value


@PURE
@given(document=nested() | json_values)
def test_loads_limited_takes_32_levels_and_refuses_deeper(document: Any) -> None:
    text = json.dumps(document)
    if _depth(document) <= MAX_JSON_DEPTH:
        assert loads_limited(text) == json.loads(text)
    else:
        with pytest.raises(TooDeep, match="nested too deeply"):
            loads_limited(text)


@settings(max_examples=20, deadline=None)
@given(depth=st.integers(MAX_JSON_DEPTH + 1, 5000), kind=st.sampled_from(["array", "object"]))
def test_loads_limited_refuses_deep_nesting_with_its_own_error(depth: int, kind: str) -> None:
    # Past about a thousand levels Python's own parser gives up (RecursionError): the same error.
    text = "[" * depth + "]" * depth if kind == "array" else '{"a":' * depth + "1" + "}" * depth
    with pytest.raises(TooDeep, match="nested too deeply"):
        loads_limited(text)


any_text = st.text(max_size=60)
addresses = st.ip_addresses().map(str)
hops = st.lists(addresses | any_text, max_size=5).map(", ".join)
TRUSTED = parse_networks("127.0.0.1,::1,10.0.0.0/8")


def _trusted(address: str) -> bool:
    try:
        return any(ipaddress.ip_address(address) in network for network in TRUSTED)
    except ValueError:
        return False


@PURE
@given(peer=st.none() | addresses | any_text, forwarded=st.none() | hops | any_text)
def test_the_client_address_is_the_peer_or_a_hop_and_never_a_trusted_proxy(peer, forwarded) -> None:
    address = client_address(peer, forwarded, TRUSTED)
    if peer is None:
        assert address is None
    elif not _trusted(peer):
        assert address == peer  # a client cannot name itself through X-Forwarded-For
    elif address is not None:
        assert address in [hop.strip() for hop in (forwarded or "").split(",")]
        assert not _trusted(address)


@PURE
@given(forged=any_text | hops, client=addresses)
def test_what_a_client_writes_into_x_forwarded_for_is_passed_over(forged: str, client: str) -> None:
    assume(not _trusted(client))
    # The proxy on this machine appends the address it saw; what the client sent is before it.
    assert client_address("127.0.0.1", f"{forged}, {client}", TRUSTED) == client


networks = st.builds(
    lambda address, prefix: ipaddress.ip_network(
        f"{address}/{prefix % (address.max_prefixlen + 1)}", strict=False
    ),
    st.ip_addresses(),
    st.integers(0, 128),
)


@PURE
@given(value=any_text)
def test_trusted_proxies_parse_or_refuse_with_a_value_error(value: str) -> None:
    try:
        parsed = parse_networks(value)
    except ValueError:
        return  # the gateway refuses to start, saying which value
    assert len(parsed) == len([part for part in value.split(",") if part.strip()])


@PURE
@given(listed=st.lists(networks, max_size=4), spaces=st.sampled_from([",", ", ", " , "]))
def test_trusted_proxies_as_written_are_the_networks_meant(listed, spaces: str) -> None:
    assert parse_networks(spaces.join(map(str, listed))) == tuple(listed)
