"""Several Rasa servers behind one gateway (RASA_URL lists them, as make run does): every
message and tracker change of a conversation reaches the same server, the conversations
spread over all of them, a server that refuses connections passes its conversations to the
next, health names a server that is down, a new model is loaded into
each one, and every call to Rasa's HTTP API carries its token."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.app import create_app
from bot.rasa_client import RasaClient
from bot.settings import Settings
from tests.support.gateway import eventually
from tests.support.stack import free_port


@dataclass
class RecordingRasa:
    """A Rasa stand-in that hands every conversation over on its second message, and records
    which conversations it saw on which route."""

    name: str
    seen: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    models: list[str] = field(default_factory=list)
    token: str | None = None  # as `rasa run --auth-token`: the API routes need ?token=
    refused: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.auth])
        app.router.add_post("/webhooks/rest/webhook", self.webhook)
        app.router.add_post("/conversations/{id}/messages", self.record)
        app.router.add_post("/conversations/{id}/tracker/events", self.record)
        app.router.add_get("/conversations/{id}/tracker", self.tracker)
        app.router.add_get("/status", self.status)
        app.router.add_put("/model", self.model)
        return app

    @web.middleware
    async def auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # Rasa checks the token on its API routes, not on the channels' webhooks.
        api = not request.path.startswith("/webhooks/")
        if api and self.token is not None and request.query.get("token") != self.token:
            self.refused.append(f"{request.method} {request.path}")
            return web.json_response({"reason": "NotAuthenticated"}, status=401)
        return await handler(request)

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.seen[body["sender"]].append("webhook")
        if len(self.seen[body["sender"]]) < 2:
            return web.json_response([{"recipient_id": body["sender"], "text": f"{self.name} here"}])
        handoff = {"reason": "customer_request", "priority": "P2", "vip": False, "cues": []}
        return web.json_response(
            [{"text": "A person will take over."}, {"custom": {"helpdesk": {"handoff": handoff}}}]
        )

    async def record(self, request: web.Request) -> web.Response:
        self.seen[request.match_info["id"]].append(request.path.rsplit("/", 1)[1])
        return web.json_response({})

    async def tracker(self, request: web.Request) -> web.Response:
        self.seen[request.match_info["id"]].append("tracker")
        return web.json_response({"events": [], "slots": {}})

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response({"model_file": f"{self.name}.tar.gz"})

    async def model(self, request: web.Request) -> web.Response:
        self.models.append((await request.json())["model_file"])
        return web.Response(status=204)


async def _servers(aiohttp_server: Any, count: int) -> tuple[list[RecordingRasa], list[str]]:
    fakes = [RecordingRasa(f"rasa{n}") for n in range(count)]
    urls = [str((await aiohttp_server(fake.app())).make_url("")).rstrip("/") for fake in fakes]
    return fakes, urls


async def test_each_conversation_stays_on_one_server_and_all_servers_get_some(
    aiohttp_client, aiohttp_server, database_url
) -> None:
    fakes, urls = await _servers(aiohttp_server, 2)
    settings = Settings(database_url=database_url, rasa_url=",".join(urls))
    client = await aiohttp_client(create_app(settings))
    senders = [f"customer-{n}" for n in range(20)]  # all on one server: p = 2 ** -19
    for sender in senders:
        # the second message hands over, the third is logged into the tracker for the agent
        for text in ("hello", "I want a person", "are you there?"):
            response = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
            assert response.status == 200, await response.text()
    # The gateway names conversations for Rasa itself: one id per customer here.
    conversations = [conversation for fake in fakes for conversation in fake.seen]
    assert len(conversations) == len(set(conversations)) == len(senders), "a conversation reached two servers"
    every = [routes for fake in fakes for routes in fake.seen.values()]
    assert all(routes[:2] == ["webhook", "webhook"] for routes in every), every
    # the message sent while a person holds the conversation is logged in the background
    await eventually(lambda: all("messages" in routes for routes in every))
    assert all(fake.seen for fake in fakes), "a server got no conversation"


async def test_a_server_that_refuses_connections_passes_its_conversations_to_the_next(
    aiohttp_client, aiohttp_server, database_url
) -> None:
    fakes, urls = await _servers(aiohttp_server, 1)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there: a Rasa that died
    settings = Settings(database_url=database_url, rasa_url=",".join([down, urls[0]]))
    client = await aiohttp_client(create_app(settings))
    senders = [f"customer-{n}" for n in range(12)]  # none pinned to the dead one: p = 2 ** -12
    for sender in senders:
        response = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "hello"})
        assert response.status == 200, await response.text()
        assert [reply["text"] for reply in await response.json()] == ["rasa0 here"], sender
    assert len(fakes[0].seen) == len(senders)


async def test_health_names_the_rasa_server_that_is_down(
    aiohttp_client, aiohttp_server, database_url
) -> None:
    _, urls = await _servers(aiohttp_server, 1)
    down = f"http://127.0.0.1:{free_port()}"
    settings = Settings(database_url=database_url, rasa_url=f"{urls[0]},{down}")
    client = await aiohttp_client(create_app(settings))
    response = await client.get("/health")
    assert response.status == 503
    rasa = (await response.json())["components"]["rasa"]
    assert rasa["status"] == "down"
    assert rasa["servers"][urls[0]]["status"] == "up"
    assert rasa["servers"][down]["status"] == "down"
    assert down in rasa["error"] and urls[0] not in rasa["error"]


async def test_the_liveness_route_answers_while_rasa_is_down(aiohttp_client, database_url) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    client = await aiohttp_client(create_app(Settings(database_url=database_url, rasa_url=down)))
    assert (await client.get("/health")).status == 503
    live = await client.get("/health/live")
    assert live.status == 200 and await live.json() == {"status": "ok"}


async def test_a_new_model_is_loaded_into_every_server(aiohttp_server) -> None:
    fakes, urls = await _servers(aiohttp_server, 3)
    async with aiohttp.ClientSession() as session:
        client = RasaClient(session, urls, timeout_seconds=5)
        await client.load_model("models/20261202-new.tar.gz")
        assert await client.model_file() == "rasa0.tar.gz"
    assert [fake.models for fake in fakes] == [["models/20261202-new.tar.gz"]] * 3


async def test_every_call_to_rasas_api_carries_the_token(
    aiohttp_client, aiohttp_server, database_url
) -> None:
    fakes, urls = await _servers(aiohttp_server, 2)
    for fake in fakes:
        fake.token = "rasa-secret"
    settings = Settings(database_url=database_url, rasa_url=",".join(urls), rasa_token="rasa-secret")
    client = await aiohttp_client(create_app(settings))
    health = await (await client.get("/health")).json()  # GET /status of each server
    assert health["components"]["rasa"]["status"] == "up"
    for sender in (f"customer-{n}" for n in range(6)):
        for text in ("hello", "I want a person", "are you there?"):  # tracker writes, too
            response = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
            assert response.status == 200, await response.text()
    every = [routes for fake in fakes for routes in fake.seen.values()]
    await eventually(lambda: all("messages" in routes for routes in every))
    async with aiohttp.ClientSession() as session:  # the trainer console's model loading
        rasa = RasaClient(session, urls, timeout_seconds=5, token="rasa-secret")
        await rasa.load_model("models/20261202-new.tar.gz")
        assert await rasa.model_file() == "rasa0.tar.gz"
    assert [fake.refused for fake in fakes] == [[], []]
    assert [fake.models for fake in fakes] == [["models/20261202-new.tar.gz"]] * 2
    # Without the token, health says so rather than calling Rasa up.
    tokenless = await aiohttp_client(create_app(Settings(database_url=database_url, rasa_url=urls[0])))
    health = await (await tokenless.get("/health")).json()
    assert health["components"]["rasa"] == {"status": "down", "error": "HTTP 401"}


def test_rasa_url_lists_servers_separated_by_commas() -> None:
    settings = Settings.from_env({"RASA_URL": "http://a:5005/, http://b:5006"})
    assert settings.rasa_urls == ("http://a:5005", "http://b:5006")
    assert Settings.from_env({}).rasa_urls == ("http://localhost:5005",)
