"""The encoder's ONNX Runtime forward pass gives TensorFlow's vectors, frozen or retrained."""

from __future__ import annotations

import numpy as np

from embeddings.encoder import SentenceEncoder

TEXTS = [
    "hi",
    "where is my order #100234?",
    "I want to return the boots from RMA-20431, the sole came off after a week of light walking",
    "¿dónde está mi pedido?",
]


def tensorflow_vectors(encoder: SentenceEncoder, texts: list[str]) -> np.ndarray:
    batch = encoder.tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="np")
    pooled = encoder.pooled(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    return pooled.numpy()


def test_onnx_runtime_gives_tensorflows_vectors_for_padded_batches() -> None:
    encoder = SentenceEncoder(cache_size=0)
    served = encoder.encode(TEXTS)
    assert encoder._onnx is not None  # served by ONNX Runtime, not TensorFlow
    assert np.abs(served - tensorflow_vectors(encoder, TEXTS)).max() < 1e-5


def test_new_weights_are_served_at_once() -> None:
    encoder = SentenceEncoder(cache_size=0)
    before = encoder.encode(TEXTS)
    rng = np.random.default_rng(7)
    weights = [w + rng.normal(0, 0.02, w.shape).astype(w.dtype) for w in encoder.layer_weights()]
    encoder.set_layer_weights(weights)
    after = encoder.encode(TEXTS)
    assert np.abs(after - before).max() > 1e-3  # the change shows
    assert np.abs(after - tensorflow_vectors(encoder, TEXTS)).max() < 1e-5
