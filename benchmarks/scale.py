"""make bench-scale: make bench-load's customers against the single-machine default (make run:
one gateway, two Rasa servers, one action server, SQLite) and against scale mode (make
run-scaled: two gateways, two Rasa servers, two action servers behind nginx, on PostgreSQL
and Redis, under supervisord) in the same run; then scale mode with a process killed in the
middle of a level, and what was lost.

Both run on this machine's two cores, so scale mode here measures what its extra hops cost
(nginx, PostgreSQL, Redis, the Socket.IO manager), not what more machines would add: the
sizing page (docs/sizing.md) turns the figures into a deployment.

Each level: customers, messages per second, p50/p95 of the round trip, errors (as make
bench-load counts them). Each customer connects from an address of its own (127.0.0.x),
as customers do, so nginx spreads them over both gateways.

The faults: at the first level, customers chat (tests/support/chatter.py) while rasa-1, then
actions-1, then gateway-1 is killed with SIGKILL a third of the way in; for each, the
messages sent, the apologies, the messages lost (sent but not in the transcript), the
lines delivered twice, the turns that never ended, and how long supervisord took to have
the process serving again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.cli import RESULTS
from benchmarks.load import ONE_SECOND_MS, _print_level, _warm_up, measured_level
from tests.support.chatter import APOLOGY, chat_while, losses
from tests.support.scaled import ScaledStack
from tests.support.stack import MAKE_RUN_RASA_SERVERS, Stack

FAULTS = ("rasa-1", "actions-1", "gateway-1")


def _levels(
    label: str, url: str, pids: dict[str, int], levels: list[int], seconds: float
) -> list[dict[str, Any]]:
    results = []
    for customers in levels:
        level = asyncio.run(measured_level(url, True, pids, customers, seconds, spread=True))
        _print_level(label, level)
        results.append(level)
    return results


def measure_default(levels: list[int], seconds: float) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as workdir:
        stack = Stack(Path(workdir), rasa_servers=MAKE_RUN_RASA_SERVERS)
        try:
            stack.start()
            stack.wait_healthy()
            _warm_up(stack.gateway_url, True)
            print("Single machine (make run: 1 gateway, 2 Rasa, 1 action server, SQLite):", flush=True)
            return _levels("default", stack.gateway_url, stack.pids(), levels, seconds)
        finally:
            stack.stop_all()


def measure_scaled(
    levels: list[int], seconds: float, fault_customers: int, fault_seconds: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        stack = ScaledStack(Path(workdir))
        try:
            stack.start()
            stack.wait_healthy()
            _warm_up(stack.public_url, True)
            print(
                "Scale mode (make run-scaled: 2 gateways, 2 Rasa, 2 action servers behind nginx):",
                flush=True,
            )
            pids = {program: stack.pid(program) for program in stack.programs()}
            results: dict[str, Any] = {"levels": _levels("scaled", stack.public_url, pids, levels, seconds)}
            results["faults"] = [_fault(stack, program, fault_customers, fault_seconds) for program in FAULTS]
            return results
        finally:
            stack.stop_all()


def _fault(stack: ScaledStack, program: str, customers: int, seconds: float) -> dict[str, Any]:
    killed: dict[str, float] = {}

    def kill() -> None:
        killed["pid"] = stack.kill(program)
        killed["at"] = time.monotonic()

    # At a human pace (2-4 s between a reply and the next message, as bench-load).
    chats = chat_while(stack.public_url, customers, seconds, kill, pause=3.0)
    stack.wait_restarted(program, int(killed["pid"]))
    back_seconds = time.monotonic() - killed["at"]
    result = {
        "killed": program,
        "customers": customers,
        "messages": sum(len(chat.sent) for chat in chats),
        "apologies": sum(chat.received.count(APOLOGY) for chat in chats),
        "refused": sum(len(chat.refused) for chat in chats),
        "reconnected": sum(1 for chat in chats if chat.reconnects),
        "serving_again_seconds": back_seconds,
        **losses(stack.query, chats),
    }
    print(
        f"  killed {program}: {result['messages']} messages, {result['apologies']} apologies, "
        f"lost {result['lost']}, twice {result['twice']}, unanswered {result['unanswered']}, "
        f"{result['reconnected']} reconnected, serving again after {back_seconds:.0f} s",
        flush=True,
    )
    return result


def held(levels: list[dict[str, Any]]) -> int:
    good = [lvl["customers"] for lvl in levels if lvl["p95_ms"] < ONE_SECOND_MS and not lvl["errors"]]
    return max(good) if good else 0


def report(results: dict[str, Any]) -> str:
    lines = [f"Web customers at a human pace over Socket.IO, {results['seconds_per_level']:.0f} s a level:"]
    lines.append(f"  {'customers':>9}   {'default':^30}   {'scale mode':^30}")
    columns = f"{'msg/s':>6} {'p50':>6} {'p95':>6} {'errors':>6}"
    lines.append(f"  {'':>9}   {columns}   {columns}")
    for default, scaled in zip(results["default"], results["scaled"]["levels"], strict=True):
        row = f"  {default['customers']:9d}"
        for level in (default, scaled):
            errors = sum(level["errors"].values())
            row += f"   {level['messages_per_second']:6.1f} {level['p50_ms']:4.0f}ms {level['p95_ms']:4.0f}ms"
            row += f" {errors:6d}"
        lines.append(row)
    lines.append(
        f"  held with p95 under one second and no errors: default {held(results['default'])}, "
        f"scale mode {held(results['scaled']['levels'])} (of the levels run)"
    )
    lines.append("CPU ms per message by process, scale mode:")
    for level in results["scaled"]["levels"]:
        cpu = ", ".join(f"{p} {ms:.1f}" for p, ms in level["cpu_ms_per_message"].items())
        lines.append(f"  {level['customers']:4d}: {cpu}")
    lines.append("Scale mode with a process killed a third into the run (SIGKILL; supervisord restarts it):")
    for fault in results["scaled"]["faults"]:
        lines.append(
            f"  {fault['killed']:>10}: {fault['customers']} customers, {fault['messages']} messages, "
            f"{fault['apologies']} apologies, {fault['reconnected']} reconnected; lost {fault['lost']}, "
            f"delivered twice {fault['twice']}, never answered {fault['unanswered']}; "
            f"serving again after {fault['serving_again_seconds']:.0f} s"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="50,100", help="customers at once, comma-separated")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long each level chats")
    parser.add_argument(
        "--fault-customers", type=int, default=25, help="customers chatting through each fault"
    )
    parser.add_argument("--fault-seconds", type=float, default=45.0, help="how long each fault run chats")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.levels.split(",")]
    results: dict[str, Any] = {"seconds_per_level": args.seconds}
    results["default"] = measure_default(levels, args.seconds)
    results["scaled"] = measure_scaled(levels, args.seconds, args.fault_customers, args.fault_seconds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(report(results))


if __name__ == "__main__":
    sys.exit(main())
