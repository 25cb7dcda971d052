"""Which language a message is written in, with py3langid, offline.

The assistant understands English only, so a message identified as another language is
marked with the intent `other_language` (the model's own guess stays in the ranking) and
scores no frustration: the English models read an unknown language as noise, and a calm
German question once got an apology and a ticket. The dialogue answers it politely in
English and offers a person.

Chat English is short and loose ("do u ship to canada" reads as Spanish to a character
model), so a message counts as another language only when the identifier is sure, the
message has a few words, and few of them are English function words (spaCy's list).
Everything else, an email, an order number, "ok", keeps English.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

LANGUAGE = "language"
OTHER_LANGUAGE = "other_language"
FRUSTRATION = "frustration"
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Scripts written without spaces between words: one character says more than a word.
UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


@functools.lru_cache(maxsize=4)
def _identifier(languages: tuple[str, ...]) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier


@functools.lru_cache(maxsize=1)
def _english_function_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS) | {"u", "ur", "pls", "plz", "thx", "ok", "hi", "hey"}


def identify(text: str, config: dict[str, Any]) -> tuple[str, float]:
    """The message's language code and the identifier's confidence; the default language
    when the message is too short or too English-looking to tell."""
    default = config["default"]
    words = [word.lower() for word in WORD.findall(text)]
    unspaced = len(UNSPACED.findall(text))
    if len(words) < config["min_words"] and unspaced < config["min_words"]:
        return default, 0.0
    code, confidence = _identifier(tuple(config["languages"])).classify(text)
    if code == default:
        return default, float(confidence)
    if confidence < config["min_confidence"]:
        return default, 0.0
    if not unspaced:
        english = sum(word in _english_function_words() for word in words)
        if english / len(words) >= config["max_english_share"]:
            return default, 0.0
    return str(code), float(confidence)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class LanguageIdentifier(GraphComponent):
    """Sets `language` ({code, confidence}) on every message; one in another language gets
    the intent `other_language` and no frustration score. Runs last in the pipeline."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "default": "en",
            # The languages told apart: the shop's customers' likely ones. A shorter list
            # makes fewer mistakes on chat English than all 97 of py3langid's.
            "languages": [
                "en",
                "de",
                "es",
                "fr",
                "it",
                "pt",
                "nl",
                "pl",
                "sv",
                "da",
                "tr",
                "ru",
                "zh",
                "ja",
                "ko",
            ],
            "min_words": 3,
            "min_confidence": 0.99,
            "max_english_share": 0.25,
        }

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = {**self.get_default_config(), **config}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageIdentifier:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            if not text or text.startswith("/"):
                continue
            code, confidence = identify(text, self._config)
            message.set(LANGUAGE, {"code": code, "confidence": round(confidence, 3)}, add_to_output=True)
            if code != self._config["default"]:
                self._mark_other_language(message)
        return messages

    @staticmethod
    def _mark_other_language(message: Message) -> None:
        ranking = [
            item for item in message.get(INTENT_RANKING_KEY) or [] if item.get("name") != OTHER_LANGUAGE
        ]
        intent = {"name": OTHER_LANGUAGE, "confidence": 1.0}
        message.set(INTENT, intent, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [intent, *ranking], add_to_output=True)
        frustration = message.get(FRUSTRATION)
        if frustration:
            message.set(FRUSTRATION, {**frustration, "score": 0.0, "cues": []}, add_to_output=True)
