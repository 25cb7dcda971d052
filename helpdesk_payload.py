"""The custom payload the assistant's actions send the gateway for the helpdesk.

Actions cannot write to the helpdesk database (the action server is stateless and talks
only to the shop), so they put what the helpdesk must act on into a reply's custom payload
under HELPDESK_KEY: `{"helpdesk": {"handoff": {...details}}}`. The gateway takes those
replies out of what the customer sees and hands the events to the helpdesk
(handoff/transcript.py), which opens the ticket or logs the message.

Both sides import this module, so it lives beside them, not in either: the action server
must load without the gateway's aiohttp and SQLAlchemy, and nothing imports the gateway
from actions (architecture.md). It imports nothing, and stays so.
"""

from __future__ import annotations

from typing import Any

HELPDESK_KEY = "helpdesk"

# The events, each with its details as keyword arguments of `helpdesk_event`.
HANDOFF = "handoff"  # opens a ticket: reason, priority, vip, cues, nlu, what the agent needs
UNRESOLVED = "unresolved"  # logs a message for the trainers: reason, nlu, ...
FEEDBACK = "feedback"  # whether a knowledge-base answer helped: article, helpful

# The handoff reason when the assistant cannot answer at all (Rasa or the action server
# down): the gateway sends the helpdesk the handoff the actions could not.
ASSISTANT_UNAVAILABLE = "assistant_unavailable"


def helpdesk_event(event: str, **details: Any) -> dict[str, Any]:
    """One event for the helpdesk, as it travels under HELPDESK_KEY."""
    return {event: details}


def split_helpdesk_events(
    replies: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Separates the actions' helpdesk payloads from what the customer should see."""
    visible, events = [], []
    for reply in replies:
        custom = reply.get("custom")
        if isinstance(custom, dict) and HELPDESK_KEY in custom:
            events.append(custom[HELPDESK_KEY])
        else:
            visible.append(reply)
    return visible, events
