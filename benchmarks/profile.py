"""`make profile`: where the time of one customer message goes, by part.

    python -m benchmarks.profile [--messages 120] [--scripts]

Held-out customer messages (benchmarks/data/nlu_heldout.yml, ten conversations) go through
two set-ups started from the same model, one message at a time:

1. The running stack (gateway, Rasa, action server as `make run` starts them): each message
   through the gateway's REST channel and straight to Rasa's, alternating which goes first
   (the encoder caches embeddings, so the second sender of a text is faster). The gateway's
   own cost is the difference of the two medians.
2. Rasa in this process (the same model, a SQL tracker store, the in-memory lock store) with
   the same action server, its parts timed from the inside: each NLU component and each
   policy (Rasa's graph nodes), each policy prediction, each action-server call (the
   tracker made JSON, the HTTP round trip, the action itself and the server's own work,
   timed inside the server by benchmarks/action_timing.py), the tracker store, the lock
   store.

With --scripts the messages are whole conversations from make bench-load's scripts (order
checks, returns with their forms, policy questions) instead.

It prints milliseconds per message (mean and median) and calls per message for each part,
and writes benchmarks/results/profile.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from tqdm import tqdm

from benchmarks.cli import RESULTS
from benchmarks.foundation import HELD_OUT, load_examples
from tests.support.stack import MACHINE_SPEED, Stack


class Profile:
    """Seconds by part, summed per message."""

    def __init__(self) -> None:
        self.messages: list[dict[str, list[float]]] = []
        self.phase = "other"

    def start_message(self) -> None:
        self.messages.append(defaultdict(list))

    def add(self, part: str, seconds: float) -> None:
        if self.messages:
            self.messages[-1][part].append(seconds)

    def table(self) -> list[dict[str, Any]]:
        parts = sorted({part for message in self.messages for part in message})
        rows = []
        for part in parts:
            totals = [1000 * sum(message.get(part, [])) for message in self.messages]
            calls = [len(message.get(part, [])) for message in self.messages]
            rows.append(
                {
                    "part": part,
                    "mean_ms": statistics.fmean(totals),
                    "p50_ms": statistics.median(totals),
                    "calls_per_message": statistics.fmean(calls),
                }
            )
        return rows


PROFILE = Profile()


def timed(owner: Any, name: str, part: Callable[..., str]) -> None:
    """Wraps owner.name (sync or async) so each call adds its time to `part(*args)`."""
    original = getattr(owner, name)
    if asyncio.iscoroutinefunction(original):

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                PROFILE.add(part(*args, **kwargs), time.perf_counter() - started)

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                PROFILE.add(part(*args, **kwargs), time.perf_counter() - started)

    setattr(owner, name, wrapper)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    previous, PROFILE.phase = PROFILE.phase, name
    try:
        yield
    finally:
        PROFILE.phase = previous


def in_phase(owner: Any, name: str, phase_name: str, part: str) -> None:
    """Times owner.name as `part`, and names the graph nodes it runs after `phase_name`."""
    original = getattr(owner, name)

    async def run_async(*args: Any, **kwargs: Any) -> Any:
        with phase(phase_name):
            return await original(*args, **kwargs)

    def run_sync(*args: Any, **kwargs: Any) -> Any:
        with phase(phase_name):
            return original(*args, **kwargs)

    setattr(owner, name, run_async if asyncio.iscoroutinefunction(original) else run_sync)
    timed(owner, name, lambda *a, **k: part)


def instrument() -> None:
    """Timers on Rasa's parts (imported here: the stack's processes need none of this)."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.agent import Agent
    from rasa.core.lock_store import LockStore
    from rasa.core.processor import MessageProcessor
    from rasa.engine.graph import GraphNode
    from rasa.utils.endpoints import EndpointConfig

    import bot.nlu  # noqa: F401 - first its changes to Rasa (as loading the model makes them), then the timers

    def node(self: GraphNode, *args: Any) -> str:
        return f"{PROFILE.phase}: {self._component_class.__name__} ({self._node_name})"

    timed(GraphNode, "__call__", node)
    in_phase(MessageProcessor, "parse_message", "nlu", "nlu, all components")
    in_phase(MessageProcessor, "_predict_next_with_tracker", "policy", "policy prediction, all policies")
    timed(MessageProcessor, "fetch_tracker_and_update_session", lambda *a, **k: "tracker store: load")
    timed(MessageProcessor, "save_tracker", lambda *a, **k: "tracker store: save")
    for method in ("issue_ticket", "get_or_create_lock", "finish_serving", "cleanup", "save_lock"):
        timed(LockStore, method, lambda *a, **k: "lock store")
    timed(RemoteAction, "run", lambda self, *a, **k: f"action call {self.name()}: total")
    timed(RemoteAction, "_action_call_format", lambda *a, **k: "action calls: tracker to JSON")
    timed(EndpointConfig, "request", lambda *a, **k: "action calls: HTTP round trip")
    timed(Agent, "handle_message", lambda *a, **k: "Rasa, the whole message")
    gc.callbacks.append(_collection_timer())


def _collection_timer() -> Callable[[str, dict[str, Any]], None]:
    """Python's garbage collections (which stop the process) as parts, by generation."""
    started = [0.0]

    def callback(event: str, info: dict[str, Any]) -> None:
        if event == "start":
            started[0] = time.perf_counter()
        else:
            part = "garbage collection: full" if info["generation"] == 2 else "garbage collection: young"
            PROFILE.add(part, time.perf_counter() - started[0])

    return callback


def conversations(count: int) -> list[tuple[str, str]]:
    """(sender, text) for `count` held-out messages in ten conversations."""
    texts = [example["text"] for example in load_examples(HELD_OUT)][:count]
    return [(f"profile-{n % 10:02d}", text) for n, text in enumerate(texts)]


