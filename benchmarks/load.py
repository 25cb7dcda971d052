"""make bench-load: how many web customers one machine holds, beside a stock `rasa init` bot.

Customers connect over Socket.IO as the widget does and chat at a human pace: a message, the
bot's answer, 2-4 s of reading and typing, the next message. Each one follows a script from
`benchmarks/data/conversations.yml` (order status, policy questions, returns, small talk,
questions the bot declines; no handoffs, whose messages go to people) and, at its end, a new
customer takes its place. Levels of N customers at once, 25 more each time, run until the
round trip's p95 passes one second.

The same levels then run against a stock `rasa init` bot served by the same Rasa, with its
own socketio channel (the peer a Rasa user would otherwise deploy), fed the same messages.

For each level: messages per second, p50/p95/p99 of the round trip (the message sent to the
last reply received), errors (no reply in time, a lost connection, the "assistant is not
available" apology), CPU milliseconds per message of each process, and each process's
peak memory. The gateway ends a turn with `typing {"on": false}`; Rasa's channel has no such
mark, so for the peer a turn ends after a second without a reply (the round trip still ends
at its last reply), or after 3 s without any (rasa init's bot leaves some messages
unanswered: counted apart, not as errors).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import requests
import socketio
import yaml

from benchmarks.cli import RESULTS, latency_stats
from tests.support.chatter import APOLOGY
from tests.support.stack import BIN, MAKE_RUN_RASA_SERVERS, ROOT, SERVING_ENV, Stack, StackError, free_port
from tests.support.web_customer import connect_from, loopback_addresses

SCRIPTS = Path(__file__).resolve().parent / "data" / "conversations.yml"
# Whole conversations the bot settles itself; handoffs leave the bot, cancellations change
# the shop for every later customer.
GOALS = ("order_status", "policy_answered", "return_opened", "return_refused", "return_status", "declined")
PEER_DIR = ROOT / "var" / "bench" / "rasa-init"
QUIET_SECONDS = 1.0  # the peer's end of turn: no reply for this long
NO_REPLY_SECONDS = 3.0  # the peer answers some messages with nothing at all
REPLY_TIMEOUT = 15.0
# The gateway's apology when Rasa does not answer (it also opens a ticket): an error here.
ONE_SECOND_MS = 1000.0


def scripts() -> list[list[dict[str, str]]]:
    """Each load script's customer turns: {"user": text} or {"press": button title}."""
    conversations = yaml.safe_load(SCRIPTS.read_text(encoding="utf-8"))["conversations"]
    return [
        [{key: turn[key] for key in ("user", "press") if key in turn} for turn in conversation["turns"]]
        for conversation in conversations
        if conversation["goal"] in GOALS
    ]


@dataclass
class Level:
    customers: int
    trips: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    unanswered: int = 0  # the peer said nothing (not an error: rasa init has no fallback)
    conversations: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Customer:
    """One widget: a Socket.IO connection, a script, the time from each message to its last reply."""

    def __init__(self, url: str, marks_turns: bool, source: str | None = None) -> None:
        self.url = url
        self.marks_turns = marks_turns
        self.source = source  # the address it connects from (make bench-scale: one per customer)
        self._http: aiohttp.ClientSession | None = None
        self.client = socketio.AsyncClient(reconnection=False)
        self.session_id: str | None = None
        self.replies: list[dict[str, Any]] = []
        self.last_reply = 0.0
        self._event = asyncio.Event()
        self._turn_done = False
        self.client.on("session_confirm", self._confirmed)
        self.client.on("bot_uttered", self._bot_uttered)
        self.client.on("typing", self._typing)

    async def _confirmed(self, data: Any) -> None:
        self.session_id = data if isinstance(data, str) else data["session_id"]
        self._event.set()

    async def _bot_uttered(self, data: Any) -> None:
        self.replies.append(data if isinstance(data, dict) else {"text": str(data)})
        self.last_reply = time.perf_counter()
        self._event.set()

    async def _typing(self, data: Any) -> None:
        if isinstance(data, dict) and not data.get("on"):
            self._turn_done = True
            self._event.set()

    async def connect(self) -> None:
        if self.source is not None:
            self._http = connect_from(self.client, self.source)
        await self.client.connect(self.url, transports=["websocket"], socketio_path="socket.io")
        await self.client.emit("session_request", {"session_id": None})
        await self._wait(lambda: self.session_id is not None, REPLY_TIMEOUT)

    async def _wait(self, done: Any, timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while not done():
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            self._event.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._event.wait(), left)
        return True

    async def say(self, text: str) -> tuple[float | None, list[dict[str, Any]]]:
        """Sends one message; the round trip in seconds (None: no reply) and the replies."""
        self.replies, self._turn_done, self.last_reply = [], False, 0.0
        sent = time.perf_counter()
        await self.client.emit(
            "user_uttered", {"message": text, "session_id": self.session_id, "customData": {}}
        )
        if self.marks_turns:
            if not await self._wait(lambda: self._turn_done, REPLY_TIMEOUT):
                raise TimeoutError
        else:
            await self._wait(lambda: bool(self.replies), NO_REPLY_SECONDS)
            while self.replies and time.perf_counter() - self.last_reply < QUIET_SECONDS:
                await asyncio.sleep(QUIET_SECONDS / 4)
        return (self.last_reply - sent if self.replies else None), self.replies

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.disconnect()
        if self._http is not None:
            await self._http.close()


