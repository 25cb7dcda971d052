"""The demo shop page at `/` and the embeddable chat widget (`/widget.js`, `/static/`)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
PAGE_SECURITY = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def shop(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(HERE / "templates" / "shop.html", headers=PAGE_SECURITY)


async def widget(request: web.Request) -> web.StreamResponse:
    # Embedded on shops' own sites: any page may load it; it caches for a short while.
    return web.FileResponse(
        STATIC / "widget.js",
        headers={"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "max-age=300"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", shop)
    app.router.add_get("/widget.js", widget)
    app.router.add_static("/static", STATIC, append_version=False)
