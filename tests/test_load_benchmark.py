"""make bench-load's customers: the scripts they follow and the buttons they press."""

from __future__ import annotations

import yaml

from benchmarks import load


def test_customers_follow_the_conversations_the_bot_settles_itself() -> None:
    conversations = yaml.safe_load(load.SCRIPTS.read_text(encoding="utf-8"))["conversations"]
    settled = [c for c in conversations if c["goal"] in load.GOALS]
    scripts = load.scripts()
    assert len(scripts) == len(settled) > 100
    assert all(script and all("user" in turn or "press" in turn for turn in script) for script in scripts)
    assert "handover" not in load.GOALS and "cancellation" not in load.GOALS


def test_a_pressed_button_sends_its_payload_or_else_its_title() -> None:
    replies = [{"text": "Refund or exchange?", "quick_replies": [{"title": "Refund", "payload": "/inform"}]}]
    assert load._pressed("refund", replies) == "/inform"
    assert load._pressed("Exchange", replies) == "Exchange"