def _pressed(title: str, replies: list[dict[str, Any]]) -> str:
    """What pressing the button called `title` sends: its payload, or the title if not shown."""
    for reply in replies:
        for button in (reply.get("quick_replies") or []) + (reply.get("buttons") or []):
            if str(button.get("title", "")).lower() == title.lower():
                return str(button.get("payload") or title)
    return title


async def run_level(
    url: str, marks_turns: bool, customers: int, seconds: float, seed: int, spread: bool = False
) -> Level:
    """`spread`: each customer from an address of its own (nginx keeps an address on one gateway)."""
    level = Level(customers)
    rng = random.Random(seed)
    pool = scripts()
    deadline = time.perf_counter() + seconds

    addresses: list[str | None] = [*loopback_addresses(customers)] if spread else [None] * customers

    async def one_customer(start_delay: float, source: str | None) -> None:
        await asyncio.sleep(start_delay)
        while time.perf_counter() < deadline:
            customer = Customer(url, marks_turns, source)
            try:
                await customer.connect()
                replies: list[dict[str, Any]] = []
                for turn in rng.choice(pool):
                    if time.perf_counter() >= deadline:
                        break
                    text = turn["user"] if "user" in turn else _pressed(turn["press"], replies)
                    trip, replies = await customer.say(text)
                    if trip is None:
                        level.unanswered += 1
                    else:
                        level.trips.append(trip)
                    if any(reply.get("text") == APOLOGY for reply in replies):
                        level.error("apology")
                    # 2-4 s from the last reply; waiting for the peer's quiet second counts.
                    await asyncio.sleep(rng.uniform(2, 4) - (0 if marks_turns else QUIET_SECONDS))
                level.conversations += 1
            except TimeoutError:
                level.error("no reply in 15 s")
            except (socketio.exceptions.ConnectionError, ConnectionError, OSError) as error:
                level.error(type(error).__name__)
                await asyncio.sleep(1)
            finally:
                await customer.close()

    # Customers arrive over the first 3 s, as at the start of a rush, not all in one tick.
    await asyncio.gather(*(one_customer(rng.uniform(0, 3), source) for source in addresses))
    return level


