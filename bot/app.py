"""The gateway's application factory."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from bot import delivery, health, web_pages
from bot.appkeys import (
    CONFIG,
    DATABASE,
    HTTP,
    HUB,
    LINK_THROTTLE,
    ROUTER,
    SETTINGS,
    SOCKETIO,
    TELEGRAM,
    TEXTS,
)
from bot.channels import rest
from bot.channels.socketio import SocketIOChannel
from bot.channels.telegram import TelegramChannel
from bot.errors import error_middleware
from bot.limits import create_limits
from bot.rasa_client import RasaClient
from bot.router import Router
from bot.settings import Settings
from handoff import api, db
from handoff.auth import Backoff, BackoffRule, Sessions
from handoff.hub import create_hub
from handoff.service import Helpdesk, HelpdeskConfig
from serving import freeze_heap
from training import retraining
from training import routes as training_routes

logger = logging.getLogger(__name__)

# Room for the JSON around a 2,000-character message; anything bigger is refused early.
MAX_BODY_BYTES = 64 * 1024


def load_texts(path: Path) -> dict[str, str]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def create_app(settings: Settings) -> web.Application:
    settings.check()
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_http_and_router)
    rest.add_routes(app)
    health.add_routes(app)
    config = HelpdeskConfig.load()
    api.add_routes(
        app,
        Sessions(settings.session_secret(), dt.timedelta(hours=config.session_hours)),
        api.ConsoleSettings(
            allowed_origins=settings.allowed_origins,
            secure_cookies=settings.secure_cookies,
            max_text_chars=settings.max_message_chars,
            trusted_proxies=settings.trusted_proxies,
        ),
    )
    app[CONFIG] = config
    # Codes: three wrong ones of a web session or chat, ten of an address, before waits.
    app[LINK_THROTTLE] = Backoff(
        pair=BackoffRule(3, 600), address=BackoffRule(10, 900), subject=BackoffRule(3, 600)
    )
    app[SOCKETIO] = SocketIOChannel(app)
    if settings.telegram_token and settings.telegram_mode == "webhook":
        app.router.add_post("/webhooks/telegram", _telegram_webhook)
    app.cleanup_ctx.append(_telegram)
    app.cleanup_ctx.append(_delivery)
    web_pages.add_routes(app)
    training_routes.add_routes(app, settings.project_dir)
    app.on_startup.append(_freeze_heap)  # after the cleanup contexts above have started
    return app


async def _freeze_heap(_app: web.Application) -> None:
    freeze_heap("the gateway's start-up")


async def _database(app: web.Application) -> AsyncIterator[None]:
    url = app[SETTINGS].database_url
    await asyncio.get_running_loop().run_in_executor(None, db.migrate, url)
    database = db.Database(url)
    app[DATABASE] = database
    yield
    database.close()


async def _http_and_router(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    hub = create_hub(settings.redis_url)
    app[HUB] = hub
    async with aiohttp.ClientSession() as session:
        app[HTTP] = session
        rasa = RasaClient(session, settings.rasa_urls, settings.rasa_timeout_seconds, settings.rasa_token)
        texts = load_texts(settings.texts_file)
        helpdesk = Helpdesk(app[DATABASE], hub, rasa, texts, app[CONFIG])
        limits = create_limits(settings.limits, settings.redis_url)
        app[api.HELPDESK] = helpdesk
        app[TEXTS] = texts
        app[ROUTER] = Router(
            rasa, texts, helpdesk, limits, settings.rasa_text_chars, settings.shop_identity_secret
        )
        app[retraining.RETRAINING] = retraining.Retraining(settings.project_dir, rasa)
        yield
    await limits.close()
    await hub.close()


async def _telegram(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.telegram_token:
        logger.info("Telegram is off: set TELEGRAM_TOKEN to turn it on (see docs/channels.md)")
        yield
        return
    channel = TelegramChannel(app, settings)
    await channel.start()
    app[TELEGRAM] = channel
    yield
    await channel.stop()


async def _telegram_webhook(request: web.Request) -> web.StreamResponse:
    channel = request.app.get(TELEGRAM)
    if not isinstance(channel, TelegramChannel):  # not yet set
        return web.json_response({"error": {"status": 503, "message": "Telegram is starting"}}, status=503)
    return await channel.webhook(request)


async def _delivery(app: web.Application) -> AsyncIterator[None]:
    tasks = [
        asyncio.create_task(delivery.deliver_forever(app)),
        asyncio.create_task(delivery.answer_unanswered_forever(app)),
    ]
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
