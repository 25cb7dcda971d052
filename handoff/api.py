"""The agent API under /api/v1 and the console pages at /agent (see handoff/openapi.yml;
the trainer's routes are listed in training/routes.py and use the helpers here).

Every route but login and the OpenAPI document needs a session of an agent whose role
allows it; requests that change state (and the websocket handshake) must carry an Origin
header naming this site. Bodies are JSON; errors say what is wrong.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import WSMsgType, hdrs, web

from handoff import auth, hub
from handoff.addresses import Network, client_address, local_plain_http
from handoff.auth import COOKIE, AgentRef, Backoff, Sessions, wait_words
from handoff.models import Attachment
from handoff.service import Helpdesk
from handoff.tickets import TicketError

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
OPENAPI_FILE = HERE / "openapi.yml"
PREFIX = "/api/v1"
TICKET_ROLES = ("agent", "admin")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PAGE_SECURITY = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class ConsoleSettings:
    allowed_origins: tuple[str, ...] = ()  # besides this server's own origin
    # The session cookie's Secure flag: "auto" sets it unless the browser reached the console
    # over plain http on this machine (make run, the tests); "always" or "never" decide alone.
    secure_cookies: str = "auto"
    max_text_chars: int = 2000
    trusted_proxies: tuple[Network, ...] = ()  # whose X-Forwarded-For names the client


HELPDESK = web.AppKey("helpdesk", Helpdesk)
SESSIONS = web.AppKey("sessions", Sessions)
CONSOLE = web.AppKey("console", ConsoleSettings)
THROTTLE = web.AppKey("login_throttle", Backoff)
SOCKETS = web.AppKey("agent_sockets", dict)  # session token -> that login's open websockets
SESSION_CHECK_SECONDS = 30
AGENT = "agent"  # request key of the logged-in agent


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"status": status, "message": message}}, status=status)


def plain_text(value: str) -> bool:
    """No NUL and no lone surrogate: text that every database and encoder accepts."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


MAX_JSON_DEPTH = 32


class TooDeep(ValueError):
    pass


def loads_limited(text: str) -> Any:
    """json.loads, refusing (TooDeep) a document nested deeper than MAX_JSON_DEPTH: no route
    takes more than a few levels, and Python's parser gives up at about a thousand."""
    too_deep = f"body is nested too deeply (at most {MAX_JSON_DEPTH} levels)"
    try:
        value = json.loads(text)
    except RecursionError as failure:
        raise TooDeep(too_deep) from failure
    level, depth = [value], 0  # the objects and arrays `depth` brackets deep
    while level := [item for item in level if isinstance(item, dict | list)]:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise TooDeep(too_deep)
        level = [child for item in level for child in (item.values() if isinstance(item, dict) else item)]
    return value


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def secure_cookie(request: web.Request) -> bool:
    """Whether the session cookie travels over TLS only: yes, unless the browser reached the
    console over plain http on this machine (make run's http://127.0.0.1:8080), where no TLS
    is there to insist on and the cookie never crosses the network."""
    console = request.app[CONSOLE]
    if console.secure_cookies != "auto":
        return console.secure_cookies == "always"
    return not local_plain_http(
        request.scheme,
        request.host,  # the Host header, port and all
        request.remote,
        request.headers.get("X-Forwarded-For"),
        request.headers.get("X-Forwarded-Proto"),
        console.trusted_proxies,
    )


def origin_allowed(request: web.Request) -> bool:
    """Cross-site request forgery: a browser names the page's origin on every POST and
    websocket handshake; only this site's pages (and configured ones) may change state.
    A request without an Origin is refused too: scripts can send one."""
    origin = request.headers.get("Origin")
    return origin is not None and origin in (own_origin(request), *request.app[CONSOLE].allowed_origins)