class Processes:
    """CPU time and peak memory of named processes (with their children) over a level."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.processes["load generator"] = psutil.Process(os.getpid())
        self.peak: dict[str, int] = {}
        self._start: dict[str, float] = {}

    def _tree(self, name: str) -> list[psutil.Process]:
        process = self.processes[name]
        return [process, *process.children(recursive=True)] if name != "load generator" else [process]

    def cpu_seconds(self) -> dict[str, float]:
        seconds = {}
        for name in self.processes:
            total = 0.0
            for process in self._tree(name):
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    total += times.user + times.system
            seconds[name] = total
        return seconds

    def sample_memory(self) -> None:
        for name in self.processes:
            rss = 0
            for process in self._tree(name):
                with contextlib.suppress(psutil.Error):
                    rss += process.memory_info().rss
            self.peak[name] = max(self.peak.get(name, 0), rss)

    async def watch_memory(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample_memory()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


async def measured_level(
    url: str, marks_turns: bool, pids: dict[str, int], customers: int, seconds: float, spread: bool = False
) -> dict[str, Any]:
    processes = Processes(pids)
    stop = asyncio.Event()
    watcher = asyncio.create_task(processes.watch_memory(stop))
    cpu_before, started = processes.cpu_seconds(), time.perf_counter()
    level = await run_level(url, marks_turns, customers, seconds, seed=customers, spread=spread)
    elapsed = time.perf_counter() - started
    cpu_after = processes.cpu_seconds()
    stop.set()
    await watcher
    messages = len(level.trips) + level.unanswered
    stats = (
        latency_stats(level.trips) if level.trips else {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "n": 0}
    )
    return {
        "customers": customers,
        **stats,
        "messages": messages,
        "messages_per_second": messages / elapsed,
        "conversations": level.conversations,
        "unanswered": level.unanswered,
        "errors": level.errors,
        "cpu_ms_per_message": {
            name: 1000 * (cpu_after[name] - cpu_before[name]) / max(1, messages) for name in cpu_after
        },
        "peak_memory_mb": {name: rss / 2**20 for name, rss in processes.peak.items()},
    }


def _print_level(label: str, level: dict[str, Any]) -> None:
    errors = sum(level["errors"].values())
    print(
        f"  {label}: {level['customers']} customers, {level['messages_per_second']:.1f} msg/s, "
        f"p50 {level['p50_ms']:.0f} ms, p95 {level['p95_ms']:.0f} ms, errors {errors}",
        flush=True,
    )


async def ramp(
    label: str,
    url: str,
    marks_turns: bool,
    pids: dict[str, int],
    levels: list[int],
    seconds: float,
    until_over: bool,
) -> list[dict[str, Any]]:
    results = []
    for customers in levels:
        level = await measured_level(url, marks_turns, pids, customers, seconds)
        _print_level(label, level)
        results.append(level)
        if until_over and (level["p95_ms"] >= ONE_SECOND_MS or level["errors"]):
            break
    return results


class PeerBot:
    """A stock `rasa init` bot, trained once (cached under var/bench/), served by the same Rasa."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def prepare() -> Path:
        import rasa

        stamp = PEER_DIR / "rasa-version"
        if (
            stamp.exists()
            and stamp.read_text().strip() == rasa.__version__
            and list(PEER_DIR.glob("models/*.tar.gz"))
        ):
            return PEER_DIR
        shutil.rmtree(PEER_DIR, ignore_errors=True)
        PEER_DIR.mkdir(parents=True)
        print(f"Training the stock rasa init bot in {PEER_DIR} (about a minute, once)", flush=True)
        subprocess.run(
            [str(BIN / "rasa"), "init", "--no-prompt", "--init-dir", str(PEER_DIR)],
            check=True,
            cwd=PEER_DIR,
            capture_output=True,
        )
        # rasa init writes the socketio channel commented out; a Rasa user switches it on like this.
        # Without session persistence: with it, Rasa 3.6's channel never delivers (see docs/channels.md).
        credentials = yaml.safe_load((PEER_DIR / "credentials.yml").read_text()) or {}
        credentials["socketio"] = {
            "user_message_evt": "user_uttered",
            "bot_message_evt": "bot_uttered",
            "session_persistence": False,
        }
        (PEER_DIR / "credentials.yml").write_text(yaml.safe_dump(credentials))
        stamp.write_text(rasa.__version__)
        return PEER_DIR

    def start(self, log: Path) -> None:
        directory = self.prepare()
        command = [
            str(BIN / "rasa"),
            "run",
            "--port",
            str(self.port),
            "--credentials",
            "credentials.yml",
            "--model",
            "models",
        ]
        # The same thread settings as this project's processes: the peer is not held back by
        # spinning OpenBLAS threads either.
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **SERVING_ENV}
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                command, cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(f"rasa init bot exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/", timeout=2).ok:
                    return
            time.sleep(1)
        raise StackError("rasa init bot not up in 240 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=30)


def _warm_up(url: str, marks_turns: bool) -> None:
    """A few conversations first, so neither side pays for its first-call setup in a level."""
    asyncio.run(run_level(url, marks_turns, customers=4, seconds=8, seed=0))


def measure_peer(levels: list[int], seconds: float, workdir: Path) -> list[dict[str, Any]]:
    """The same levels against the stock rasa init bot."""
    peer = PeerBot()
    try:
        peer.start(workdir / "rasa-init.log")
        assert peer.process is not None
        _warm_up(peer.url, False)
        print("Baseline: stock rasa init bot, same Rasa, its socketio channel:", flush=True)
        pids = {"rasa": peer.process.pid}
        return asyncio.run(ramp("rasa init", peer.url, False, pids, levels, seconds, until_over=False))
    finally:
        peer.stop()


LOGS = ROOT / "var" / "bench" / "load-logs"


def _keep_logs(workdir: Path) -> None:
    """The processes' logs of the last run, kept under var/ (the run's directory is removed)."""
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, LOGS / log.name)
    print(f"Logs of the assistant's processes: {LOGS.relative_to(ROOT)}/", flush=True)


