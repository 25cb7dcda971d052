"""Intent classification on sentence embeddings, as a Rasa component.

A thin adapter: the model itself is `embeddings.classifier.IntentModel`, plain scikit-learn
with unit tests of its own. This component feeds it the sentence features of
`SentenceEmbeddingFeaturizer`, persists it in Rasa's model storage, and sets
`intent` and `intent_ranking` with probabilities that Rasa's FallbackClassifier (placed
after it in config.yml) compares against its threshold.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import FEATURIZERS

from bot.nlu.sentence_featurizer import DEFAULT_ALIAS, SentenceEmbeddingFeaturizer, sentence_embedding
from embeddings.classifier import IntentModel

logger = logging.getLogger(__name__)

MODEL_FILE = "intent_model.bin"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class EmbeddingIntentClassifier(GraphComponent, IntentClassifier):
    @classmethod
    def required_components(cls) -> list[type]:
        return [SentenceEmbeddingFeaturizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            FEATURIZERS: [DEFAULT_ALIAS],
            # Regularisation of the regression and weight of the nearest-example term, chosen
            # by measurement on Banking77 and CLINC150 (docs/nlu.md, "The NLU pipeline").
            "C": 30.0,
            "neighbour_weight": 10.0,
            # A message whose closest training example is less similar than this loses most of
            # its confidence ("none of these"): gibberish and far-off topics fall back.
            "familiarity_floor": 0.5,
            # Multiplies the temperature fitted on out-of-fold predictions. Those folds cannot
            # hide their examples from an encoder fine-tuned on all of them, so with a tuned
            # featurizer the fitted temperature is too low (confidences too high): 1.5 gave the
            # least log loss on Banking77's validation split and on the project's held-out set.
            "temperature_scale": 1.0,
            "ranking_length": LABEL_RANKING_LENGTH,
            "random_seed": 7,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: IntentModel | None = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._model = model

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EmbeddingIntentClassifier:
        return cls(config, model_storage, resource)

    def _embedding(self, message: Message) -> np.ndarray | None:
        return sentence_embedding(message, self._config[FEATURIZERS])

    def train(self, training_data: TrainingData) -> Resource:
        examples = [
            (vector, m.get(INTENT))
            for m in training_data.intent_examples
            if (vector := self._embedding(m)) is not None
        ]
        if len({intent for _, intent in examples}) < 2:
            logger.warning("EmbeddingIntentClassifier needs at least two intents; it was not trained")
            return self._resource
        vectors, labels = zip(*examples, strict=True)
        self._model = IntentModel(
            c=self._config["C"],
            neighbour_weight=self._config["neighbour_weight"],
            familiarity_floor=self._config["familiarity_floor"],
            random_state=self._config["random_seed"],
        ).fit(np.stack(vectors), list(labels))
        self._model.temperature *= float(self._config["temperature_scale"])
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
    ) -> EmbeddingIntentClassifier:
        try:
            with model_storage.read_from(resource) as directory:
                model = IntentModel.from_bytes((directory / MODEL_FILE).read_bytes())
        except (ValueError, FileNotFoundError):
            logger.warning(
                "EmbeddingIntentClassifier: no trained model in %s; intents stay unset", resource.name
            )
            model = None
        return cls(config, model_storage, resource, model)

    def process(self, messages: list[Message]) -> list[Message]:
        featurized = [(m, v) for m in messages if (v := self._embedding(m)) is not None]
        if self._model is None or not featurized:
            return messages
        labels, probabilities = self._model.predict_proba(np.stack([v for _, v in featurized]))
        length = self._config["ranking_length"] or len(labels)
        for (message, _), row in zip(featurized, probabilities, strict=True):
            order = np.argsort(-row)[:length]
            ranking = [{INTENT_NAME_KEY: str(labels[i]), "confidence": float(row[i])} for i in order]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
