"""The command line every accuracy benchmark shares: run, save the figures, print, list misses."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def run_benchmark(
    name: str,
    description: str,
    run: Callable[[], dict[str, Any]],
    report: Callable[[dict[str, Any]], str],
    miss_line: Callable[[dict[str, Any]], str],
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """Runs `run`, writes benchmarks/results/<name>.json and prints `report`; with
    --show-misses, one `miss_line` for each entry of the results' "misses"."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--show-misses", action="store_true", help="list what it got wrong")
    args = parser.parse_args(argv)
    results = run()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(report(results))
    if args.show_misses:
        for miss in results["misses"]:
            print("  " + miss_line(miss))
    return results


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds, and how many."""
    from benchmarks.foundation import percentile

    return {f"p{q}_ms": 1000 * percentile(seconds, q) for q in (50, 95, 99)} | {"n": len(seconds)}


def run_on_stack(
    name: str,
    measure: Callable[[Any], Awaitable[dict[str, Any]]],
    report: Callable[[dict[str, Any]], str],
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Starts the whole stack on free ports in a scratch folder, runs `measure(stack)`, writes
    benchmarks/results/<name>.json and prints `report`."""
    import asyncio
    import contextlib
    import tempfile

    from tests.support.stack import Stack

    with tempfile.TemporaryDirectory() as workdir, contextlib.ExitStack() as running:
        stack = Stack(Path(workdir), env)
        running.callback(stack.stop_all)
        stack.start()
        stack.wait_healthy()
        results = asyncio.run(measure(stack))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(report(results))
    return results