def scripted(count: int) -> list[tuple[str, str]]:
    """(sender, text) for the first `count` messages of make bench-load's scripts, each script
    one sender, in order (a button pressed is sent as its title)."""
    from benchmarks.load import scripts

    messages = [
        (f"script-{n:03d}", turn.get("user") or turn["press"])
        for n, script in enumerate(scripts())
        for turn in script
    ]
    return messages[:count]


async def over_http(stack: Stack, messages: list[tuple[str, str]]) -> dict[str, Any]:
    timings: dict[str, list[float]] = {"gateway": [], "rasa": []}
    urls = {"gateway": stack.gateway_url, "rasa": stack.rasa_url}
    async with aiohttp.ClientSession() as http:
        for n, (sender, text) in enumerate(tqdm(messages, desc="over HTTP", unit="msg")):
            for path in ("gateway", "rasa") if n % 2 == 0 else ("rasa", "gateway"):
                started = time.perf_counter()
                body = {"sender": f"{path}-{sender}", "message": text}
                headers = stack.rest_headers if path == "gateway" else {}
                async with http.post(
                    f"{urls[path]}/webhooks/rest/webhook", json=body, headers=headers
                ) as response:
                    await response.read()
                if n >= 10:  # warm-up
                    timings[path].append(time.perf_counter() - started)
    medians = {path: 1000 * statistics.median(values) for path, values in timings.items()}
    return {"gateway_p50_ms": medians["gateway"], "rasa_rest_p50_ms": medians["rasa"]}


async def in_process(stack: Stack, messages: list[tuple[str, str]], workdir: Path) -> list[dict[str, Any]]:
    from rasa.core.agent import load_agent
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
    from rasa.core.utils import AvailableEndpoints

    endpoints = workdir / "profile-endpoints.yml"
    endpoints.write_text(
        f'action_endpoint:\n  url: "{stack.actions_url}/webhook"\n'
        f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {workdir / 'profile-tracker.db'}\n",
        encoding="utf-8",
    )
    instrument()
    model = stack.commands()["rasa"][stack.commands()["rasa"].index("--model") + 1]
    agent = await load_agent(model_path=model, endpoints=AvailableEndpoints.read_endpoints(str(endpoints)))
    for n, (sender, text) in enumerate(tqdm(messages, desc="in process", unit="msg")):
        if n >= 10:  # warm-up
            PROFILE.start_message()
        await agent.handle_message(UserMessage(text, CollectingOutputChannel(), f"inproc-{sender}"))
    return PROFILE.table()


def server_side(timings_file: Path, skip: int) -> list[dict[str, Any]]:
    """The action server's own time per call, from benchmarks/action_timing.py's lines."""
    lines = [json.loads(line) for line in timings_file.read_text(encoding="utf-8").splitlines()]
    by_action: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for line in lines[skip:]:
        by_action[line["action"]].append((line["action_s"], line["server_s"]))
    return [
        {
            "action": action,
            "calls": len(calls),
            "action_p50_ms": 1000 * statistics.median(a for a, _ in calls),
            "server_overhead_p50_ms": 1000 * statistics.median(s - a for a, s in calls),
        }
        for action, calls in sorted(by_action.items())
    ]


class TimedStack(Stack):
    """The stack with its action server timed from the inside."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(workdir, env)
        self.timings = workdir / "action-timings.jsonl"

    def commands(self) -> dict[str, list[str]]:
        commands = super().commands()
        commands["actions"] = [
            sys.executable, "-m", "benchmarks.action_timing",
            "--port", str(self.actions_port), "--out", str(self.timings),
        ]  # fmt: skip
        return commands


def report(results: dict[str, Any]) -> str:
    gateway, rasa = results["http"]["gateway_p50_ms"], results["http"]["rasa_rest_p50_ms"]
    lines = [
        "Profile of one message (ms per message; benchmarks/profile.py)",
        f"  gateway REST p50 {gateway:.1f} ms, Rasa REST p50 {rasa:.1f} ms:"
        f" the gateway's own {gateway - rasa:.1f} ms",
        f"  {'part':<88} {'mean':>7} {'p50':>7} {'calls':>6}",
    ]
    for row in sorted(results["parts"], key=lambda r: -r["mean_ms"]):
        mean, p50, calls = row["mean_ms"], row["p50_ms"], row["calls_per_message"]
        lines.append(f"  {row['part'][:88]:<88} {mean:7.1f} {p50:7.1f} {calls:6.2f}")
    lines.append("  inside the action server (p50 per call): the action / Sanic and JSON")
    for row in results["action_server"]:
        lines.append(
            f"    {row['action']:<40} {row['action_p50_ms']:7.1f} / {row['server_overhead_p50_ms']:5.1f} ms"
            f"  ({row['calls']} calls)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=120)
    parser.add_argument(
        "--scripts", action="store_true",
        help="whole conversations from make bench-load's scripts instead of held-out messages",
    )  # fmt: skip
    args = parser.parse_args(argv)
    messages = (scripted if args.scripts else conversations)(args.messages)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as running:
        workdir = Path(tmp)
        stack = TimedStack(workdir, MACHINE_SPEED)
        running.callback(stack.stop_all)
        stack.start()
        stack.wait_healthy()
        http = asyncio.run(over_http(stack, messages))
        before = len(stack.timings.read_text(encoding="utf-8").splitlines()) if stack.timings.exists() else 0
        parts = asyncio.run(in_process(stack, messages, workdir))
        # The HTTP part's calls are left out: the action server's lines from the in-process part.
        results = {"http": http, "parts": parts, "action_server": server_side(stack.timings, before)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "profile.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(report(results))
    return results


if __name__ == "__main__":
    main()
