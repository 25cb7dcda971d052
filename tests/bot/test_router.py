from __future__ import annotations

from bot.router import split_helpdesk_events


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
