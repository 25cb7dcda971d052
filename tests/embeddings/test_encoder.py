"""The sentence encoder: the real all-MiniLM-L6-v2, loaded offline from its package."""

from __future__ import annotations

import numpy as np

from embeddings.encoder import SentenceEncoder, get_encoder


def test_paraphrases_are_closer_than_unrelated_sentences() -> None:
    encoder = get_encoder()
    a, b, c = encoder.encode(
        ["where is my parcel?", "has my package shipped yet", "do you sell gift cards for birthdays"]
    )
    assert float(a @ b) > float(a @ c) + 0.1


def test_vectors_are_unit_length_and_cached_texts_come_back_identical() -> None:
    encoder = get_encoder()
    first = encoder.encode(["cancel my order", "hello there", "cancel my order"])
    assert first.shape == (3, encoder.dimension)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first[0], first[2])
    assert np.array_equal(encoder.encode(["hello there"])[0], first[1])


def test_the_encoder_is_loaded_once_per_process() -> None:
    assert get_encoder() is get_encoder()


def test_more_new_texts_than_the_cache_holds_are_all_embedded() -> None:
    encoder = SentenceEncoder(cache_size=2)
    texts = ["cancel my order", "where is my parcel", "hello there", "cancel my order"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (4, encoder.dimension)
    assert np.allclose(vectors, get_encoder().encode(texts), atol=1e-5)
