"""The gateway in this process, beside stand-ins: `FakeRasa` answers every message with a
handoff and records what the helpdesk writes into its trackers; `Browser` is one person's
cookies, sending the Origin a browser would; `webhook_gateway` adds Telegram in webhook mode
against the Bot API stand-in. tests/e2e runs the same paths against the real model."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.app import create_app
from bot.settings import Settings
from tests.support.stack import free_port
from tests.support.telegram_api import DEFAULT_TOKEN, FakeBotApi

PASSWORD = "correct horse battery"


@dataclass
class FakeRasa:
    """Answers each message with a handoff at `priority`; records tracker writes."""

    priority: str = "P2"
    vip: bool = False
    webhook_calls: list[str] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", self.webhook)
        app.router.add_post("/conversations/{id}/messages", self.log_message)
        app.router.add_post("/conversations/{id}/tracker/events", self.append)
        app.router.add_get("/conversations/{id}/tracker", self.tracker)
        return app

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.webhook_calls.append(body["message"])
        handoff = {
            "reason": "customer_request",
            "priority": self.priority,
            "vip": self.vip,
            "cues": ["caps"],
            "order_id": "100235",
            "customer_email": "jane.doe@example.com",
        }
        return web.json_response(
            [{"text": "A person will take over."}, {"custom": {"helpdesk": {"handoff": handoff}}}]
        )

    async def log_message(self, request: web.Request) -> web.Response:
        self.logged.append((await request.json())["text"])
        return web.json_response({})

    async def append(self, request: web.Request) -> web.Response:
        self.events.extend(await request.json())
        return web.json_response({})

    async def tracker(self, request: web.Request) -> web.Response:
        parse = {"intent": {"name": "request_human", "confidence": 0.93}, "entities": []}
        user = [{"event": "user", "text": text, "parse_data": parse} for text in self.webhook_calls]
        return web.json_response({"events": user})


class Browser:
    """One person's cookies against the gateway, sending the Origin a browser would."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        origin: str | None = "self",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        origins = {"Origin": self.base} if origin == "self" else ({"Origin": origin} if origin else {})
        headers = {**origins, **(headers or {})}
        async with self.http.request(
            method, self.base + path, json=body, headers=headers, allow_redirects=False
        ) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text and r.content_type == "application/json" else text)

    async def login(self, email: str, password: str = PASSWORD) -> int:
        status, _ = await self.call("POST", "/api/v1/auth/login", {"email": email, "password": password})
        return status

    async def close(self) -> None:
        await self.http.close()


async def eventually(condition: Any, seconds: float = 5.0) -> None:
    """Waits for what the helpdesk does in the background (writes into Rasa's tracker)."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not come true in time")


async def say(customer: Browser, text: str, sender: str = "cora") -> list[dict[str, Any]]:
    status, replies = await customer.call(
        "POST", "/webhooks/rest/webhook", {"sender": sender, "message": text}
    )
    assert status == 200, replies
    return replies


async def collect(customer: Browser, sender: str = "cora") -> list[dict[str, Any]]:
    status, lines = await customer.call("GET", f"/webhooks/rest/messages?sender={sender}", origin=None)
    assert status == 200
    return lines


async def escalate(people: dict[str, Browser], sender: str = "cora") -> int:
    await say(people["customer"], "I want a human NOW", sender)
    await people["alex"].login("alex@shop.test")
    status, queue = await people["alex"].call("GET", "/api/v1/tickets")
    assert status == 200
    return next(ticket["id"] for ticket in queue if ticket["status"] == "queued")


async def webhook_gateway(aiohttp_server: Any, database_url: str, rasa_app: web.Application) -> FakeBotApi:
    """A gateway with Telegram in webhook mode against the Bot API stand-in (returned), and
    `rasa_app` standing in for Rasa."""
    bot_api = FakeBotApi(DEFAULT_TOKEN)
    bot_api.attach(await aiohttp_server(bot_api.app()))
    rasa = await aiohttp_server(rasa_app)
    port = free_port()
    settings = Settings(
        database_url=database_url,
        rasa_url=str(rasa.make_url("")).rstrip("/"),
        secret_key="k",
        telegram_token=DEFAULT_TOKEN,
        telegram_mode="webhook",
        telegram_webhook_url=f"http://127.0.0.1:{port}/webhooks/telegram",
        telegram_secret_token="s3cret-token",
        telegram_base_url=bot_api.base_url,
        telegram_base_file_url=bot_api.base_file_url,
    )
    await aiohttp_server(create_app(settings), port=port)
    return bot_api
