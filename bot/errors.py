"""Every error leaves the gateway as JSON that says what went wrong; never a bare 500."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The body is replaced by JSON; an HTTPException's other headers (Allow on a 405, Retry-After)
# are part of its answer and go along.
BODY_HEADERS = frozenset({"content-type", "content-length"})


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"status": status, "message": message}}, status=status)


def _as_json(error: web.HTTPException, message: str) -> web.Response:
    response = json_error(error.status, message)
    for name, value in error.headers.items():
        if name.lower() not in BODY_HEADERS:
            response.headers.add(name, value)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge as error:
        return _as_json(error, f"request body too large ({error.text})")
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _as_json(error, error.reason if error.text is None else error.text)
    except Exception:
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error; it has been logged")
