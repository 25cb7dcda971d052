"""Agents against the running stack: `Agent` is a session on the gateway's API (the Origin a
browser sends), `log_in` signs a Playwright page into the agent console. Tests create their
agents with `Stack.create_agent(email, PASSWORD, role, name)`."""

from __future__ import annotations

import re
from typing import Any

import requests
from playwright.sync_api import Page, expect

from tests.support.stack import Stack

PASSWORD = "a long agent password"


class Agent:
    """An agent's session against the gateway's API, sending the Origin a browser sends."""

    def __init__(self, stack: Stack, email: str) -> None:
        self.base = stack.gateway_url
        self.http = requests.Session()
        self.http.headers["Origin"] = self.base
        response = self.http.post(
            f"{self.base}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=30
        )
        assert response.status_code == 200, response.text
        assert response.cookies.get("helpdesk_session")
        assert "httponly" in response.headers["Set-Cookie"].lower()
        assert "samesite=strict" in response.headers["Set-Cookie"].lower()

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, f"{self.base}/api/v1{path}", json=body, timeout=30)

    def ticket_of(self, conversation_text: str) -> dict[str, Any]:
        queue = self.call("GET", "/tickets").json()
        return next(ticket for ticket in queue if ticket["last_customer_message"] == conversation_text)


def log_in(page: Page, stack: Stack, email: str) -> None:
    page.goto(f"{stack.gateway_url}/agent")
    expect(page).to_have_url(re.compile(r"/agent/login$"))  # the console needs a login
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/agent$"))
    expect(page.locator("#connection")).to_have_text("live")