def session_token(request: web.Request) -> str | None:
    """The session token in the request's cookie, if it carries our signature.

    The Cookie header is read here rather than through `request.cookies`: aiohttp 3.9 parses
    it with http.cookies, which raises on any malformed cookie in the header, so one odd
    cookie of another site on this host made every console request a 500."""
    for header in request.headers.getall(hdrs.COOKIE, ()):
        for pair in header.split(";"):
            name, equals, value = pair.partition("=")
            token = request.app[SESSIONS].token(value.strip()) if equals and name.strip() == COOKIE else None
            if token is not None:
                return token
    return None


async def current_agent(request: web.Request) -> AgentRef | None:
    token = session_token(request)
    if token is None:
        return None
    return await request.app[HELPDESK].database.run(Sessions.agent, token)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def requires(*roles: str) -> Callable[[Handler], Handler]:
    """401 without a valid session, 403 for a role not in `roles` or a foreign Origin."""

    def decorate(handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            if request.method not in SAFE_METHODS and not origin_allowed(request):
                return error(403, "this request must come from the console's own pages (Origin header)")
            agent = await current_agent(request)
            if agent is None:
                return error(401, "log in first: POST /api/v1/auth/login")
            if agent.role not in roles:
                return error(403, f"the {agent.role} role may not do this")
            request[AGENT] = agent
            try:
                return await handler(request)
            except TicketError as failure:
                return error(failure.status, str(failure))

        return checked

    return decorate


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = loads_limited((await request.read()).decode("utf-8"))
    except TooDeep as failure:
        raise web.HTTPBadRequest(text=str(failure)) from failure
    except UnicodeDecodeError as failure:
        raise web.HTTPBadRequest(text=f"body is not valid UTF-8 (byte {failure.start})") from failure
    except json.JSONDecodeError as failure:
        raise web.HTTPBadRequest(text=f"body is not valid JSON: {failure.msg}") from failure
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


async def text_field(request: web.Request) -> str:
    body = await json_body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise web.HTTPBadRequest(text="'text' must be a non-empty string")
    limit = request.app[CONSOLE].max_text_chars
    if len(text) > limit:
        raise web.HTTPRequestEntityTooLarge(
            max_size=limit,
            actual_size=len(text),
            text=f"'text' has {len(text)} characters; the limit is {limit}",
        )
    if not plain_text(text):
        raise web.HTTPBadRequest(
            text="'text' contains a character that is not valid text (NUL or a lone surrogate)"
        )
    return text.strip()


MAX_ID = 2**31 - 1  # the databases' integer keys


def path_id(request: web.Request, what: str = "ticket") -> int:
    """The {id} of the route, or a 404 that names what was not found."""
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_ID:
        raise web.HTTPNotFound(text=f"there is no {what} {raw[:40]!r}")
    return int(raw)


def ticket_id(request: web.Request) -> int:
    return path_id(request)


# -- Authentication --------------------------------------------------------------------------


async def login(request: web.Request) -> web.StreamResponse:
    if not origin_allowed(request):
        return error(403, "log in from the console's own page (Origin header)")
    body = await json_body(request)
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
        return error(400, 'send {"email": "...", "password": "..."}')
    if not (plain_text(email) and plain_text(password)) or len(email) > 320 or len(password) > 1024:
        return error(400, "the email or the password contains characters that cannot be part of one")
    helpdesk, sessions, throttle = request.app[HELPDESK], request.app[SESSIONS], request.app[THROTTLE]
    console = request.app[CONSOLE]
    address = client_address(request.remote, request.headers.get("X-Forwarded-For"), console.trusted_proxies)
    address = address or request.remote  # this machine's own logins have their address too
    wait = throttle.begin(email, address)
    if wait:
        response = error(429, f"too many failed logins; try again in {wait_words(wait)}")
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    agent = None
    try:
        stored = await helpdesk.database.run(auth.credentials, email)
        # argon2 takes tens of milliseconds of CPU by design: off the event loop, and with
        # no database transaction open.
        agent, rehashed = await asyncio.get_running_loop().run_in_executor(
            None, auth.verify_password, stored, password
        )
        if agent is None:
            logger.info("Failed login for %s from %s", email[:100], address)
            return error(401, "wrong email or password")
        if rehashed:
            await helpdesk.database.run(auth.store_rehash, agent, rehashed)
        cookie = await helpdesk.database.run(sessions.start, agent)
    finally:
        throttle.end(email, address, succeeded=agent is not None)
    logger.info("%s logged in", agent.email)
    response = web.json_response(agent.as_dict())
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(sessions.lifetime.total_seconds()),
        httponly=True,
        samesite="Strict",
        secure=secure_cookie(request),
        path="/",
    )
    return response


