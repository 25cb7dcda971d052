"""The web channel's speed through the running stack.

- Round trip: the same held-out customer messages sent over Socket.IO (user_uttered until
  the last bot_uttered, marked by the gateway's `typing {"on": false}`) and over the REST
  channel (the POST's response), alternating, in 10 conversations each.
- Customers held: N Socket.IO customers connected at once, each chatting at a human pace
  (a message, the answer, 2-4 s of reading and typing, the next message) for 20 s; N doubles
  from 10 until the round trip's p95 reaches one second. The figure is the largest N whose
  p95 stayed under it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

import aiohttp
from tqdm import tqdm

from benchmarks.cli import latency_stats, run_on_stack
from benchmarks.foundation import HELD_OUT, load_examples
from tests.support.stack import MACHINE_SPEED, Stack
from tests.support.web_customer import WebCustomer


async def round_trips(stack: Stack, messages: list[str]) -> dict[str, Any]:
    web = [WebCustomer(stack.gateway_url, f"bench-web-{n:04d}") for n in range(10)]
    for customer in web:
        await customer.connect()
    timings: dict[str, list[float]] = {"socketio": [], "rest": []}
    async with aiohttp.ClientSession() as http:

        async def rest(sender: str, text: str) -> float:
            started = time.perf_counter()
            async with http.post(
                f"{stack.gateway_url}/webhooks/rest/webhook",
                json={"sender": sender, "message": text},
                headers=stack.rest_headers,
            ) as response:
                await response.read()
            return time.perf_counter() - started

        for i, text in enumerate(tqdm(messages, desc="round trips", unit="msg")):
            order = ["socketio", "rest"] if i % 2 == 0 else ["rest", "socketio"]
            for name in order:
                if name == "socketio":
                    elapsed = await web[i % 10].timed_say(text)
                else:
                    elapsed = await rest(f"bench-rest-{i % 10:04d}", text)
                if i >= 10:  # warm-up
                    timings[name].append(elapsed)
    for customer in web:
        await customer.close()
    return {name: latency_stats(values) for name, values in timings.items()}


async def hold(stack: Stack, customers: int, messages: list[str], seconds: float) -> dict[str, Any]:
    web = [WebCustomer(stack.gateway_url, f"hold-{customers}-{n:04d}") for n in range(customers)]
    await asyncio.gather(*(customer.connect() for customer in web))
    trips: list[float] = []
    deadline = time.perf_counter() + seconds
    rng = random.Random(customers)

    async def chat(customer: WebCustomer) -> None:
        await asyncio.sleep(rng.uniform(0, 3))  # customers do not all start at once
        while time.perf_counter() < deadline:
            trips.append(await customer.timed_say(rng.choice(messages)))
            await asyncio.sleep(rng.uniform(2, 4))

    await asyncio.gather(*(chat(customer) for customer in web))
    await asyncio.gather(*(customer.close() for customer in web))
    return {"customers": customers, **latency_stats(trips)}


async def measure(stack: Stack, seconds: float) -> dict[str, Any]:
    messages = [example["text"] for example in load_examples(HELD_OUT)]
    results: dict[str, Any] = {"round_trip": await round_trips(stack, messages[:110]), "levels": []}
    good, bad, customers = 0, None, 10
    while customers <= 320:
        level = await hold(stack, customers, messages, seconds)
        print(f"  {customers} customers: p95 {level['p95_ms']:.0f} ms over {level['n']} messages")
        results["levels"].append(level)
        if level["p95_ms"] < 1000:
            good = customers
        else:
            bad = customers
        if bad is None:
            customers *= 2
        elif bad - good > 5:  # then halve the gap, to the nearest 5
            customers = good + max(5, round((bad - good) / 2 / 5) * 5)
        else:
            break
    held = [level["customers"] for level in results["levels"] if level["p95_ms"] < 1000]
    results["customers_held"] = max(held) if held else 0
    return results


def report(results: dict[str, Any]) -> str:
    trip = results["round_trip"]
    lines = [
        f"Web channel round trip, {trip['socketio']['n']} held-out messages each, alternating:",
        f"  {'':34} {'p50':>8} {'p95':>8} {'p99':>8}",
    ]
    for name, label in (
        ("socketio", "Socket.IO user_uttered -> replies"),
        ("rest", "baseline: REST channel, same texts"),
    ):
        s = trip[name]
        lines.append(f"  {label:34} {s['p50_ms']:6.1f}ms {s['p95_ms']:6.1f}ms {s['p99_ms']:6.1f}ms")
    lines.append("Socket.IO customers chatting at once (a message every 2-4 s after each answer):")
    for level in sorted(results["levels"], key=lambda level: level["customers"]):
        p50, p95 = level["p50_ms"], level["p95_ms"]
        lines.append(f"  {level['customers']:4d} customers: p50 {p50:6.0f} ms, p95 {p95:6.0f} ms")
    lines.append(f"  held with p95 under one second: {results['customers_held']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each level chats")
    args = parser.parse_args(argv)
    run_on_stack("channels", lambda stack: measure(stack, args.seconds), report, MACHINE_SPEED)


if __name__ == "__main__":
    main()
