"""The ticket life cycle on both databases: atomic claims, and events across processes."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

from bot.app import create_app
from bot.settings import Settings
from handoff import conversations, db, tickets
from handoff.auth import create_agent
from handoff.hub import RedisHub
from tests.support.gateway import PASSWORD, Browser, FakeRasa, say

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_many_agents_claiming_at_once_one_wins(database: db.Database) -> None:
    agents_count = 12
    with database.sessions.begin() as session:
        conversation = conversations.resolve_conversation(session, "rest", "rush")
        ticket, _ = conversations.open_ticket(
            session, conversation.id, "customer_request", {"priority": "P1"}
        )
        agents = [
            create_agent(session, f"agent{n}@shop.test", PASSWORD, "agent") for n in range(agents_count)
        ]
    start = threading.Barrier(agents_count)

    def press_claim(agent) -> str:
        start.wait()  # every agent presses at the same moment
        try:
            with database.sessions.begin() as session:
                tickets.claim(session, ticket.id, agent)
            return agent.email
        except tickets.TicketConflict:
            return "409"

    with ThreadPoolExecutor(max_workers=agents_count) as pool:
        results = list(pool.map(press_claim, agents))
    winners = [result for result in results if result != "409"]
    assert len(winners) == 1 and results.count("409") == agents_count - 1
    with database.sessions() as session:
        claimed = session.get(tickets.Ticket, ticket.id)
        assert claimed.status == "assigned"
        assert [e["action"] for e in tickets.events(session, ticket.id)] == ["opened", "claimed"]
        assert tickets.events(session, ticket.id)[1]["actor"] == winners[0]


def test_one_open_ticket_per_conversation_whatever_the_race(database: db.Database) -> None:
    with database.sessions.begin() as session:
        conversation = conversations.resolve_conversation(session, "rest", "twice")
    start = threading.Barrier(8)

    def escalate(_: int) -> int:
        start.wait()
        with database.sessions.begin() as session:
            ticket, _created = conversations.open_ticket(
                session, conversation.id, "frustration", {"priority": "P2"}
            )
            return ticket.id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(escalate, range(8)))
    assert len(ids) == 1
    with database.sessions() as session:
        assert len(tickets.tickets(session)) == 1


async def test_an_agent_on_one_gateway_sees_a_ticket_opened_on_another(aiohttp_server, postgres_url) -> None:
    """Two gateway processes (here two apps) share PostgreSQL and Redis, as behind a load balancer."""
    rasa = await aiohttp_server(FakeRasa().app())
    settings = Settings(
        database_url=postgres_url,
        rasa_url=str(rasa.make_url("")).rstrip("/"),
        secret_key="shared-key",
        redis_url=REDIS_URL,
    )
    first, second = [await aiohttp_server(create_app(settings)) for _ in range(2)]
    engine = db.create_engine(postgres_url)
    with db.sessionmaker(engine, future=True).begin() as session:
        create_agent(session, "alex@shop.test", PASSWORD, "agent", "Alex")
    engine.dispose()
    agent_base = str(second.make_url("")).rstrip("/")
    alex, customer = Browser(agent_base), Browser(str(first.make_url("")).rstrip("/"))
    try:
        await alex.login("alex@shop.test")
        async with alex.http.ws_connect(agent_base + "/api/v1/ws", headers={"Origin": agent_base}) as socket:
            await say(customer, "a person please", sender=f"multi-{id(socket)}")
            event = json.loads((await asyncio.wait_for(socket.receive(), 5)).data)
        assert event["type"] == "ticket" and event["ticket"]["last_customer_message"] == "a person please"
    finally:
        await alex.close()
        await customer.close()


async def test_the_redis_hub_delivers_in_order() -> None:
    hub = RedisHub(REDIS_URL)
    try:
        async with hub.subscribe("helpdesk:test-order") as events:
            for n in range(5):
                await hub.publish("helpdesk:test-order", {"n": n})
            received = [(await asyncio.wait_for(events.__anext__(), 5))["n"] for _ in range(5)]
        assert received == [0, 1, 2, 3, 4]
    finally:
        await hub.close()


def test_agent_hours_say_when_agents_are_back() -> None:
    import datetime as dt

    from handoff.service import AgentHours

    hours = AgentHours.load()
    utc = dt.timezone.utc
    assert hours.on_duty(dt.datetime(2026, 11, 24, 12, 0, tzinfo=utc))
    night = dt.datetime(2026, 11, 24, 23, 30, tzinfo=utc)
    assert not hours.on_duty(night)
    assert hours.back_at(night) == dt.datetime(2026, 11, 25, 8, 0, tzinfo=utc)
    early = dt.datetime(2026, 11, 24, 6, 0, tzinfo=utc)
    assert hours.back_at(early) == dt.datetime(2026, 11, 24, 8, 0, tzinfo=utc)


def test_the_agent_hours_article_says_the_configured_hours() -> None:
    from pathlib import Path

    from handoff.service import AgentHours

    hours = AgentHours.load()
    article = (
        Path(__file__).resolve().parents[2] / "knowledge_base" / "articles" / "agent-hours.md"
    ).read_text()
    opening = f"{hours.open.hour}:{hours.open.minute:02d}-{hours.close.hour}:{hours.close.minute:02d}"
    assert f"{opening} {hours.timezone}" in article


def test_the_customer_hears_their_place_or_when_agents_are_back() -> None:
    import datetime as dt

    from bot.app import load_texts
    from bot.settings import Settings
    from handoff.service import Helpdesk, HelpdeskConfig

    helpdesk = Helpdesk(None, None, None, load_texts(Settings().texts_file), HelpdeskConfig.load())  # type: ignore[arg-type]
    utc = dt.timezone.utc
    noon = dt.datetime(2026, 11, 24, 12, 0, tzinfo=utc)
    assert helpdesk.wait_notice(3, dt.timedelta(minutes=4), noon) == [
        "You're number 3 in the queue. An agent usually answers within about 4 minutes."
    ]
    assert helpdesk.wait_notice(1, None, noon) == ["You're number 1 in the queue."]
    [away] = helpdesk.wait_notice(1, None, dt.datetime(2026, 11, 24, 23, 0, tzinfo=utc))
    assert "08:00-22:00 UTC" in away and "back tomorrow at 08:00 UTC (in about 9 hours)" in away
    [early] = helpdesk.wait_notice(1, None, dt.datetime(2026, 11, 24, 5, 0, tzinfo=utc))
    assert "back today at 08:00 UTC (in about 3 hours)" in early
    [last_hour] = helpdesk.wait_notice(
        1, dt.timedelta(seconds=20), dt.datetime(2026, 11, 24, 7, 10, tzinfo=utc)
    )
    assert "(in about 1 hour)," in last_hour
    assert helpdesk.wait_notice(2, dt.timedelta(seconds=20), noon)[0].endswith("within about 1 minute.")
    assert "nothing is lost" in away