@requires(*("agent", "trainer", "admin"))
async def logout(request: web.Request) -> web.StreamResponse:
    token = session_token(request)
    if token is not None:
        await request.app[HELPDESK].database.run(Sessions.end, token)
        for socket in list(request.app[SOCKETS].pop(token, ())):
            await socket.close(code=4401, message=b"logged out")
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


@requires(*("agent", "trainer", "admin"))
async def me(request: web.Request) -> web.StreamResponse:
    return web.json_response(request[AGENT].as_dict())


# -- Tickets ---------------------------------------------------------------------------------


@requires(*TICKET_ROLES)
async def list_tickets(request: web.Request) -> web.StreamResponse:
    status = request.query.get("status", "open")
    if status not in ("open", "resolved"):
        return error(400, "status must be 'open' or 'resolved'")
    return web.json_response(await request.app[HELPDESK].queue(status))


@requires(*TICKET_ROLES)
async def get_ticket(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[HELPDESK].detail(ticket_id(request)))


@requires(*TICKET_ROLES)
async def get_attachment(request: web.Request) -> web.StreamResponse:
    """A file a customer sent (a photo), for the agent's eyes only."""
    number = path_id(request, "attachment")
    found = await request.app[HELPDESK].database.run(lambda session: session.get(Attachment, number))
    if found is None:
        return error(404, f"there is no attachment {number}")
    # Served as an image only (never as a page), and not cached by shared caches.
    headers = {"Content-Disposition": "inline", "Cache-Control": "private, max-age=3600", **PAGE_SECURITY}
    content_type = (
        found.content_type if found.content_type.startswith("image/") else "application/octet-stream"
    )
    return web.Response(body=found.data, content_type=content_type, headers=headers)


@requires(*TICKET_ROLES)
async def claim(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[HELPDESK].claim(ticket_id(request), request[AGENT]))


@requires(*TICKET_ROLES)
async def post_message(request: web.Request) -> web.StreamResponse:
    text = await text_field(request)
    message = await request.app[HELPDESK].reply(ticket_id(request), request[AGENT], text)
    return web.json_response(message, status=201)


@requires(*TICKET_ROLES)
async def post_note(request: web.Request) -> web.StreamResponse:
    text = await text_field(request)
    return web.json_response(
        await request.app[HELPDESK].note(ticket_id(request), request[AGENT], text), status=201
    )


@requires(*TICKET_ROLES)
async def handback(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[HELPDESK].handback(ticket_id(request), request[AGENT]))


@requires(*TICKET_ROLES)
async def close(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[HELPDESK].close(ticket_id(request), request[AGENT]))


async def websocket(request: web.Request) -> web.StreamResponse:
    """Live queue and ticket events for the console (the handshake is checked like a POST).

    The session is checked again every SESSION_CHECK_SECONDS, and logging out closes the
    process's sockets of that session at once (code 4401): a socket does not outlive its
    login. If the event stream breaks (Redis restarting), the socket is closed (1011) so
    that the console reconnects and fetches what it missed.
    """
    if not origin_allowed(request):
        return error(403, "connect from the console's own page (Origin header)")
    token = session_token(request)
    agent = await current_agent(request)
    if agent is None or token is None:
        return error(401, "log in first: POST /api/v1/auth/login")
    if agent.role not in TICKET_ROLES:
        return error(403, f"the {agent.role} role may not do this")
    socket = web.WebSocketResponse(heartbeat=30)
    await socket.prepare(request)
    sockets = request.app[SOCKETS].setdefault(token, set())
    sockets.add(socket)
    async with request.app[HELPDESK].hub.subscribe(hub.AGENTS) as events:
        helpers = [
            asyncio.create_task(_forward(events, socket)),
            asyncio.create_task(_recheck_session(request.app, token, socket)),
        ]
        try:
            async for message in socket:  # the console sends nothing; this waits for close
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            sockets.discard(socket)
            if not sockets:
                request.app[SOCKETS].pop(token, None)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
    return socket


