"""The language identifier (bot/nlu/language.py): other languages told apart from English,
and no English the assistant was trained on mistaken for another language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.language import LanguageIdentifier, identify

ROOT = Path(__file__).resolve().parents[2]
CONFIG = LanguageIdentifier.get_default_config()
ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Hallo, wo ist meine Bestellung 100234?", "de"),
        ("Wann bekomme ich mein Geld zurück?", "de"),
        ("Hola, quiero devolver un jersey", "es"),
        ("Mi pedido no ha llegado todavía", "es"),
        ("Bonjour, quand vais-je recevoir mon remboursement ?", "fr"),
        ("我的订单100234到哪了？", "zh"),
    ],
)
def test_other_languages_are_identified(text: str, code: str) -> None:
    assert identify(text, CONFIG)[0] == code


@pytest.mark.parametrize(
    "text",
    [
        "hi",
        "ok",
        "jane.doe@example.com",
        "100234",
        "RMA-20431",
        "do u ship to canada",
        "wat paymnt methds do u take",
    ],
)
def test_short_messages_and_chat_english_stay_english(text: str) -> None:
    assert identify(text, CONFIG)[0] == "en"


def english_examples() -> list[str]:
    texts = []
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            for line in (block.get("examples") or "").splitlines():
                text = ANNOTATION.sub(r"\1", line.strip().removeprefix("- ").strip())
                if text:
                    texts.append(text)
    return texts


def test_no_english_training_example_is_taken_for_another_language() -> None:
    examples = english_examples()
    assert len(examples) > 1000
    mistaken = [(text, identify(text, CONFIG)) for text in examples if identify(text, CONFIG)[0] != "en"]
    assert mistaken == []


def test_a_message_in_another_language_is_marked_and_scores_no_frustration() -> None:
    message = Message({TEXT: "Ich bin sehr enttäuscht, mein Paket ist immer noch nicht da"})
    message.set(INTENT, {"name": "report_problem", "confidence": 0.6})
    message.set(INTENT_RANKING_KEY, [{"name": "report_problem", "confidence": 0.6}])
    message.set("frustration", {"score": 0.9, "threshold": 0.5, "cues": ["negative"]})
    [marked] = LanguageIdentifier({}).process([message])
    assert marked.get(INTENT)["name"] == "other_language"
    assert [item["name"] for item in marked.get(INTENT_RANKING_KEY)] == ["other_language", "report_problem"]
    assert marked.get("frustration")["score"] == 0.0 and marked.get("language")["code"] == "de"


def test_an_english_message_keeps_its_intent() -> None:
    message = Message({TEXT: "where is my order 100234?"})
    message.set(INTENT, {"name": "order_status", "confidence": 0.9})
    [kept] = LanguageIdentifier({}).process([message])
    assert kept.get(INTENT)["name"] == "order_status" and kept.get("language")["code"] == "en"
