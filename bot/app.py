"""The gateway's application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from bot import health
from bot.appkeys import DATABASE, HTTP, ROUTER, SETTINGS
from bot.channels import rest
from bot.errors import error_middleware
from bot.rasa_client import RasaClient
from bot.router import Router
from bot.settings import Settings
from handoff import db

# Room for the JSON around a 2,000-character message; anything bigger is refused early.
MAX_BODY_BYTES = 64 * 1024


def load_texts(path: Path) -> dict[str, str]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_http_and_router)
    rest.add_routes(app)
    health.add_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    url = app[SETTINGS].database_url
    await asyncio.get_running_loop().run_in_executor(None, db.migrate, url)
    database = db.Database(url)
    app[DATABASE] = database
    yield
    database.close()


async def _http_and_router(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with aiohttp.ClientSession() as session:
        app[HTTP] = session
        rasa = RasaClient(session, settings.rasa_url, settings.rasa_timeout_seconds)
        app[ROUTER] = Router(app[DATABASE], rasa, load_texts(settings.texts_file))
        yield