async def _forward(events: Any, socket: web.WebSocketResponse) -> None:
    try:
        async for event in events:
            await socket.send_str(json.dumps(event, default=str))
    except asyncio.CancelledError:
        raise
    except ConnectionResetError:
        return
    except Exception as failure:  # noqa: BLE001 - the console reconnects and refetches
        logger.warning("Live events stopped (%s); closing the agent's socket so it reconnects", failure)
        await socket.close(code=1011, message=b"event stream lost")


async def _recheck_session(app: web.Application, token: str, socket: web.WebSocketResponse) -> None:
    while True:
        await asyncio.sleep(SESSION_CHECK_SECONDS)
        agent = await app[HELPDESK].database.run(Sessions.agent, token)
        if agent is None or agent.role not in TICKET_ROLES:
            await socket.close(code=4401, message=b"session ended")
            return


def openapi(document: dict[str, Any]) -> Handler:
    async def serve(request: web.Request) -> web.StreamResponse:
        return web.json_response(document)

    return serve


# -- Console pages ---------------------------------------------------------------------------


def page(name: str) -> web.FileResponse:
    return web.FileResponse(HERE / "templates" / name, headers=PAGE_SECURITY)


def console_page(name: str, roles: tuple[str, ...], title: str) -> Handler:
    """A console page: the login page for whoever has no session (then back here), 403 for
    a role that may not use it."""

    async def serve(request: web.Request) -> web.StreamResponse:
        agent = await current_agent(request)
        if agent is None:
            next_page = "" if name == "agent.html" else f"?next={request.path}"
            raise web.HTTPFound(f"/agent/login{next_page}")
        if agent.role not in roles:
            return web.Response(
                status=403, text=f"The {agent.role} role may not use the {title}.", headers=PAGE_SECURITY
            )
        return page(name)

    return serve


async def login_page(request: web.Request) -> web.StreamResponse:
    return page("login.html")


def add_routes(app: web.Application, sessions: Sessions, settings: ConsoleSettings) -> None:
    """The API and the console; `app[HELPDESK]` is set when the app starts (it needs the
    database and the HTTP session)."""
    app[SESSIONS] = sessions
    app[CONSOLE] = settings
    app[THROTTLE] = Backoff()
    app[SOCKETS] = {}
    document = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    router = app.router
    router.add_get(f"{PREFIX}/openapi.json", openapi(document))
    router.add_post(f"{PREFIX}/auth/login", login)
    router.add_post(f"{PREFIX}/auth/logout", logout)
    router.add_get(f"{PREFIX}/auth/me", me)
    router.add_get(f"{PREFIX}/tickets", list_tickets)
    router.add_get(f"{PREFIX}/tickets/{{id}}", get_ticket)
    router.add_post(f"{PREFIX}/tickets/{{id}}/claim", claim)
    router.add_post(f"{PREFIX}/tickets/{{id}}/messages", post_message)
    router.add_post(f"{PREFIX}/tickets/{{id}}/notes", post_note)
    router.add_post(f"{PREFIX}/tickets/{{id}}/handback", handback)
    router.add_post(f"{PREFIX}/tickets/{{id}}/close", close)
    router.add_get(f"{PREFIX}/attachments/{{id}}", get_attachment)
    router.add_get(f"{PREFIX}/ws", websocket)
    router.add_get("/agent", console_page("agent.html", TICKET_ROLES, "agent console"))
    router.add_get("/agent/login", login_page)
    router.add_static("/agent/static", HERE / "static", append_version=False)
