"""Conversation frustration and priority, on trackers as Rasa sends them to the action server."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from rasa_sdk import Tracker

from actions.assessment import assess
from actions.escalation import impact, priority, problem_kind
from actions.shop.base import Order, OrderItem

T0 = 1_800_000_000.0


def user(
    text: str, intent: str, score: float, at: float, cues: list[str] | None = None, **extra: Any
) -> dict:
    parse = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": extra.get("entities", []),
        "frustration": {"score": score, "threshold": 0.5, "cues": cues or []},
    }
    return {"event": "user", "text": text, "parse_data": parse, "timestamp": at}


def tracker(events: list[dict], slots: dict | None = None) -> Tracker:
    latest = events[-1]["parse_data"]
    return Tracker("c1", slots or {}, latest, events, False, None, {}, "action_listen")


def test_one_mildly_annoyed_message_does_not_escalate_but_a_second_does() -> None:
    first = [user("still waiting on my refund", "refund_status", 0.4, T0)]
    result = assess(tracker(first), now=T0)
    assert result.reason is None and result.score == pytest.approx(0.4)
    second = [*first, user("hello?? anyone??", "nlu_fallback", 0.45, T0 + 30)]
    result = assess(tracker(second, {"frustration": 0.4}), now=T0 + 30)
    assert result.reason == "frustration"  # 1 - (1 - 0.2) * (1 - 0.45) = 0.56


def test_asking_the_same_thing_again_and_a_long_session_add_up() -> None:
    events = [
        user("where is order 100234", "order_status", 0.1, T0),
        user("where is my order 100234", "order_status", 0.1, T0 + 25 * 60),
    ]
    result = assess(tracker(events, {"frustration": 0.1}), now=T0 + 25 * 60)
    assert {"asked again", "long conversation"} <= set(result.cues)
    assert result.score == pytest.approx(1 - 0.95 * 0.9 + 0.25, abs=0.01)


def test_two_messages_not_understood_in_a_row_escalate() -> None:
    events = [user("blorp", "nlu_fallback", 0.1, T0), user("zzzq", "nlu_fallback", 0.1, T0 + 5)]
    assert assess(tracker(events), now=T0 + 5).reason == "repeated_fallback"


def bot(at: float) -> dict:
    return {"event": "bot", "text": "Sorry, I didn't quite understand.", "timestamp": at}


def test_gibberish_sent_faster_than_anyone_reads_the_answer_is_not_a_second_try() -> None:
    flood = [
        user("blorp", "nlu_fallback", 0.1, T0),
        bot(T0 + 0.3),
        user("zzzq", "nlu_fallback", 0.1, T0 + 0.35),
    ]
    flood += [bot(T0 + 0.6), user("qqq", "nlu_fallback", 0.1, T0 + 0.62)]
    assert assess(tracker(flood), now=T0 + 1).reason is None
    # The same customer reads the answer and tries again: that is a second failure.
    read = [*flood, bot(T0 + 0.9), user("zzzq plonk", "nlu_fallback", 0.1, T0 + 4)]
    assert assess(tracker(read), now=T0 + 4).reason == "repeated_fallback"


def test_gibberish_taken_after_the_gateway_refused_some_is_not_a_second_try() -> None:
    # A flood past the limits: what gets through comes at the bucket's pace, seconds apart.
    events = [user("blorp", "nlu_fallback", 0.1, T0), bot(T0 + 0.3)]
    through = user("ping 26", "nlu_fallback", 0.1, T0 + 2.6)
    through["metadata"] = {"refused_before": 14}
    assert assess(tracker([*events, through]), now=T0 + 3).reason is None
    assert assess(tracker([*events, user("ping", "nlu_fallback", 0.1, T0 + 2.6)]), now=T0 + 3).reason


def order(total: str, vip: bool = False) -> Order:
    import datetime as dt

    item = OrderItem("stand mixer", "kitchen", Decimal(total))
    placed = dt.datetime(2026, 11, 1)
    return Order("100239", "li.wei@example.org", "delivered", placed, (item,), "standard", customer_vip=vip)


def test_priority_is_urgency_times_impact_and_marks_vip() -> None:
    calm = tracker([user("the mixer is broken", "report_problem", 0.1, T0)], {"frustration": 0.1})
    furious = tracker(
        [user("FIX IT TODAY", "report_problem", 0.9, T0, ["urgency"])],
        {"frustration": 0.9, "frustration_cues": ["urgency"]},
    )
    assert priority(calm, None, None)["priority"] == "P4"
    assert priority(furious, order("400.00", vip=True), "missing") == {
        "priority": "P1", "urgency": 0.93, "impact": 0.9, "vip": True,
    }  # fmt: skip
    assert priority(furious, None, None)["priority"] == "P2"  # furious, nothing at stake yet


def test_safety_problems_have_high_impact() -> None:
    report = tracker([user("my kettle sparked and started to smoke", "report_problem", 0.3, T0)])
    assert problem_kind(report) == "safety"
    assert impact(None, "safety") >= 0.5
    assert impact(order("20.00"), "damaged") < 0.5


def test_a_handoff_starts_the_count_again() -> None:
    events = [
        user("blorp", "nlu_fallback", 0.1, T0),
        user("zzzq", "nlu_fallback", 0.1, T0 + 5),
        {"event": "action", "name": "action_escalate"},
        {"event": "slot", "name": "handed_over", "value": True},  # what every handoff sets
        user("qqq", "nlu_fallback", 0.1, T0 + 10),
    ]
    assert assess(tracker(events), now=T0 + 10).reason is None


@pytest.mark.parametrize(
    ("first", "second", "again"),
    [
        ("where is my order 100234", "where is my order 100234??", True),
        ("do you ship to canada?", "what does shipping cost?", False),  # a new question
        ("do you ship to canada?", '/ask_faq{"article": "international-shipping"}', False),  # a button
    ],
)
def test_asked_again_means_the_same_request_in_about_the_same_words(
    first: str, second: str, again: bool
) -> None:
    intent = "order_status" if "order" in first else "ask_faq"
    events = [user(first, intent, 0.1, T0), user(second, intent, 0.1, T0 + 5)]
    assert ("asked again" in assess(tracker(events), now=T0 + 5).cues) is again


async def test_an_escalation_waits_until_it_happens_and_is_not_announced_twice() -> None:
    from rasa_sdk.executor import CollectingDispatcher

    from actions.assessment import ActionAssessFrustration

    calm = [user("ok", "affirm", 0.05, T0)]
    pending = {"frustration": 0.0, "escalate": True, "escalation_reason": "frustration"}
    events = await ActionAssessFrustration().run(CollectingDispatcher(), tracker(calm, pending), {})
    slots = {e["name"]: e["value"] for e in events}
    assert slots["escalate"] is True and slots["escalation_reason"] == "frustration"

    angry = [user("THIS IS USELESS", "out_of_scope", 0.9, T0)]
    handed_over = tracker(angry, {"handed_over": True})
    events = await ActionAssessFrustration().run(CollectingDispatcher(), handed_over, {})
    assert "escalate" not in {e["name"] for e in events}


async def test_asking_for_a_person_settles_a_pending_escalation_too() -> None:
    from rasa_sdk.executor import CollectingDispatcher

    from actions.escalation import ActionRequestHuman

    asked = tracker([user("a person please", "request_human", 0.2, T0)], {"escalate": True})
    dispatcher = CollectingDispatcher()
    events = await ActionRequestHuman().run(dispatcher, asked, {})
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["handed_over"] is True and slots["escalate"] is False  # not announced again later
    [handoff] = [m["custom"]["helpdesk"]["handoff"] for m in dispatcher.messages if m.get("custom")]
    assert handoff["reason"] == "customer_request" and handoff["priority"] == "P3"
