from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpdesk_payload import HANDOFF, helpdesk_event, split_helpdesk_events

ROOT = Path(__file__).resolve().parent.parent


def test_helpdesk_payloads_never_reach_the_customer() -> None:
    replies = [
        {"recipient_id": "c", "text": "Sorry, I didn't quite understand that."},
        {"recipient_id": "c", "custom": {"helpdesk": {"unresolved": {"reason": "nlu_fallback"}}}},
        {"recipient_id": "c", "custom": {"card": "shown to the customer"}},
    ]
    visible, events = split_helpdesk_events(replies)
    assert [r.get("text") or r.get("custom") for r in visible] == [
        "Sorry, I didn't quite understand that.",
        {"card": "shown to the customer"},
    ]
    assert events == [{"unresolved": {"reason": "nlu_fallback"}}]


def test_what_an_action_sends_is_what_the_gateway_reads() -> None:
    from rasa_sdk.executor import CollectingDispatcher

    from actions.helpdesk import send_to_helpdesk

    dispatcher = CollectingDispatcher()
    send_to_helpdesk(dispatcher, HANDOFF, reason="customer_request", priority="P2")
    # Rasa's REST channel sends a json_message as the reply's "custom".
    replies = [{"recipient_id": "c", "custom": message["custom"]} for message in dispatcher.messages]
    assert split_helpdesk_events(replies) == (
        [],
        [helpdesk_event(HANDOFF, reason="customer_request", priority="P2")],
    )


def test_the_shared_module_loads_nothing_of_either_side() -> None:
    code = "import sys, helpdesk_payload; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    for package in ("aiohttp", "sqlalchemy", "rasa_sdk", "bot", "handoff", "actions"):
        assert f"'{package}'" not in loaded
