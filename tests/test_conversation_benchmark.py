"""The whole-conversation benchmark's scripts and checks (benchmarks/conversations.py)."""

from __future__ import annotations

from pathlib import Path

from actions.kb import load_articles
from benchmarks.conversations import Checker, Turn, load_scripts, owners_from_seed

ROOT = Path(__file__).resolve().parent.parent
GOALS = {
    "order_status",
    "return_opened",
    "return_refused",
    "return_status",
    "policy_answered",
    "cancellation",
    "handover",
    "declined",
}


def checker() -> Checker:
    articles = {
        article.id: article.body.lower() for article in load_articles(ROOT / "knowledge_base" / "articles")
    }
    return Checker(articles, owners_from_seed())


def test_the_scripts_are_well_formed() -> None:
    scripts = load_scripts()
    assert len(scripts) >= 150
    articles = {article.id for article in load_articles(ROOT / "knowledge_base" / "articles")}
    for script in scripts:
        assert script["goal"] in GOALS, script["id"]
        for turn in script["turns"]:
            expected = turn.get("expect") or {}
            assert set(expected) <= {
                "says",
                "says_any",
                "not_says",
                "article",
                "rma",
                "handoff",
                "priority",
                "declined",
            }
            assert expected.get("article", next(iter(articles))) in articles, script["id"]


def turn(index: int, sent: str, bot: str) -> Turn:
    return Turn(index, sent, [{"text": bot}], [], 0)


def test_asking_again_for_a_told_order_or_a_proven_email_is_a_forgotten_fact() -> None:
    check = checker()
    told = [
        turn(1, "where is 100234?", "please tell me the email"),
        turn(2, "jane.doe@example.com", "shipped"),
    ]
    asked_order = [*told, turn(3, "and where is it now?", "What's your order number? It has six digits")]
    assert check.forgotten(asked_order, set()) == ["order number 100234"]
    assert check.forgotten(asked_order, {"order_id"}) == []
    # Another of Jane's orders needs no second email; Sam's order does.
    asked_email = [
        *told,
        turn(3, "and 100235?", "please tell me the email address you used for order 100235."),
    ]
    assert check.forgotten(asked_email, set()) == ["email for order 100235"]
    sams = [*told, turn(3, "and 100237?", "please tell me the email address you used for order 100237.")]
    assert check.forgotten(sams, set()) == []


def test_a_turn_fails_when_its_facts_are_missing() -> None:
    check = checker()
    answered = turn(1, "q", "Order 100234 shipped with UPS, tracking number 1Z999AA10123456784.")
    assert check.check({"says": ["1Z999AA10123456784"]}, answered, None) == []
    assert check.check({"says": ["RMA-"]}, answered, None) == ["did not say 'RMA-'"]
    assert check.check({"rma": True}, answered, None) == ["no RMA number"]
    assert check.check({"article": "return-window"}, answered, None) == [
        "did not answer with the article return-window"
    ]
