"""GET /health: the gateway, Rasa, the action server and the database, each up or down.

GET /health/live: this gateway process alone, up and answering; for a load balancer's or
Kubernetes' probes, which should not take every gateway out of service because one Rasa
server is restarting (the gateway answers its customers with an apology meanwhile)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from bot.appkeys import DATABASE, HTTP, SETTINGS


async def _get_json(
    session: aiohttp.ClientSession, url: str, timeout: float, params: dict[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The component's state, and its JSON body when it answered 200."""
    try:
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status != 200:
                return {"status": "down", "error": f"HTTP {response.status}"}, None
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            return {"status": "up"}, body if isinstance(body, dict) else {}
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        return {"status": "down", "error": str(error) or type(error).__name__}, None


async def _check_one_rasa(app: web.Application, base_url: str) -> dict[str, Any]:
    settings = app[SETTINGS]
    # /status is one of Rasa's API routes: it needs the token when Rasa runs with one.
    token = {"token": settings.rasa_token} if settings.rasa_token else None
    result, status = await _get_json(app[HTTP], f"{base_url}/status", settings.health_timeout_seconds, token)
    if status is not None:
        # /status answers before a model is loaded: check that one is.
        if not status.get("model_file"):
            return {"status": "down", "error": "no model loaded"}
        result["model"] = status["model_file"]
    return result


async def _check_rasa(app: web.Application) -> dict[str, Any]:
    """Up when every Rasa server is up with a model; with several, each one's state too."""
    urls = app[SETTINGS].rasa_urls
    results = await asyncio.gather(*(_check_one_rasa(app, url) for url in urls))
    if len(results) == 1:
        return results[0]
    servers = dict(zip(urls, results, strict=True))
    down = [f"{url}: {result['error']}" for url, result in servers.items() if result["status"] != "up"]
    combined: dict[str, Any] = {"status": "down" if down else "up", "servers": servers}
    if down:
        combined["error"] = "; ".join(down)
    else:
        combined["model"] = results[0]["model"]
    return combined


async def _check_action_server(app: web.Application) -> dict[str, Any]:
    settings = app[SETTINGS]
    result, _ = await _get_json(
        app[HTTP], f"{settings.action_server_url}/health", settings.health_timeout_seconds
    )
    return result


async def _check_database(app: web.Application) -> dict[str, Any]:
    try:
        await asyncio.wait_for(app[DATABASE].ping(), app[SETTINGS].health_timeout_seconds)
        return {"status": "up"}
    except Exception as error:  # any driver error means the database is not usable
        return {"status": "down", "error": str(error) or type(error).__name__}


async def health(request: web.Request) -> web.Response:
    app = request.app
    rasa, actions, database = await asyncio.gather(
        _check_rasa(app),
        _check_action_server(app),
        _check_database(app),
    )
    components = {"gateway": {"status": "up"}, "rasa": rasa, "action_server": actions, "database": database}
    healthy = all(c["status"] == "up" for c in components.values())
    return web.json_response(
        {"status": "ok" if healthy else "degraded", "components": components},
        status=200 if healthy else 503,
    )


async def live(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/health/live", live)
