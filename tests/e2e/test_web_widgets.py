"""Web chat in Debian's Chromium (Playwright): the npm package rasa-webchat, unchanged, pointed at
the gateway; and the gateway's own widget on the demo shop page, with an agent's reply pushed."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.agents import PASSWORD, Agent
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

WEBCHAT = (
    Path(__file__).resolve().parents[1] / "webchat" / "node_modules" / "rasa-webchat" / "lib" / "index.js"
)
SHOP_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Another shop</title></head>
<body><h1>A shop that embeds rasa-webchat</h1><div id="webchat"></div>
<script src="/rasa-webchat.js"></script>
<script>
  WebChat.default({
    selector: "#webchat", socketUrl: "%(gateway)s", socketPath: "/socket.io/",
    embedded: true, initPayload: "hi", params: {storage: "local"}
  }, null);
</script></body></html>
"""


@pytest.fixture(scope="module")
def other_site(stack: Stack) -> Iterator[str]:
    """A shop's own site on another origin, serving rasa-webchat's bundle as it comes from npm."""
    if not WEBCHAT.exists():
        pytest.fail("rasa-webchat is missing: `make webchat` installs it from npm")
    page_html = (SHOP_PAGE % {"gateway": stack.gateway_url}).encode()
    bundle = WEBCHAT.read_bytes()

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            body, kind = (
                (bundle, "text/javascript") if self.path == "/rasa-webchat.js" else (page_html, "text/html")
            )
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_rasa_webchat_chats_with_the_gateway_unchanged(other_site: str, page: Page) -> None:  # noqa: F811
    page.goto(other_site)
    expect(page.locator(".rw-response").first).to_be_visible(timeout=30_000)  # its initPayload answered
    page.fill(".rw-new-message", "how long do I have to return a sweater?")
    page.keyboard.press("Enter")
    expect(page.locator(".rw-response", has_text="30 days")).to_be_visible(timeout=30_000)
    page.locator(".rw-reply", has_text="Yes, thanks").click()
    expect(page.locator(".rw-client", has_text="Yes, thanks")).to_be_visible()
    count = page.locator(".rw-response").count()
    stored_session = "() => JSON.parse(localStorage.getItem('chat_session')).session_id"
    session = page.evaluate(stored_session)
    assert session
    page.reload()
    # The history and the session survive the reload.
    expect(page.locator(".rw-response", has_text="30 days")).to_be_visible(timeout=30_000)
    assert page.locator(".rw-response").count() >= count
    assert page.evaluate(stored_session) == session


def test_the_shop_widget_chats_keeps_its_history_and_receives_an_agent(stack: Stack, page: Page) -> None:  # noqa: F811
    page.goto(stack.gateway_url + "/")
    page.click("#hlw-launcher")
    expect(page.locator("#hlw-input")).to_be_focused()
    page.fill("#hlw-input", "how long do I have to return a sweater?")
    page.keyboard.press("Enter")
    answer = page.locator('.hlw-msg[data-author="bot"] .hlw-text', has_text="30 days")
    expect(answer).to_be_visible(timeout=30_000)
    page.locator(".hlw-quick-reply", has_text="Yes, thanks").click()
    expect(page.locator('.hlw-msg[data-author="customer"]', has_text="Yes, thanks")).to_be_visible()

    page.reload()
    page.click("#hlw-launcher")
    expect(answer).to_be_visible()  # the history, restored

    marker = uuid.uuid4().hex[:6]
    page.fill("#hlw-input", "I want to talk to a person")
    page.keyboard.press("Enter")
    expect(page.locator("#hlw-log")).to_contain_text("support team", timeout=30_000)
    page.fill("#hlw-input", f"my reference is {marker}")
    page.keyboard.press("Enter")
    expect(page.locator("#hlw-log")).to_contain_text("in the queue", timeout=30_000)

    email = f"web-{marker}@shop.test"
    stack.create_agent(email, PASSWORD, "agent", "Robin")
    agent = Agent(stack, email)
    ticket = agent.ticket_of(f"my reference is {marker}")
    agent.call("POST", f"/tickets/{ticket['id']}/claim")
    agent.call(
        "POST", f"/tickets/{ticket['id']}/messages", {"text": "Hi, Robin here. <b>How</b> can I help?"}
    )
    # Pushed live, as text; the header says who is answering.
    expect(page.locator('.hlw-msg[data-author="bot"] .hlw-text').last).to_have_text(
        "Hi, Robin here. <b>How</b> can I help?", timeout=10_000
    )
    expect(page.locator("#hlw-status")).to_contain_text("Robin")
    assert page.locator("#hlw-log b").count() == 0


def test_the_widget_says_to_wait_and_gives_back_a_line_it_could_not_take(stack: Stack, page: Page) -> None:  # noqa: F811
    page.goto(stack.gateway_url + "/")
    page.click("#hlw-launcher")
    page.fill("#hlw-input", "hello")
    page.keyboard.press("Enter")
    bot_lines = page.locator('.hlw-msg[data-author="bot"]')
    expect(bot_lines.first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1000)
    answered = bot_lines.count()
    # Six lines at once, as a paste-happy customer sends them: one at work, two waiting, the
    # rest refused as busy (a conversation answers one message at a time).
    lines = [f"line number {n}" for n in range(6)]
    page.evaluate(
        """(lines) => {
          const input = document.querySelector("#hlw-input");
          for (const line of lines) {
            input.value = line;
            input.dispatchEvent(new KeyboardEvent("keydown", {key: "Enter", bubbles: true}));
          }
        }""",
        lines,
    )
    notice = page.locator("#hlw-notice")
    expect(notice).to_contain_text("still working on your earlier messages", timeout=10_000)
    expect(page.locator("#hlw-input")).to_have_value(re.compile(r"^line number [0-5]$"))
    given_back = page.locator("#hlw-input").input_value()
    # The three lines taken are answered; the notice stays while they come in.
    for _ in range(300):  # the page's CSP allows no eval, so no wait_for_function
        if bot_lines.count() >= answered + 3:
            break
        page.wait_for_timeout(100)
    assert bot_lines.count() >= answered + 3
    expect(notice).to_be_visible()
    customer_lines = page.locator('.hlw-msg[data-author="customer"] .hlw-text').all_inner_texts()
    assert len(customer_lines) == 4 and given_back not in customer_lines, customer_lines


def test_a_shop_page_that_signs_its_customer_in_gets_their_order_without_the_email(
    stack: Stack,
    page: Page,  # noqa: F811
) -> None:
    # The shop's own page (its back end computed the hash), on the gateway's origin here.
    signed = stack.signed_in("jane.doe@example.com")
    account_page = f"""<!doctype html><html><head><meta charset="utf-8"><title>My account</title></head>
<body><h1>Signed in as Jane</h1>
<script src="/widget.js" data-identifier="{signed["identifier"]}"
        data-identifier-hash="{signed["identifier_hash"]}"></script></body></html>"""
    url = stack.gateway_url + "/my-account"
    page.route(url, lambda route: route.fulfill(status=200, content_type="text/html", body=account_page))
    page.goto(url)
    page.click("#hlw-launcher")
    page.fill("#hlw-input", "where is my order 100234?")
    page.keyboard.press("Enter")
    expect(page.locator("#hlw-log")).to_contain_text("trail running shoes", timeout=30_000)
    expect(page.locator("#hlw-log")).not_to_contain_text("email address")
