"""The Markdown renderer that the widget and the consoles load from the gateway itself: served
as scripts, loaded by the console pages before their own code, under the same strict CSP."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bot.app import create_app
from bot.settings import Settings
from tests.support.gateway import FakeRasa

TEMPLATES = Path(__file__).resolve().parents[2] / "handoff" / "templates"


async def test_the_markdown_renderer_is_served_to_the_widget_and_the_consoles(
    aiohttp_server, database_url
) -> None:
    rasa = await aiohttp_server(FakeRasa().app())
    settings = Settings(
        database_url=database_url, rasa_url=str(rasa.make_url("")).rstrip("/"), secret_key="k"
    )
    base = str((await aiohttp_server(create_app(settings))).make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        for path in ("/static/markdown.js", "/static/vendor/markdown-it.umd.min.js"):
            async with http.get(base + path) as response:
                assert response.status == 200
                assert response.content_type in ("application/javascript", "text/javascript")
        for page in ("/", "/agent/login"):  # the shop's page with the widget; the consoles' pages
            async with http.get(base + page) as response:
                csp = response.headers["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "unsafe" not in csp  # scripts from the gateway only
    for page in ("agent.html", "trainer.html"):
        html = (TEMPLATES / page).read_text()
        assert html.index("/static/vendor/markdown-it.umd.min.js") < html.index("/static/markdown.js")
        assert html.index("/static/markdown.js") < html.index("/agent/static/console.js")
