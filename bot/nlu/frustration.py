"""A frustration score from 0 to 1 for every customer message, with the cues that raised it.

Cues (`CueFinder`): VADER's sentiment (the lexicon that ships in the vaderSentiment
package), shouting (words in capitals that are not sizes, brands or identifiers), runs of
"!" and "?", and phrases found with spaCy's PhraseMatcher on a blank English pipeline:
insults and profanity, repetition ("third time", "still nothing"), threats to leave,
review or charge back, urgency, exasperation, and sarcasm (a cheerful phrase in a message
that is negative elsewhere). The phrases are data, in bot/nlu/frustration_cues.yml.

Score (`FrustrationModel`): a logistic regression over the message's sentence embedding
(the same MiniLM vector the intent classifier uses) and the cue features, trained on the
labelled messages of bot/nlu/data/frustration.yml and on the NLU examples of calm intents
(greetings, thanks, bare order numbers), which the labelled set lacks. Cues alone miss what makes most hard
cases: sarcasm in friendly words, a polite message that is fed up, a calm report of a
broken item. In 5-fold cross-validation on that file, cues alone reached F1 0.72, the
embedding alone 0.93, both 0.95 (cue features scaled by `cue_weight` 0.2, C 30).

`FrustrationDetector` is the Rasa component: it puts
`{"score": ..., "threshold": ..., "cues": [...]}` under "frustration" in the parse result.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import spacy
import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from spacy.matcher import PhraseMatcher

from bot.nlu.sentence_featurizer import DEFAULT_ALIAS, SentenceEmbeddingFeaturizer, sentence_embedding

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
CUES_FILE = Path(__file__).resolve().parent / "frustration_cues.yml"
TRAINING_FILE = "bot/nlu/data/frustration.yml"
MODEL_FILE = "frustration.npz"
FRUSTRATION = "frustration"
# The NLU examples of these intents are ordinary chat ("hi", "ok thanks", an order number):
# they teach the score what calm looks like, besides the labelled messages.
CALM_INTENTS = ("greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "inform")
CUE_KINDS = ("insult", "repetition", "threat", "urgency", "exasperation", "sarcasm")
CUE_FEATURES = ("negative", "positive", "shouting", "marks", *CUE_KINDS)
_WORD = re.compile(r"[A-Za-z]{2,}")
_MARKS = re.compile(r"[!?]{2,}")


class CueFinder:
    def __init__(self, cues_file: Path = CUES_FILE) -> None:
        cues = yaml.safe_load(cues_file.read_text(encoding="utf-8"))
        self._nlp = spacy.blank("en")
        self._matcher = PhraseMatcher(self._nlp.vocab, attr="LOWER")
        for kind in CUE_KINDS:
            self._matcher.add(kind, [self._nlp.make_doc(phrase) for phrase in cues.get(kind, [])])
        self._not_shouting = {word.lower() for word in cues.get("not_shouting", [])}

    @cached_property
    def _vader(self) -> Any:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        return SentimentIntensityAnalyzer()

    def negativity(self, text: str) -> float:
        """VADER's compound score, negated: what the VADER-only baseline thresholds."""
        return -float(self._vader.polarity_scores(text)["compound"])

    def features(self, text: str) -> dict[str, float]:
        sentiment = self._vader.polarity_scores(text)
        doc = self._nlp.make_doc(text)
        fired = {self._nlp.vocab.strings[match_id] for match_id, _, _ in self._matcher(doc)}
        features = {
            "negative": max(0.0, -sentiment["compound"]),
            "positive": max(0.0, sentiment["compound"]),
            "shouting": self._shouting(text),
            "marks": min(1.0, len(_MARKS.findall(text)) / 2),
        }
        for kind in CUE_KINDS:
            features[kind] = 1.0 if kind in fired else 0.0
        # A cheerful phrase is sarcasm only where the rest of the message is negative.
        others = any(features[kind] for kind in CUE_KINDS if kind != "sarcasm")
        if features["sarcasm"] and not (sentiment["neg"] > 0 or others):
            features["sarcasm"] = 0.0
        return features

    def _shouting(self, text: str) -> float:
        words = _WORD.findall(text)
        loud = [w for w in words if w.isupper() and len(w) >= 3 and w.lower() not in self._not_shouting]
        if len(loud) < 2:
            return 0.25 * len(loud)  # one word in capitals is usually a name or emphasis
        return min(1.0, len(loud) / max(2, len(words) // 2))

    @staticmethod
    def cues(features: dict[str, float]) -> list[str]:
        named = {"negative": "negative sentiment", "shouting": "capitals", "marks": "!!/??"}
        # A single word in capitals counts a little in the score but is not worth naming.
        floor = {"shouting": 0.5, "negative": 0.05}
        return [
            named.get(name, name)
            for name in CUE_FEATURES
            if name != "positive" and features[name] > floor.get(name, 0.0)
        ]


@dataclass(frozen=True)
class Frustration:
    score: float
    cues: list[str]


class FrustrationModel:
    def __init__(self, cue_finder: CueFinder, c: float = 30.0, cue_weight: float = 0.2) -> None:
        self.cue_finder = cue_finder
        self.c = c
        self.cue_weight = cue_weight
        self._coef = np.zeros(0, dtype=np.float32)
        self._intercept = 0.0

    def _rows(
        self, embeddings: np.ndarray, texts: Sequence[str]
    ) -> tuple[np.ndarray, list[dict[str, float]]]:
        features = [self.cue_finder.features(text) for text in texts]
        cues = np.array([[f[name] for name in CUE_FEATURES] for f in features], dtype=np.float32)
        return np.hstack([np.asarray(embeddings, dtype=np.float32), self.cue_weight * cues]), features

    def fit(self, embeddings: np.ndarray, texts: Sequence[str], labels: Sequence[bool]) -> FrustrationModel:
        from sklearn.linear_model import LogisticRegression

        rows, _ = self._rows(embeddings, texts)
        regression = LogisticRegression(C=self.c, max_iter=3000).fit(rows, np.asarray(labels, dtype=bool))
        self._coef, self._intercept = regression.coef_[0].astype(np.float32), float(regression.intercept_[0])
        return self

    def predict(self, embeddings: np.ndarray, texts: Sequence[str]) -> list[Frustration]:
        rows, features = self._rows(embeddings, texts)
        scores = 1 / (1 + np.exp(-(rows @ self._coef + self._intercept)))
        return [Frustration(float(s), CueFinder.cues(f)) for s, f in zip(scores, features, strict=True)]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, coef=self._coef, intercept=np.array([self._intercept]))
        return buffer.getvalue()

    def load_bytes(self, data: bytes) -> FrustrationModel:
        arrays = np.load(io.BytesIO(data), allow_pickle=False)
        self._coef, self._intercept = arrays["coef"], float(arrays["intercept"][0])
        return self


def load_labelled(path: Path) -> tuple[list[str], list[bool]]:
    messages = yaml.safe_load(path.read_text(encoding="utf-8"))["messages"]
    return [m["text"] for m in messages], [bool(m["frustrated"]) for m in messages]


def training_set(path: Path, nlu: TrainingData, calm_intents: Sequence[str]) -> tuple[list[str], list[bool]]:
    """The labelled messages, plus the NLU examples of the calm intents as not frustrated."""
    texts, labels = load_labelled(path)
    calm = [m.get(TEXT) for m in nlu.intent_examples if m.get("intent") in calm_intents and m.get(TEXT)]
    return texts + calm, labels + [False] * len(calm)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FrustrationDetector(GraphComponent):
    @classmethod
    def required_components(cls) -> list[type]:
        return [SentenceEmbeddingFeaturizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            # A message at or above this score counts as frustrated.
            "threshold": 0.5,
            "training_file": TRAINING_FILE,
            "C": 30.0,
            "cue_weight": 0.2,
            "calm_intents": list(CALM_INTENTS),
            "featurizer": DEFAULT_ALIAS,
        }

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        # Rasa caches trained components by config and NLU data; the labelled file and the
        # cue phrases are neither, so their contents must change the fingerprint.
        digest = hashlib.sha256()
        for path in (ROOT / config.get("training_file", TRAINING_FILE), CUES_FILE):
            digest.update(path.read_bytes() if path.exists() else b"")
        return digest.hexdigest()

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._model = FrustrationModel(CueFinder(), c=config["C"], cue_weight=config["cue_weight"])
        self._trained = False

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> FrustrationDetector:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        from embeddings.encoder import get_encoder

        texts, labels = training_set(
            ROOT / self._config["training_file"], training_data, self._config["calm_intents"]
        )
        self._model.fit(get_encoder().encode(texts), texts, labels)
        self._trained = True
        with self._model_storage.write_to(self._resource) as directory:
            (directory / MODEL_FILE).write_bytes(self._model.to_bytes())
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> FrustrationDetector:
        detector = cls(config, model_storage, resource)
        try:
            with model_storage.read_from(resource) as directory:
                detector._model.load_bytes((directory / MODEL_FILE).read_bytes())
                detector._trained = True
        except (ValueError, FileNotFoundError):
            logger.warning("FrustrationDetector: no trained model in %s; no scores", resource.name)
        return detector

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            embedding = sentence_embedding(message, [self._config["featurizer"]])
            if not self._trained or not text or embedding is None:
                continue
            [result] = self._model.predict(embedding.reshape(1, -1), [text])
            threshold = self._config["threshold"]
            summary = {"score": round(result.score, 3), "threshold": threshold, "cues": result.cues}
            message.set(FRUSTRATION, summary, add_to_output=True)
        return messages
