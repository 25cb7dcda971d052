"""The intent model on small synthetic embeddings: right answers, honest confidences."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.classifier import IntentModel


def clusters(per_intent: int = 20, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Three intents, each a tight cloud around its own direction."""
    rng = np.random.RandomState(seed)
    centres = np.eye(dim)[:3] * 3
    x = np.vstack([centre + rng.normal(scale=0.3, size=(per_intent, dim)) for centre in centres])
    labels = [name for name in ("greet", "order_status", "thank") for _ in range(per_intent)]
    return x, labels, centres


def test_separable_intents_are_predicted_and_rows_are_probabilities() -> None:
    x, labels, centres = clusters()
    model = IntentModel().fit(x, labels)
    names, probabilities = model.predict_proba(centres)
    assert list(names[probabilities.argmax(axis=1)]) == ["greet", "order_status", "thank"]
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities.max(axis=1).min() > 0.9


def test_a_message_like_no_example_loses_its_confidence_with_a_floor() -> None:
    x, labels, _ = clusters()
    stranger = np.eye(16)[10:11]  # orthogonal to every intent
    without = IntentModel().fit(x, labels).predict_proba(stranger)[1].max()
    with_floor = IntentModel(familiarity_floor=0.5).fit(x, labels).predict_proba(stranger)[1].max()
    assert with_floor < 0.2
    assert with_floor < without


def test_the_temperature_makes_confidence_match_accuracy_out_of_sample() -> None:
    # Overlapping clouds: right about 70-90% of the time; a calibrated model says so.
    rng = np.random.RandomState(1)
    centres = rng.normal(size=(4, 8))
    x = np.vstack([c + rng.normal(scale=0.9, size=(200, 8)) for c in centres])
    y = np.repeat(["a", "b", "c", "d"], 200)
    order = rng.permutation(len(x))
    train, test = order[:400], order[400:]
    model = IntentModel().fit(x[train], list(y[train]))
    names, probabilities = model.predict_proba(x[test])
    accuracy = float(np.mean(names[probabilities.argmax(axis=1)] == y[test]))
    confidence = float(probabilities.max(axis=1).mean())
    assert 0.5 < accuracy < 0.98
    assert abs(confidence - accuracy) < 0.08


def test_persistence_round_trip_gives_identical_predictions() -> None:
    x, labels, centres = clusters()
    model = IntentModel(familiarity_floor=0.4).fit(x, labels)
    loaded = IntentModel.from_bytes(model.to_bytes())
    assert loaded.familiarity_floor == pytest.approx(0.4)
    assert np.array_equal(model.predict_proba(centres)[1], loaded.predict_proba(centres)[1])
    assert list(loaded.labels) == ["greet", "order_status", "thank"]


def test_two_intents_and_a_single_intent() -> None:
    x, labels, centres = clusters()
    two = IntentModel().fit(x[:40], labels[:40])
    names, probabilities = two.predict_proba(centres[:2])
    assert list(names[probabilities.argmax(axis=1)]) == ["greet", "order_status"]
    with pytest.raises(ValueError, match="two intents"):
        IntentModel().fit(x[:20], labels[:20])
