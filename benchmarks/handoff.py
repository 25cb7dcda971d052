"""Handoff latency through the running stack, 100 runs each (the issue's target: p95 < 500 ms).

- Escalation -> agent: from the customer's escalating message (POST to the gateway) to the
  ticket event on an agent's open websocket. Baseline in the same run: the customer's own
  round trip for that message (Rasa understanding it and the actions handing over).
- Agent reply -> customer: from the agent's POST of a reply to the moment the customer's
  client, polling GET /webhooks/rest/messages every 5 ms, has it. Baseline in the same run:
  the gateway's floor, an authenticated GET /api/v1/auth/me round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp
from tqdm import tqdm

from benchmarks.cli import latency_stats, run_on_stack
from tests.support.stack import Stack

PASSWORD = "benchmark agent password"
POLL_SECONDS = 0.005


async def next_new_ticket(socket: aiohttp.ClientWebSocketResponse, seen: set[int]) -> dict[str, Any]:
    """The next ticket event about a ticket not seen before (claims of earlier ones pass by)."""
    while True:
        event = json.loads((await socket.receive(timeout=30)).data)
        if event["type"] == "ticket" and event["ticket"]["id"] not in seen:
            seen.add(event["ticket"]["id"])
            return event["ticket"]


async def poll_for(customer: aiohttp.ClientSession, base: str, sender: str, line: str) -> float:
    """When the customer's client, asking every 5 ms, first has `line`."""
    while True:
        async with customer.get(f"{base}/webhooks/rest/messages", params={"sender": sender}) as response:
            if any(item["text"] == line for item in await response.json()):
                return time.perf_counter()
        await asyncio.sleep(POLL_SECONDS)


async def measure(stack: Stack, runs: int) -> dict[str, Any]:
    base = stack.gateway_url
    stack.create_agent("bench@shop.test", PASSWORD, "agent", "Bench")
    escalation, customer_round_trip, reply, floor = [], [], [], []
    known_tickets: set[int] = set()
    # unsafe=True: the jar keeps cookies from an IP address (the stack runs on 127.0.0.1).
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(headers={"Origin": base}, cookie_jar=jar) as agent,
        aiohttp.ClientSession(headers=stack.rest_headers) as customer,
    ):
        login = await agent.post(
            f"{base}/api/v1/auth/login", json={"email": "bench@shop.test", "password": PASSWORD}
        )
        login.raise_for_status()
        async with agent.ws_connect(f"{base}/api/v1/ws") as socket:
            for run in tqdm(range(runs + 5), desc="handoff", unit="run"):
                sender, text = f"bench-{run}", "I want to talk to a person"
                started = time.perf_counter()
                posted = asyncio.create_task(
                    customer.post(f"{base}/webhooks/rest/webhook", json={"sender": sender, "message": text})
                )
                ticket = await next_new_ticket(socket, known_tickets)
                seen = time.perf_counter()
                response = await posted
                answered = time.perf_counter()
                response.raise_for_status()
                await agent.post(f"{base}/api/v1/tickets/{ticket['id']}/claim")
                await (await customer.get(f"{base}/webhooks/rest/messages", params={"sender": sender})).json()

                line = f"Hello from the agent, run {run}"
                # The customer's client polls all along, as a real one does, not after the POST.
                collected = asyncio.create_task(poll_for(customer, base, sender, line))
                sent = time.perf_counter()
                posted_reply = await agent.post(
                    f"{base}/api/v1/tickets/{ticket['id']}/messages", json={"text": line}
                )
                posted_reply.raise_for_status()
                received = await collected

                probe = time.perf_counter()
                (await agent.get(f"{base}/api/v1/auth/me")).raise_for_status()
                probed = time.perf_counter()
                if run < 5:
                    continue  # warm-up: connections, caches, the shop database's seeding
                escalation.append(seen - started)
                customer_round_trip.append(answered - started)
                reply.append(received - sent)
                floor.append(probed - probe)
    return {
        "escalation_to_agent": latency_stats(escalation),
        "baseline_customer_round_trip": latency_stats(customer_round_trip),
        "agent_reply_to_customer": latency_stats(reply),
        "baseline_gateway_floor": latency_stats(floor),
    }


def report(results: dict[str, Any]) -> str:
    lines = [
        f"Handoff latency, {results['escalation_to_agent']['n']} runs (target: p95 under 500 ms):",
        f"  {'':44} {'p50':>8} {'p95':>8} {'p99':>8}",
    ]
    for key, label in (
        ("escalation_to_agent", "escalating message -> agent's websocket"),
        ("baseline_customer_round_trip", "baseline: the customer's own round trip"),
        ("agent_reply_to_customer", "agent reply -> customer has it (5 ms poll)"),
        ("baseline_gateway_floor", "baseline: GET /api/v1/auth/me round trip"),
    ):
        s = results[key]
        lines.append(f"  {label:44} {s['p50_ms']:6.1f}ms {s['p95_ms']:6.1f}ms {s['p99_ms']:6.1f}ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args(argv)
    run_on_stack("handoff", lambda stack: measure(stack, args.runs), report)


if __name__ == "__main__":
    main()
