"""The agent API through the gateway: login and roles, the queue, claim, replies the customer
collects, hand-back, close and CSAT, the live websocket.

Rasa is a stand-in here (a small aiohttp server that answers every message with a handoff
and records what the helpdesk writes into its trackers); tests/e2e/test_handoff.py runs the
same path against the real model and action server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bot.app import create_app
from bot.settings import Settings
from handoff import api, db
from handoff.auth import create_agent
from tests.support.gateway import PASSWORD, Browser, FakeRasa, collect, escalate, eventually, say


@pytest.fixture
async def gateway(aiohttp_server, database_url) -> AsyncIterator[tuple[str, FakeRasa, str]]:
    rasa = FakeRasa()
    rasa_server = await aiohttp_server(rasa.app())
    settings = Settings(
        database_url=database_url, rasa_url=str(rasa_server.make_url("")).rstrip("/"), secret_key="test-key"
    )
    server = await aiohttp_server(create_app(settings))
    engine = db.create_engine(database_url)
    with db.sessionmaker(engine, future=True).begin() as session:
        for email, role in (
            ("alex@shop.test", "agent"),
            ("sam@shop.test", "agent"),
            ("tia@shop.test", "trainer"),
        ):
            create_agent(session, email, PASSWORD, role, email.split("@")[0].title())
    engine.dispose()
    yield str(server.make_url("")).rstrip("/"), rasa, database_url


@pytest.fixture
async def people(gateway) -> AsyncIterator[dict[str, Browser]]:
    base = gateway[0]
    browsers = {name: Browser(base) for name in ("alex", "sam", "tia", "customer", "stranger")}
    yield browsers
    for browser in browsers.values():
        await browser.close()


async def test_the_console_needs_a_login(people) -> None:
    stranger = people["stranger"]
    assert (await stranger.call("GET", "/api/v1/tickets"))[0] == 401
    assert (await stranger.call("POST", "/api/v1/tickets/1/claim"))[0] == 401
    status, _ = await stranger.call("GET", "/agent")
    assert status == 302  # to the login page
    assert (await stranger.call("GET", "/agent/login"))[0] == 200
    assert await stranger.login("alex@shop.test", "wrong password!") == 401
    assert await stranger.login("nobody@shop.test") == 401


async def test_a_trainer_may_not_work_tickets(people) -> None:
    tia = people["tia"]
    assert await tia.login("tia@shop.test") == 200
    assert (await tia.call("GET", "/api/v1/auth/me"))[1]["role"] == "trainer"
    assert (await tia.call("GET", "/api/v1/tickets"))[0] == 403
    assert (await tia.call("POST", "/api/v1/tickets/1/claim"))[0] == 403
    assert (await tia.call("GET", "/agent"))[0] == 403


async def test_requests_from_other_sites_are_refused(people, gateway) -> None:
    ticket = await escalate(people)
    alex = people["alex"]
    # A page on another site making the agent's browser post (the cookie would go along).
    status, body = await alex.call("POST", f"/api/v1/tickets/{ticket}/claim", origin="https://evil.example")
    assert status == 403 and "Origin" in body["error"]["message"]
    assert (await alex.call("POST", f"/api/v1/tickets/{ticket}/claim", origin=None))[0] == 403
    stranger = people["stranger"]
    status, _ = await stranger.call(
        "POST",
        "/api/v1/auth/login",
        {"email": "alex@shop.test", "password": PASSWORD},
        origin="https://evil.example",
    )
    assert status == 403
    [queued] = [t for t in (await alex.call("GET", "/api/v1/tickets"))[1] if t["id"] == ticket]
    assert queued["status"] == "queued"  # nothing changed


async def test_one_claim_wins_and_the_other_agent_gets_409(people) -> None:
    ticket = await escalate(people)
    sam = people["sam"]
    await sam.login("sam@shop.test")
    status, claimed = await people["alex"].call("POST", f"/api/v1/tickets/{ticket}/claim")
    assert status == 200 and claimed["status"] == "assigned" and claimed["assigned_agent"]["name"] == "Alex"
    status, body = await sam.call("POST", f"/api/v1/tickets/{ticket}/claim")
    assert status == 409 and "Alex" in body["error"]["message"]
    assert (await people["alex"].call("POST", f"/api/v1/tickets/{ticket}/claim"))[0] == 200  # already hers
    status, _ = await sam.call("POST", f"/api/v1/tickets/{ticket}/messages", {"text": "Hi, Sam here"})
    assert status == 409  # only the holder answers


async def test_agent_replies_reach_the_customer_and_the_bot_stays_silent(people, gateway) -> None:
    _, rasa, _ = gateway
    customer, alex = people["customer"], people["alex"]
    replies = await say(customer, "I want a human NOW")
    assert replies[0]["text"] == "A person will take over."
    assert "queue" in replies[1]["text"]  # the place in the queue (or when agents are back)
    # Asking again while waiting: no second ticket, no bot.
    replies = await say(customer, "a HUMAN please")
    assert "number 1 in the queue" in replies[0]["text"]
    assert rasa.webhook_calls == ["I want a human NOW"]
    await alex.login("alex@shop.test")
    [ticket] = (await alex.call("GET", "/api/v1/tickets"))[1]
    await alex.call("POST", f"/api/v1/tickets/{ticket['id']}/claim")
    status, message = await alex.call(
        "POST", f"/api/v1/tickets/{ticket['id']}/messages", {"text": "Hi, I'm Alex."}
    )
    assert status == 201 and message["author"] == "agent"
    lines = await collect(customer)
    assert [line["text"] for line in lines] == [
        "Alex from our support team has joined the conversation.",
        "Hi, I'm Alex.",
    ]
    assert await collect(customer) == []  # each line once
    assert await say(customer, "thanks, my order is 100235") == []  # the agent answers, not the bot
    assert rasa.webhook_calls == ["I want a human NOW"]
    # In Rasa's memory too, written in the background in the order they happened.
    await eventually(lambda: len(rasa.logged) == 2)
    assert rasa.logged == ["a HUMAN please", "thanks, my order is 100235"]
    said = [event["text"] for event in rasa.events if event["event"] == "bot"]
    assert said == ["Alex from our support team has joined the conversation.", "Hi, I'm Alex."]
    status, detail = await alex.call("GET", f"/api/v1/tickets/{ticket['id']}")
    texts = [(m["author"], m["text"]) for m in detail["transcript"]]
    assert ("customer", "thanks, my order is 100235") in texts and ("agent", "Hi, I'm Alex.") in texts
    assert detail["transcript"][0]["nlu"]["intent"] == "request_human"
    assert detail["context"]["cues"] == ["caps"]
    assert [e["action"] for e in detail["events"]] == ["opened", "claimed"]
    assert detail["events"][1]["actor"] == "alex@shop.test"
    assert detail["sla"]["responded_at"] is not None


async def test_hand_back_resumes_the_bot_and_close_asks_for_csat(people, gateway) -> None:
    _, rasa, database_url = gateway
    customer, alex = people["customer"], people["alex"]
    ticket = await escalate(people)
    await alex.call("POST", f"/api/v1/tickets/{ticket}/claim")
    status, handed = await alex.call("POST", f"/api/v1/tickets/{ticket}/handback")
    assert status == 200 and handed["status"] == "resolved" and handed["outcome"] == "handed_back"
    assert {"event": "slot", "name": "handed_over", "value": False} in rasa.events
    # This stand-in's tracker has lost its slots (as after a session expired): the ticket's
    # memory of the proven order goes back in.
    assert {"event": "slot", "name": "order_id", "value": "100235"} in rasa.events
    assert {"event": "slot", "name": "verified_email", "value": "jane.doe@example.com"} in rasa.events
    status, body = await alex.call("POST", f"/api/v1/tickets/{ticket}/messages", {"text": "one more thing"})
    assert status == 409 and "resolved" in body["error"]["message"]  # too late: the bot has it
    assert "handed you back" in (await collect(customer))[-1]["text"]
    await say(customer, "where is my order?")
    assert rasa.webhook_calls[-1] == "where is my order?"  # the bot answers again
    # That message asked for a person again: a new ticket, closed this time.
    [again] = [t for t in (await alex.call("GET", "/api/v1/tickets"))[1] if t["status"] == "queued"]
    await alex.call("POST", f"/api/v1/tickets/{again['id']}/claim")
    assert (await alex.call("POST", f"/api/v1/tickets/{again['id']}/close"))[0] == 200
    question = (await collect(customer))[-1]
    assert "1 (poor) to 5 (excellent)" in question["text"]
    assert [b["title"] for b in question["buttons"]] == ["1", "2", "3", "4", "5"]
    replies = await say(customer, question["buttons"][3]["payload"])
    assert replies[0]["text"] == "Thank you for your rating!"
    status, detail = await alex.call("GET", f"/api/v1/tickets/{again['id']}")
    assert detail["csat"] == 4 and detail["events"][-1]["action"] == "csat"
    assert (await alex.call("POST", f"/api/v1/tickets/{again['id']}/close"))[0] == 409  # already resolved
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM tickets")).scalar() == 2
    engine.dispose()


async def test_the_queue_serves_priority_then_vip_then_waiting_time(people, gateway) -> None:
    _, rasa, _ = gateway
    for sender, priority, vip in (("p3", "P3", False), ("p1", "P1", False), ("p3vip", "P3", True)):
        rasa.priority, rasa.vip = priority, vip
        await say(people["customer"], "a person please", sender)
    await people["alex"].login("alex@shop.test")
    queue = (await people["alex"].call("GET", "/api/v1/tickets"))[1]
    assert [(t["priority"], t["vip"], t["position"]) for t in queue] == [
        ("P1", False, 1),
        ("P3", True, 2),
        ("P3", False, 3),
    ]
    assert queue[0]["sla"]["target_seconds"] == 120  # handoff/handoff.yml: P1 within 2 minutes


async def test_the_websocket_shows_a_new_ticket_live(people, gateway) -> None:
    base = gateway[0]
    alex = people["alex"]
    await alex.login("alex@shop.test")
    async with alex.http.ws_connect(base + "/api/v1/ws", headers={"Origin": base}) as socket:
        await say(people["customer"], "HUMAN. NOW.")
        event = json.loads((await asyncio.wait_for(socket.receive(), 5)).data)
        assert event["type"] == "ticket" and event["ticket"]["status"] == "queued"
        assert event["ticket"]["last_customer_message"] == "HUMAN. NOW."
        await say(people["customer"], "<img src=x onerror=alert(1)>")
        event = json.loads((await asyncio.wait_for(socket.receive(), 5)).data)
        assert event["type"] == "message" and event["message"]["text"] == "<img src=x onerror=alert(1)>"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await people["stranger"].http.ws_connect(base + "/api/v1/ws", headers={"Origin": base})
    assert refused.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
        await alex.http.ws_connect(base + "/api/v1/ws", headers={"Origin": "https://evil.example"})
    assert foreign.value.status == 403


async def test_logout_ends_the_session_on_the_server(people) -> None:
    alex = people["alex"]
    await alex.login("alex@shop.test")
    cookie = alex.http.cookie_jar.filter_cookies(alex.base)["helpdesk_session"].value
    assert (await alex.call("POST", "/api/v1/auth/logout"))[0] == 204
    replay = aiohttp.ClientSession(cookies={"helpdesk_session": cookie})
    async with replay.get(alex.base + "/api/v1/tickets") as response:
        assert response.status == 401  # the old cookie is dead, not just forgotten by the browser
    await replay.close()


async def _login_cookie(browser: Browser, headers: dict[str, str]) -> str:
    """The Set-Cookie header of a login sent with these headers (Host, X-Forwarded-*)."""
    async with browser.http.post(
        browser.base + "/api/v1/auth/login",
        json={"email": "alex@shop.test", "password": PASSWORD},
        headers={"Origin": browser.base, **headers},
    ) as response:
        assert response.status == 200, await response.text()
        return response.headers["Set-Cookie"].lower()


async def test_the_session_cookie_is_secure_unless_served_over_http_on_localhost(people) -> None:
    alex = people["alex"]
    # make run and the browser tests: http://127.0.0.1, no TLS to insist on; the cookie works.
    local = await _login_cookie(alex, {})
    assert "secure" not in local and "httponly" in local and "samesite=strict" in local
    assert (await alex.call("GET", "/api/v1/auth/me"))[0] == 200
    # Served under a public name over plain http: Secure all the same. A deployment without
    # TLS says so (HELPDESK_SECURE_COOKIES=never) rather than sending sessions in the clear.
    public = await _login_cookie(
        alex, {"Host": "support.example.com", "Origin": "http://support.example.com"}
    )
    assert "; secure" in public and "httponly" in public and "samesite=strict" in public
    # The proxy on this machine (a trusted one) took it over https, or from another machine.
    assert "; secure" in await _login_cookie(alex, {"X-Forwarded-Proto": "https"})
    assert "; secure" in await _login_cookie(alex, {"X-Forwarded-For": "203.0.113.5"})
    assert "; secure" not in await _login_cookie(alex, {"X-Forwarded-Proto": "http"})


@pytest.mark.parametrize(
    ("setting", "mode", "public_host", "localhost"),
    [
        ("", "auto", True, False),
        ("always", "always", True, True),
        ("1", "always", True, True),  # the setting's old value
        ("never", "never", False, False),
    ],
)
def test_helpdesk_secure_cookies_decides_alone_unless_auto(
    setting: str, mode: str, public_host: bool, localhost: bool
) -> None:
    settings = Settings.from_env({"HELPDESK_SECURE_COOKIES": setting})
    assert settings.secure_cookies == mode
    app = web.Application()
    app[api.CONSOLE] = api.ConsoleSettings(secure_cookies=mode, trusted_proxies=settings.trusted_proxies)
    for host, secure in (("support.example.com", public_host), ("localhost:8080", localhost)):
        request = make_mocked_request("POST", "/api/v1/auth/login", headers={"Host": host}, app=app)
        assert api.secure_cookie(request) is secure, host


def test_a_misspelt_helpdesk_secure_cookies_is_refused() -> None:
    with pytest.raises(ValueError, match="HELPDESK_SECURE_COOKIES"):
        Settings.from_env({"HELPDESK_SECURE_COOKIES": "alwyas"}).check()


async def test_bad_input_gets_clear_errors(people) -> None:
    ticket = await escalate(people)
    alex = people["alex"]
    await alex.call("POST", f"/api/v1/tickets/{ticket}/claim")
    assert (await alex.call("POST", f"/api/v1/tickets/{ticket}/messages", {"text": "  "}))[0] == 400
    assert (await alex.call("POST", f"/api/v1/tickets/{ticket}/messages", {"text": "x" * 2001}))[0] == 413
    assert (await alex.call("POST", f"/api/v1/tickets/{ticket}/messages", ["not", "an object"]))[0] == 400
    assert (await alex.call("GET", "/api/v1/tickets/999"))[0] == 404
    assert (await alex.call("GET", "/api/v1/tickets/abc"))[0] == 404
    assert (await people["customer"].call("GET", "/webhooks/rest/messages", origin=None))[0] == 400


async def test_the_openapi_document_describes_every_api_route(people, gateway) -> None:
    status, document = await people["stranger"].call("GET", "/api/v1/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    app = create_app(Settings(database_url=gateway[2], secret_key="k"))
    routes = {
        route.resource.canonical.removeprefix("/api/v1")
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/v1")
    }
    assert routes == set(document["paths"])


async def test_password_guessing_is_slowed_down_and_the_right_password_still_works(people) -> None:
    stranger = people["stranger"]
    for _ in range(5):
        assert await stranger.login("sam@shop.test", "guess guess guess") == 401
    # The sixth try waits a second, the seventh two: guessing slows down, doubling each time.
    status, body = await stranger.call(
        "POST", "/api/v1/auth/login", {"email": "sam@shop.test", "password": "guess again"}
    )
    assert status == 429 and "try again in 1 second" in body["error"]["message"]
    await asyncio.sleep(1.1)
    assert await stranger.login("sam@shop.test", "guess guess guess") == 401
    status, body = await stranger.call(
        "POST", "/api/v1/auth/login", {"email": "sam@shop.test", "password": PASSWORD}
    )
    assert status == 429 and "try again in 2 seconds" in body["error"]["message"]
    await asyncio.sleep(2.1)
    # A backoff, not a lockout: after the wait the right password gets in.
    assert await stranger.login("sam@shop.test") == 200
    assert await people["alex"].login("alex@shop.test") == 200  # another agent never waited


async def test_guesses_from_behind_the_proxy_count_per_client(people) -> None:
    """Behind the proxy on this machine, X-Forwarded-For names the client: one guesser does
    not slow down the agent at another address."""
    guesser, agent = people["stranger"], people["sam"]
    for _ in range(6):
        await guesser.call(
            "POST",
            "/api/v1/auth/login",
            {"email": "sam@shop.test", "password": "guess guess guess"},
            headers={"X-Forwarded-For": "203.0.113.50"},
        )
    status, _ = await agent.call(
        "POST",
        "/api/v1/auth/login",
        {"email": "sam@shop.test", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    assert status == 200


async def test_parallel_guesses_count_in_full(people) -> None:
    stranger = people["stranger"]
    attempts = [stranger.login("sam@shop.test", f"guess number {n}") for n in range(30)]
    statuses = await asyncio.gather(*attempts)
    assert statuses.count(401) <= 5 and statuses.count(429) >= 25


async def test_logging_out_closes_the_live_socket(people, gateway) -> None:
    base = gateway[0]
    alex = people["alex"]
    await alex.login("alex@shop.test")
    async with alex.http.ws_connect(base + "/api/v1/ws", headers={"Origin": base}) as socket:
        assert (await alex.call("POST", "/api/v1/auth/logout"))[0] == 204
        closing = await asyncio.wait_for(socket.receive(), 5)
        assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4401


async def test_text_that_is_not_text_gets_400_not_500(people) -> None:
    ticket = await escalate(people)
    alex = people["alex"]
    await alex.call("POST", f"/api/v1/tickets/{ticket}/claim")
    for path in (f"/api/v1/tickets/{ticket}/notes", f"/api/v1/tickets/{ticket}/messages"):
        status, _ = await alex.call("POST", path, {"text": "half a pair \ud800"})
        assert status == 400
    status, _ = await people["stranger"].call(
        "POST", "/api/v1/auth/login", {"email": "alex@shop.test\u0000", "password": PASSWORD}
    )
    assert status == 400
    assert (await alex.call("GET", "/api/v1/tickets/99999999999999999999999"))[0] == 404
    assert (await people["customer"].call("GET", "/webhooks/rest/messages?sender=a%00b", origin=None))[
        0
    ] == 400


async def test_a_client_that_lost_a_response_gets_the_lines_again(people) -> None:
    ticket = await escalate(people)
    alex, customer = people["alex"], people["customer"]
    await alex.call("POST", f"/api/v1/tickets/{ticket}/claim")
    await alex.call("POST", f"/api/v1/tickets/{ticket}/messages", {"text": "Are you there?"})
    path = "/webhooks/rest/messages?sender=cora&after=0"
    first = (await customer.call("GET", path, origin=None))[1]
    assert [line["text"] for line in first][-1] == "Are you there?"
    again = (await customer.call("GET", path, origin=None))[1]  # the response was lost: ask again
    assert again == first
    last = first[-1]["id"]
    assert (await customer.call("GET", f"/webhooks/rest/messages?sender=cora&after={last}", origin=None))[
        1
    ] == []


async def test_trainers_see_the_unresolved_log_and_agents_do_not(people, gateway) -> None:
    _, _, database_url = gateway
    customer, alex, tia = people["customer"], people["alex"], people["tia"]
    ticket = await escalate(people)
    await alex.call("POST", f"/api/v1/tickets/{ticket}/claim")
    await alex.call("POST", f"/api/v1/tickets/{ticket}/close")
    await say(customer, "1")  # a poor rating: the conversation becomes a lesson
    assert (await alex.call("GET", "/api/v1/unresolved"))[0] == 403
    await tia.login("tia@shop.test")
    status, log = await tia.call("GET", "/api/v1/unresolved")
    assert status == 200 and log["open"] == 1
    [message] = log["groups"][0]["messages"]
    assert message["reason"] == "low_csat" and message["text"] == "I want a human NOW"
    status, body = await tia.call(
        "POST",
        "/api/v1/unresolved/decisions",
        {"ids": [message["id"]], "decision": "label", "intent": "Bad!"},
    )
    assert status == 400 and "intent name" in body["error"]["message"]
    status, body = await tia.call(
        "POST", "/api/v1/unresolved/decisions", {"ids": [message["id"]], "decision": "dismissed"}
    )
    assert status == 200 and body == {"decided": 1}
    assert (await tia.call("GET", "/api/v1/unresolved"))[1]["open"] == 0
    assert (await tia.call("POST", "/api/v1/unresolved/decisions", {"ids": [message["id"]]}, origin=None))[
        0
    ] == 403


async def test_a_body_nested_thousands_deep_gets_400_not_500(gateway) -> None:
    base = gateway[0]
    async with aiohttp.ClientSession() as http:
        for body in (b"[" * 20000 + b"]" * 20000, b'{"email": ' + b"[" * 50 + b"]" * 50 + b"}"):
            async with http.post(
                f"{base}/api/v1/auth/login",
                data=body,
                headers={"Origin": base, "Content-Type": "application/json"},
            ) as response:
                assert response.status == 400
                assert "nested too deeply" in (await response.json())["error"]["message"]
