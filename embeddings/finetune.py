"""Fine-tuning the sentence encoder on a shop's own labelled examples.

A frozen encoder puts "is my card on its way" and "when will the card arrive" close together
because they are paraphrases, but it has never been told which distinctions matter to this
shop. A few passes of supervised training over the examples (a cosine classifier on the
pooled sentence vectors, its weights started at each class's mean vector, cross-entropy)
pull each class's examples together and apart from the others; a classifier trained on the
tuned vectors afterwards generalises better from ten examples per class. Measured on
Banking77 with 10 examples per intent (docs/nlu.md, "The NLU pipeline").

The word embeddings stay frozen: they are half the model's weights, their gradients are
sparse and few examples would mostly push rare words around. Only the six transformer
layers change, so that is all that needs saving (`SentenceEncoder.layer_weights`).

A budget of examples x epochs bounds the time on large training sets: on 2 cores about
60 examples a second pass forward and backward.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from embeddings.encoder import SentenceEncoder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FineTuning:
    epochs: int = 5
    # At most this many examples x epochs: a large training set gets fewer passes.
    max_passes: int = 5000
    learning_rate: float = 5e-5
    batch_size: int = 32
    # Cosine logits are multiplied by this before the softmax.
    scale: float = 20.0
    # Each word of a training text is left out with this chance, every time it is seen.
    word_dropout: float = 0.1
    max_length: int = 64
    seed: int = 7

    def validate(self) -> None:
        if self.epochs < 0 or self.max_passes < 1 or self.batch_size < 2:
            raise ValueError("fine-tuning needs epochs >= 0, max_passes >= 1 and batch_size >= 2")
        if not 0.0 <= self.word_dropout < 1.0 or self.learning_rate <= 0 or self.scale <= 0:
            raise ValueError("fine-tuning needs 0 <= word_dropout < 1 and a positive learning rate and scale")


def fine_tune(
    encoder: SentenceEncoder,
    texts: Sequence[str],
    labels: Sequence[str],
    settings: FineTuning | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Trains `encoder`'s transformer layers in place on (text, label) pairs; returns a summary.

    The encoder must be one of its own (`SentenceEncoder()`), not the process-wide frozen one
    that other components share.
    """
    import tensorflow as tf

    settings = settings or FineTuning()
    settings.validate()
    classes = sorted(set(labels))
    if len(classes) < 2 or len(texts) != len(labels):
        raise ValueError("fine-tuning needs texts and as many labels, of at least two classes")
    rng = np.random.RandomState(settings.seed)
    tf.random.set_seed(settings.seed)
    y = np.searchsorted(classes, np.asarray(labels, dtype=object)).astype(np.int64)
    epochs = min(float(settings.epochs), settings.max_passes / len(texts))
    steps = int(np.ceil(epochs * len(texts) / settings.batch_size))
    if steps == 0:
        return {"epochs": 0.0, "steps": 0, "seconds": 0.0, "loss": None}

    vectors = encoder.encode(list(texts))
    centroids = np.stack([vectors[y == k].mean(axis=0) for k in range(len(classes))])
    head = tf.Variable((centroids / np.linalg.norm(centroids, axis=1, keepdims=True)).T.astype(np.float32))
    model = encoder.model
    model.bert.embeddings.trainable = False
    variables = model.bert.encoder.trainable_variables
    optimizer = tf.keras.optimizers.Adam(settings.learning_rate)
    # The head starts at the class means and has to move further than the encoder's weights.
    head_optimizer = tf.keras.optimizers.Adam(settings.learning_rate * 20)
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec, spec, tf.TensorSpec([None], tf.int64)])
    def step(input_ids: Any, attention_mask: Any, token_type_ids: Any, targets: Any) -> Any:
        with tf.GradientTape() as tape:
            pooled = encoder.pooled(input_ids, attention_mask, token_type_ids, training=True)
            logits = settings.scale * tf.matmul(pooled, tf.math.l2_normalize(head, axis=0))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits))
        gradients = tape.gradient(loss, [*variables, head])
        # No zip(strict=True) here: autograph cannot convert the keyword. The lengths match by construction.
        optimizer.apply_gradients(zip(gradients[:-1], variables))  # noqa: B905
        head_optimizer.apply_gradients([(gradients[-1], head)])
        return loss

    started = time.perf_counter()
    losses: list[float] = []
    bar = tqdm(total=steps, desc="fine-tuning the sentence encoder", unit="batch", disable=not progress)
    with bar:
        for rows in _batches(texts, steps, settings.batch_size, rng):
            words = [_drop_words(texts[row], settings.word_dropout, rng) for row in rows]
            batch = encoder.tokenizer(
                words, padding=True, truncation=True, max_length=settings.max_length, return_tensors="np"
            )
            loss = step(
                batch["input_ids"].astype(np.int32),
                batch["attention_mask"].astype(np.int32),
                batch["token_type_ids"].astype(np.int32),
                tf.constant(y[rows]),
            )
            losses.append(float(loss))
            bar.update()
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    encoder.forget()
    seconds = time.perf_counter() - started
    summary = {
        "epochs": round(epochs, 2),
        "steps": steps,
        "seconds": round(seconds, 1),
        "loss": round(float(np.mean(losses[-20:])), 4),
    }
    logger.info("Fine-tuned the encoder on %s texts, %s classes: %s", len(texts), len(classes), summary)
    return summary


def _batches(
    texts: Sequence[str], steps: int, batch_size: int, rng: np.random.RandomState
) -> list[np.ndarray]:
    """`steps` batches over shuffled epochs; within a pool of 8 batches texts of similar length
    go together, which keeps padding (wasted compute) small."""
    batches: list[np.ndarray] = []
    lengths = np.array([len(text) for text in texts])
    while len(batches) < steps:
        order = rng.permutation(len(texts))
        pool = batch_size * 8
        epoch: list[np.ndarray] = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            epoch += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        rng.shuffle(epoch)
        batches += epoch
    return batches[:steps]


def _drop_words(text: str, rate: float, rng: np.random.RandomState) -> str:
    if rate == 0.0:
        return text
    kept = [word for word in text.split() if rng.rand() >= rate]
    return " ".join(kept) if kept else text
