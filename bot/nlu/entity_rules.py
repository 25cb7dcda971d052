"""Rule-based extraction of order numbers, RMA numbers and emails with spaCy's Matcher.

Identifiers have exact shapes, so rules find them in any sentence, including shapes a
statistical extractor never saw in training. The component runs after DIET and replaces
whatever DIET guessed for these entity types, so each identifier is reported once, with a
normalised value ("#100234" -> "100234", "rma-20431" -> "RMA-20431").
"""

from __future__ import annotations

from typing import Any

import spacy
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from spacy.matcher import Matcher

ORDER_ID = "order_id"
RMA_ID = "rma_id"
EMAIL = "email"
RULE_ENTITIES = (ORDER_ID, RMA_ID, EMAIL)


def build_matcher(nlp: spacy.language.Language, min_digits: int, max_digits: int) -> Matcher:
    digits = rf"\d{{{min_digits},{max_digits}}}"
    matcher = Matcher(nlp.vocab)
    matcher.add(
        ORDER_ID,
        [
            [{"TEXT": {"REGEX": rf"(?i)^(?:order)?#?{digits}$"}}],
            [{"ORTH": "#"}, {"TEXT": {"REGEX": rf"^{digits}$"}}],
        ],
    )
    matcher.add(
        RMA_ID,
        [
            [{"TEXT": {"REGEX": r"(?i)^rma-?\d+$"}}],
            [{"LOWER": "rma"}, {"ORTH": "-", "OP": "?"}, {"TEXT": {"REGEX": r"^\d+$"}}],
        ],
    )
    matcher.add(EMAIL, [[{"LIKE_EMAIL": True}]])
    return matcher


def normalise(label: str, surface: str) -> str:
    if label == ORDER_ID:
        return "".join(ch for ch in surface if ch.isdigit())
    if label == RMA_ID:
        return "RMA-" + "".join(ch for ch in surface if ch.isdigit())
    return surface.lower()


def find_identifiers(nlp: spacy.language.Language, matcher: Matcher, text: str) -> list[dict[str, Any]]:
    """Returns Rasa-style entity dicts for every identifier in `text`, longest match first."""
    doc = nlp.make_doc(text)
    matches = matcher(doc)
    labels = {(start, end): nlp.vocab.strings[key] for key, start, end in matches}
    spans = spacy.util.filter_spans([doc[start:end] for _, start, end in matches])
    entities = []
    for span in spans:
        label = labels[(span.start, span.end)]
        entities.append(
            {
                "entity": label,
                "start": span.start_char,
                "end": span.end_char,
                "value": normalise(label, span.text),
                "confidence_entity": 1.0,
            }
        )
    return entities


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class EntityRules(GraphComponent, EntityExtractorMixin):
    """Finds identifiers by rule and drops other extractors' guesses for those types."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"order_id_min_digits": 5, "order_id_max_digits": 8}

    def __init__(self, config: dict[str, Any]) -> None:
        self._nlp = spacy.blank("en")
        self._matcher = build_matcher(self._nlp, config["order_id_min_digits"], config["order_id_max_digits"])

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EntityRules:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            kept = [
                entity for entity in message.get(ENTITIES, []) if entity.get("entity") not in RULE_ENTITIES
            ]
            found = self.add_extractor_name(find_identifiers(self._nlp, self._matcher, text))
            message.set(
                ENTITIES,
                sorted(kept + found, key=lambda entity: entity["start"]),
                add_to_output=True,
            )
        return messages
