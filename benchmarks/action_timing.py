"""The action server as `rasa run actions` runs it, timing each call from the inside, for
`make profile` (benchmarks/profile.py).

    python -m benchmarks.action_timing --port 5055 --out timings.jsonl

For every webhook call it appends one line to `--out`: the action, the seconds in the action
itself (`ActionExecutor.run`) and the seconds the server spent on the request in all (Sanic,
reading the JSON tracker, writing the JSON answer). Nothing else changes, so the profile
measures the server a shop runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rasa_sdk import endpoint
from rasa_sdk.executor import ActionExecutor


def timed_executor(out: Path) -> None:
    """Wraps ActionExecutor.run so each call records its time in the request's context."""
    run = ActionExecutor.run

    async def timed(self: ActionExecutor, action_call: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return await run(self, action_call)
        finally:
            timed.last = (action_call.get("next_action"), time.perf_counter() - started)  # type: ignore[attr-defined]

    ActionExecutor.run = timed  # type: ignore[method-assign]
    timed.last = (None, 0.0)  # type: ignore[attr-defined]

    def on_request(request: Any) -> None:
        request.ctx.started = time.perf_counter()

    def on_response(request: Any, response: Any) -> None:
        if request.path != "/webhook":
            return
        action, seconds = timed.last  # type: ignore[attr-defined]
        line = {"action": action, "action_s": seconds, "server_s": time.perf_counter() - request.ctx.started}
        with out.open("a", encoding="utf-8") as file:
            file.write(json.dumps(line) + "\n")

    create_app = endpoint.create_app

    def create_timed_app(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)
        app.register_middleware(on_request, "request")
        app.register_middleware(on_response, "response")
        return app

    endpoint.create_app = create_timed_app  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    timed_executor(args.out)
    endpoint.run("actions", port=args.port)


if __name__ == "__main__":
    main()
