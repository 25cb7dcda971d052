"""A flood from one sender beside a customer chatting at a human pace (make bench-flood).

One sender sends 300 messages in 30 s over the widget's socket (every tenth of them 2,000
emoji, which cost Rasa the most; the rest short and neutral) while another customer asks ten
questions, one every two seconds. The customer's round trips are measured three times, each
on a stack started as make run starts it (two Rasa servers):

- quiet: the same ten questions with no flood (the baseline);
- flood: during the flood, with make run's limits (bot/limits.py);
- flood, no limits: during the same flood with the limits out of the way, as before them.

It prints p50/p95/max for each, how much of the flood was refused, and the tickets opened.
The end-to-end test (tests/e2e/test_flood.py) checks what the customers see; this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import socketio
import sqlalchemy as sa

from benchmarks.cli import RESULTS, latency_stats

FLOOD_MESSAGES = 300
FLOOD_SECONDS = 30.0
QUESTIONS = [
    "hello",
    "how long do I have to return a sweater?",
    "do you ship to Canada?",
    "how much is shipping?",
    "can I pay with PayPal?",
    "thanks",
    "what is your warranty?",
    "how do I track my parcel?",
    "do you have a store?",
    "bye",
]
NO_LIMITS = {
    "SENDER_MESSAGES_PER_MINUTE": "1000000",
    "SENDER_BURST": "1000000",
    "ADDRESS_MESSAGES_PER_MINUTE": "1000000",
    "ADDRESS_BURST": "1000000",
    "WAITING_PER_CONVERSATION": "1000000",
    "RASA_TEXT_CHARS": "2000",
}


class Socket:
    """A widget's socket from an address outside, as the proxy on this machine forwards it."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, asyncio.Queue[Any]] = {}
        for name in ("session_confirm", "bot_uttered", "rate_limited", "typing"):
            self.events[name] = asyncio.Queue()
            self.client.on(name, self.events[name].put_nowait)

    async def open(self, base: str) -> None:
        headers = {"X-Forwarded-For": self.address}
        await self.client.connect(base, transports=["websocket"], socketio_path="socket.io", headers=headers)
        await self.client.emit("session_request", {"session_id": None})
        await asyncio.wait_for(self.events["session_confirm"].get(), 30)

    async def say(self, text: str, timeout: float = 180) -> tuple[float, list[str]]:
        """The round trip to the end of the turn, and the replies' texts."""
        started = time.perf_counter()
        await self.client.emit("user_uttered", {"message": text})
        while True:
            typing = await asyncio.wait_for(self.events["typing"].get(), timeout)
            if not typing.get("on"):
                break
        replies = []
        while not self.events["bot_uttered"].empty():
            replies.append(self.events["bot_uttered"].get_nowait().get("text") or "")
        return time.perf_counter() - started, replies


def tickets(helpdesk_db: Path) -> list[tuple[int, str]]:
    engine = sa.create_engine(f"sqlite:///{helpdesk_db}")
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text("SELECT id, reason FROM tickets ORDER BY id"))]
    finally:
        engine.dispose()


async def flood_beside_a_customer(gateway_url: str, flooding: bool = True) -> dict[str, Any]:
    """The customer's ten turns (with the flood under way if `flooding`), what was refused."""
    flooder, customer = Socket("203.0.113.66"), Socket("198.51.100.23")
    await flooder.open(gateway_url)
    await customer.open(gateway_url)
    try:
        # Warm: a stack just started answers its first messages slowly (caches, the shop's seeding).
        await customer.say("hi there")
        await flooder.say("📦" * 2000)

        async def flood() -> None:
            for n in range(FLOOD_MESSAGES if flooding else 0):
                text = "📦" * 2000 if n % 10 == 0 else f"ping {n}"
                await flooder.client.emit("user_uttered", {"message": text})
                await asyncio.sleep(FLOOD_SECONDS / FLOOD_MESSAGES)

        async def chat() -> list[tuple[float, list[str]]]:
            await asyncio.sleep(2.0)  # the flood is under way
            turns = []
            for text in QUESTIONS:
                turns.append(await customer.say(text))
                await asyncio.sleep(2.0)
            return turns

        _, turns = await asyncio.gather(flood(), chat())
        await asyncio.sleep(3.0)  # the last admitted flood messages are answered
        notices = flooder.events["rate_limited"]
        return {
            "turns": turns,
            "refused": notices.qsize(),
            "notice": None if notices.empty() else notices.get_nowait(),
            "customer_refused": customer.events["rate_limited"].qsize(),
        }
    finally:
        await flooder.client.disconnect()
        await customer.client.disconnect()


def run(name: str, env: dict[str, str], flooding: bool) -> dict[str, Any]:
    from tests.support.stack import MAKE_RUN_RASA_SERVERS, Stack

    print(f"{name}: starting a stack", flush=True)
    with tempfile.TemporaryDirectory() as workdir, contextlib.ExitStack() as running:
        stack = Stack(Path(workdir), env, rasa_servers=MAKE_RUN_RASA_SERVERS)
        running.callback(stack.stop_all)
        stack.start()
        stack.wait_healthy()
        before = tickets(stack.helpdesk_db)
        print(f"{name}: ten questions{' during the flood' if flooding else ''}", flush=True)
        outcome = asyncio.run(flood_beside_a_customer(stack.gateway_url, flooding))
        opened = [reason for ticket, reason in tickets(stack.helpdesk_db) if (ticket, reason) not in before]
    seconds = [elapsed for elapsed, _ in outcome["turns"]]
    texts = [" ".join(replies) for _, replies in outcome["turns"]]
    return {
        **latency_stats(seconds),
        "max_ms": 1000 * max(seconds),
        "apologies": sum("having trouble" in text for text in texts),
        "flood_refused": outcome["refused"] if flooding else None,
        "tickets_opened": opened,
    }


def report(results: dict[str, Any]) -> str:
    lines = [
        f"Another customer's round trips, 10 questions, beside {FLOOD_MESSAGES} messages in "
        f"{FLOOD_SECONDS:.0f} s from one sender",
        f"  {'':18} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'apologies':>9} {'refused':>8}"
        "  tickets opened",
    ]
    for name, row in results.items():
        refused = "-" if row["flood_refused"] is None else f"{row['flood_refused']}/{FLOOD_MESSAGES}"
        lines.append(
            f"  {name:18} {row['p50_ms']:8.0f} {row['p95_ms']:8.0f} {row['max_ms']:8.0f} "
            f"{row['apologies']:9d} {refused:>8}  {', '.join(row['tickets_opened']) or 'none'}"
        )
    lines.append("Goal: with the limits, p95 under one second and no ticket for the overload.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip-unlimited", action="store_true", help="leave out the run without limits")
    args = parser.parse_args(argv)
    results = {"quiet": run("quiet", {}, flooding=False), "flood": run("flood", {}, flooding=True)}
    if not args.skip_unlimited:
        results["flood, no limits"] = run("flood, no limits", NO_LIMITS, flooding=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "flood.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(report(results))
    return results


if __name__ == "__main__":
    main()