def measure(seconds: float, step: int, most: int, baseline: bool = True) -> dict[str, Any]:
    results: dict[str, Any] = {"seconds_per_level": seconds}
    with tempfile.TemporaryDirectory() as workdir:
        stack = Stack(Path(workdir), rasa_servers=MAKE_RUN_RASA_SERVERS)
        try:
            stack.start()
            stack.wait_healthy()
            pids = stack.pids()
            _warm_up(stack.gateway_url, True)
            levels = list(range(step, most + 1, step))
            print("This assistant (gateway, Rasa, action server, as make run starts them):", flush=True)
            results["assistant"] = asyncio.run(
                ramp("assistant", stack.gateway_url, True, pids, levels, seconds, until_over=True)
            )
        finally:
            stack.stop_all()
            _keep_logs(Path(workdir))
        ran = [level["customers"] for level in results["assistant"]] if baseline else []
        results["rasa_init"] = measure_peer(ran, seconds, Path(workdir)) if ran else []
    for name in ("assistant", "rasa_init"):
        held = [
            lvl["customers"] for lvl in results[name] if lvl["p95_ms"] < ONE_SECOND_MS and not lvl["errors"]
        ]
        results[f"{name}_customers_held"] = max(held) if held else 0
    return results


def report(results: dict[str, Any]) -> str:
    lines = [f"Web customers at a human pace over Socket.IO, {results['seconds_per_level']:.0f} s a level:"]
    peer = {level["customers"]: level for level in results["rasa_init"]}
    lines.append(
        f"  {'customers':>9} {'msg/s':>6} {'p50':>7} {'p95':>7} {'p99':>7} {'errors':>6}"
        f"   rasa init: {'p50':>6} {'p95':>7}  p50 ratio"
    )
    for level in results["assistant"]:
        other = peer.get(level["customers"])
        errors = sum(level["errors"].values())
        row = (
            f"  {level['customers']:9d} {level['messages_per_second']:6.1f} {level['p50_ms']:5.0f}ms "
            f"{level['p95_ms']:5.0f}ms {level['p99_ms']:5.0f}ms {errors:6d}"
        )
        if other:
            ratio = level["p50_ms"] / other["p50_ms"] if other["p50_ms"] else float("nan")
            row += f"              {other['p50_ms']:4.0f}ms {other['p95_ms']:5.0f}ms  {ratio:5.2f}x"
        lines.append(row)
    lines.append(
        f"  held with p95 under one second and no errors: {results['assistant_customers_held']} "
        f"(rasa init: {results['rasa_init_customers_held']} of the levels run)"
    )
    lines.append("CPU ms per message and peak memory by process, at each level:")
    for name in ("assistant", "rasa_init"):
        for level in results[name]:
            served = sum(ms for p, ms in level["cpu_ms_per_message"].items() if p != "load generator")
            cpu = ", ".join(f"{p} {ms:.1f}" for p, ms in level["cpu_ms_per_message"].items())
            cpu = f"{served:.1f} ({cpu})"
            memory = sum(mb for p, mb in level["peak_memory_mb"].items() if p != "load generator")
            each = ", ".join(f"{p} {mb:.0f}" for p, mb in level["peak_memory_mb"].items())
            lines.append(f"  {name} {level['customers']:4d}: CPU {cpu}; memory {memory:.0f} MB ({each})")
            if level["errors"]:
                lines.append(f"      errors: {json.dumps(level['errors'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=40.0, help="how long each level chats")
    parser.add_argument("--step", type=int, default=25, help="customers added at each level")
    parser.add_argument("--most", type=int, default=300, help="the largest level tried")
    parser.add_argument("--no-baseline", action="store_true", help="leave out the rasa init bot")
    args = parser.parse_args(argv)
    results = measure(args.seconds, args.step, args.most, baseline=not args.no_baseline)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(report(results))


if __name__ == "__main__":
    sys.exit(main())
