"""Fine-tuning the real all-MiniLM-L6-v2 on a few labelled examples (embeddings.finetune)."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.encoder import SentenceEncoder, get_encoder
from embeddings.finetune import FineTuning, fine_tune

TRAIN = {
    "card_arrival": [
        "when will my new card arrive",
        "my card still hasn't come in the post",
        "how long does the card take to be delivered",
        "is my card on its way",
        "card not received yet",
        "waiting for my card for two weeks",
    ],
    "card_payment_declined": [
        "why was my card declined at the shop",
        "payment with my card did not go through",
        "the terminal refused my card",
        "my card keeps getting rejected",
        "card payment failed at the checkout",
        "declined transaction on my card",
    ],
    "lost_card": [
        "I lost my card",
        "my card was stolen yesterday",
        "can't find my card anywhere",
        "someone took my wallet with the card",
        "i think i left my card at the restaurant",
        "my card is missing",
    ],
}
HELD_OUT = [
    ("has the card been posted to me yet", "card_arrival"),
    ("the card you sent never showed up", "card_arrival"),
    ("the cashier said my card was refused", "card_payment_declined"),
    ("why won't my card work for purchases", "card_payment_declined"),
    ("my purse with the card got pickpocketed", "lost_card"),
    ("I misplaced my card, what now", "lost_card"),
]


def margin(encoder: SentenceEncoder) -> float:
    """Mean over held-out texts of (similarity to the own class's mean) - (best other class's)."""
    classes = sorted(TRAIN)
    centroids = np.stack([encoder.encode(TRAIN[c]).mean(axis=0) for c in classes])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    similarities = encoder.encode([text for text, _ in HELD_OUT]) @ centroids.T
    margins = []
    for row, (_, label) in zip(similarities, HELD_OUT, strict=True):
        own = classes.index(label)
        margins.append(row[own] - np.delete(row, own).max())
    return float(np.mean(margins))


@pytest.fixture(scope="module")
def tuned() -> tuple[SentenceEncoder, float]:
    encoder = SentenceEncoder()
    before = margin(encoder)
    texts = [text for texts in TRAIN.values() for text in texts]
    labels = [label for label, texts in TRAIN.items() for _ in texts]
    summary = fine_tune(encoder, texts, labels, FineTuning(epochs=6, batch_size=6))
    assert summary["steps"] == 18
    return encoder, before


def test_fine_tuning_separates_unseen_paraphrases(tuned: tuple[SentenceEncoder, float]) -> None:
    encoder, before = tuned
    assert margin(encoder) > before + 0.05


def test_the_shared_frozen_encoder_is_left_alone(tuned: tuple[SentenceEncoder, float]) -> None:
    encoder, _ = tuned
    text = "is my card on its way"
    assert float(get_encoder().encode([text])[0] @ SentenceEncoder().encode([text])[0]) > 0.9999
    assert float(get_encoder().encode([text])[0] @ encoder.encode([text])[0]) < 0.999


def test_saved_layers_restore_the_tuned_encoder_exactly(tuned: tuple[SentenceEncoder, float]) -> None:
    encoder, _ = tuned
    restored = SentenceEncoder()
    restored.set_layer_weights(encoder.layer_weights())
    texts = ["my card was refused", "hello"]
    assert np.allclose(restored.encode(texts), encoder.encode(texts), atol=1e-6)


def test_weights_of_another_shape_and_single_class_data_are_refused() -> None:
    encoder = get_encoder()
    with pytest.raises(ValueError, match="different encoder"):
        encoder.set_layer_weights(encoder.layer_weights()[:-1])
    with pytest.raises(ValueError, match="two classes"):
        fine_tune(SentenceEncoder(), ["a", "b"], ["x", "x"])
