"""The return form's validation action, run the way Rasa runs it: a tracker in, slot events
and messages out. The demo shop is a real SQLite database seeded from seeds/demo_shop.yml;
the policy is the real knowledge_base/return_policy.yml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import backend, knowledge, settings
from actions.returns.form import ValidateReturnForm
from actions.returns.policy import load_return_policy
from actions.settings import ROOT

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
POLICY = load_return_policy(ROOT / "knowledge_base" / "return_policy.yml")
JANE = "jane.doe@example.com"


@pytest.fixture(autouse=True)
def demo_shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SHOP_DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    settings.get_settings.cache_clear()
    backend.get_shop.cache_clear()

    async def policy() -> Any:
        return POLICY

    monkeypatch.setattr(knowledge, "current_policy", policy)
    yield
    settings.get_settings.cache_clear()
    backend.get_shop.cache_clear()


def tracker(
    text: str,
    intent: str,
    slots: dict[str, Any],
    entities: list[dict[str, Any]] | None = None,
    set_now: dict[str, Any] | None = None,
) -> Tracker:
    """The return form's tracker after a customer message; `set_now` are the slots Rasa's
    own extraction set from that message (validated by the action, like the form's)."""
    message = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": entities or []}
    events = [{"event": "user", "text": text, "parse_data": message}]
    events += [{"event": "slot", "name": name, "value": value} for name, value in (set_now or {}).items()]
    all_slots = {name: None for name in DOMAIN["slots"]} | {"verified_email": JANE} | slots | (set_now or {})
    return Tracker("test", all_slots, message, events, False, None, {"name": "return_form"}, "action_listen")


async def run(t: Tracker) -> tuple[dict[str, Any], list[str]]:
    dispatcher = CollectingDispatcher()
    events = await ValidateReturnForm().run(dispatcher, t, DOMAIN)
    slots = {event["name"]: event["value"] for event in events if event.get("event") == "slot"}
    return slots, [message.get("response") or message.get("text") for message in dispatcher.messages]


IN_PROGRESS = {
    "order_id": "100235",
    "customer_email": JANE,
    "return_flow": "return",
    "return_order": "100235",
    "requested_slot": "return_items",
}


async def test_an_item_answer_that_fits_two_items_is_asked_again() -> None:
    slots, said = await run(tracker("the wool one", "inform", IN_PROGRESS))
    assert slots["return_items"] is None
    assert "utter_return_item_unknown" in said


async def test_a_policy_question_naming_an_item_fills_nothing() -> None:
    asked = {**IN_PROGRESS, "return_items": ["merino wool sweater"], "requested_slot": "return_reason"}
    entities = [{"entity": "product", "value": "socks"}, {"entity": "return_reason", "value": "don't fit"}]
    slots, said = await run(
        tracker("do I pay for the label if the socks don't fit?", "ask_faq", asked, entities)
    )
    # Nothing at all: Rasa then rejects the form for this message, and the policy question's
    # own rule answers it before the form asks again.
    assert slots == {} and said == []


async def test_another_order_s_status_question_does_not_switch_the_return() -> None:
    asked = {**IN_PROGRESS, "return_items": ["merino wool sweater"], "requested_slot": "return_reason"}
    t = tracker("where is my order 100234?", "order_status", asked, set_now={"order_id": "100234"})
    slots, said = await run(t)
    assert slots["order_id"] == "100235"
    assert "utter_return_finish_first" in said
    assert slots.get("return_blocked") is None


async def test_a_reason_before_any_item_matched_asks_for_the_item() -> None:
    problem = {
        **IN_PROGRESS,
        "return_flow": "problem",
        "return_items": ["kettle"],
        "requested_slot": "return_reason",
    }
    t = tracker(
        '/inform{"return_reason": "damaged"}',
        "inform",
        problem,
        [{"entity": "return_reason", "value": "damaged"}],
    )
    slots, _ = await run(t)
    assert slots["return_reason"] == "damaged"
    assert slots["return_items"] is None  # no crash, and the item is asked for


async def test_damage_named_in_a_return_follows_the_report_rules() -> None:
    asked = {**IN_PROGRESS, "return_items": ["merino wool sweater"], "requested_slot": "return_reason"}
    t = tracker(
        "it arrived damaged", "inform", asked, [{"entity": "return_reason", "value": "arrived damaged"}]
    )
    slots, _ = await run(t)
    assert slots["return_flow"] == "problem"
    assert slots["return_blocked"] == "problem_window"  # delivered 5 days ago: past 48 hours


async def test_a_reason_is_read_from_the_words_when_the_entity_model_marked_too_little() -> None:
    opening = {"return_flow": "problem", "order_id": "100235", "customer_email": JANE}
    entities = [{"entity": "return_reason", "value": "arrived"}]  # what DIET marked, seen live
    t = tracker("the sweater from order 100235 arrived smashed", "report_problem", opening, entities)
    slots, _ = await run(t)
    assert slots["return_reason"] == "damaged"
