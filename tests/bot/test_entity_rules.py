from __future__ import annotations

import pytest
import spacy

from bot.nlu.entity_rules import build_matcher, find_identifiers


@pytest.fixture(scope="module")
def extract():
    nlp = spacy.blank("en")
    matcher = build_matcher(nlp, 5, 8)

    def run(text: str) -> list[tuple[str, str]]:
        return [(e["entity"], e["value"]) for e in find_identifiers(nlp, matcher, text)]

    return run


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where is my order 100234?", [("order_id", "100234")]),
        ("Order #100237 please", [("order_id", "100237")]),
        ("my order100235 hasn't come", [("order_id", "100235")]),
        ("what's happening with RMA-20431?", [("rma_id", "RMA-20431")]),
        ("rma 88120 and rma-5", [("rma_id", "RMA-88120"), ("rma_id", "RMA-5")]),
        ("it's Jane.Doe@Example.com", [("email", "jane.doe@example.com")]),
        (
            "order 100234, email sam.patel@example.net",
            [("order_id", "100234"), ("email", "sam.patel@example.net")],
        ),
    ],
)
def test_identifiers_are_found_and_normalised(extract, text, expected) -> None:
    assert extract(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "it cost $149.00",
        "I bought it in 2024",
        "call me on 555-1234",
        "1234",
        "123456789012",
        "no numbers here",
    ],
)
def test_prices_years_and_phone_numbers_are_not_orders(extract, text) -> None:
    assert extract(text) == []


def test_entity_offsets_point_at_the_original_text() -> None:
    nlp = spacy.blank("en")
    text = "cancel #100237 now"
    [entity] = find_identifiers(nlp, build_matcher(nlp, 5, 8), text)
    assert text[entity["start"] : entity["end"]] == "#100237"
