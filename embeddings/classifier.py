"""Intent classification on sentence embeddings: logistic regression times nearest neighbour.

A message's score for an intent is the logistic regression's log-probability plus a weight
times its cosine similarity to the closest training example of that intent, divided by a
temperature, then normalised (a product of experts). The regression generalises across
wordings; the neighbour term keeps a message that is close to no example of any intent
from getting a confident answer, which is what makes out-of-scope messages fall under the
threshold. With a familiarity floor, an implicit "none of these" alternative competes too,
scored as the best intent would be if its closest example were only as similar as the
floor: gibberish and topics far from every example then lose most of their confidence,
without an example of every kind of out-of-scope message. The temperature is fitted on
out-of-fold predictions of the training data, so a confidence of 0.7 means about 70% right:
Rasa's FallbackClassifier threshold then means what it says.

Plain numpy and scikit-learn, no Rasa: `bot.nlu.intent_classifier` adapts it to Rasa, and
the unit tests use it directly. Persisted as arrays (numpy's .npz, no pickle).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split

FORMAT_VERSION = 1


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def fit_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    """The temperature that gives held-out log-scores (one row per example, one column per
    class; `truth` holds the right column) the least log loss after a softmax."""

    def log_loss(temperature: float) -> float:
        return -float(np.mean(log_softmax(scores / temperature)[np.arange(len(truth)), truth]))

    return float(minimize_scalar(log_loss, bounds=(0.05, 50.0), method="bounded").x)


def log_softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(scores: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(scores))


class IntentModel:
    def __init__(
        self,
        c: float = 30.0,
        neighbour_weight: float = 10.0,
        familiarity_floor: float | None = None,
        calibration_folds: int = 3,
        calibration_sample: int = 3000,
        random_state: int = 7,
    ) -> None:
        self.c = c
        self.neighbour_weight = neighbour_weight
        self.familiarity_floor = familiarity_floor
        self.calibration_folds = calibration_folds
        self.calibration_sample = calibration_sample
        self.random_state = random_state
        self.labels = np.array([], dtype=object)
        self.temperature = 1.0
        self._coef = np.zeros((0, 0), dtype=np.float32)
        self._intercept = np.zeros(0, dtype=np.float32)
        self._examples = np.zeros((0, 0), dtype=np.float32)
        self._starts = np.zeros(0, dtype=np.int64)

    def fit(self, embeddings: np.ndarray, labels: Sequence[str]) -> IntentModel:
        x, y = _unit(embeddings), np.asarray(labels, dtype=object)
        if len(set(y)) < 2:
            raise ValueError("an intent model needs at least two intents")
        self._fit_experts(x, y)
        self.temperature = self._fit_temperature(x, y)
        return self

    def _fit_experts(self, x: np.ndarray, y: np.ndarray) -> None:
        regression = LogisticRegression(C=self.c, max_iter=3000, random_state=self.random_state).fit(x, y)
        self.labels = regression.classes_.astype(object)
        coef, intercept = regression.coef_, regression.intercept_
        if coef.shape[0] == 1:  # two intents: scikit-learn keeps one row; make it a softmax
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
        self._coef, self._intercept = coef.astype(np.float32), intercept.astype(np.float32)
        index = np.searchsorted(self.labels, y)
        order = np.argsort(index, kind="stable")
        self._examples = x[order]
        self._starts = np.searchsorted(index[order], np.arange(len(self.labels)))

    def _scores(self, x: np.ndarray) -> np.ndarray:
        """Unnormalised log-scores, one column per intent (before the temperature), and a
        last column for "none of these" when there is a familiarity floor."""
        log_probabilities = log_softmax(x @ self._coef.T + self._intercept)
        scores = log_probabilities
        if self.neighbour_weight:
            nearest = np.maximum.reduceat(x @ self._examples.T, self._starts, axis=1)
            scores = log_probabilities + self.neighbour_weight * nearest
        if self.familiarity_floor is not None:
            best = log_probabilities.max(axis=1, keepdims=True)
            none = best + self.neighbour_weight * self.familiarity_floor
            scores = np.hstack([scores, none])
        return scores

    def _fit_temperature(self, x: np.ndarray, y: np.ndarray) -> float:
        """The temperature that makes out-of-fold confidences honest (least log loss)."""
        if self.calibration_folds < 2:
            return 1.0
        if len(x) > self.calibration_sample:
            try:
                keep, _ = train_test_split(
                    np.arange(len(x)),
                    train_size=self.calibration_sample,
                    stratify=y,
                    random_state=self.random_state,
                )
            except ValueError:  # an intent with a single example cannot be stratified
                keep = np.random.RandomState(self.random_state).permutation(len(x))[: self.calibration_sample]
            x, y = x[keep], y[keep]
        folds = min(self.calibration_folds, min(np.unique(y, return_counts=True)[1]))
        if folds < 2:
            return 1.0
        scores, truth = [], []
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        for train, held in splitter.split(x, y):
            fold = IntentModel(
                self.c, self.neighbour_weight, self.familiarity_floor, random_state=self.random_state
            )
            fold._fit_experts(x[train], y[train])
            known = np.isin(y[held], fold.labels)
            scores.append(fold._scores(x[held][known]))
            truth.append(np.searchsorted(fold.labels, y[held][known]))
            if len(fold.labels) != len(np.unique(y)):
                return 1.0  # a fold lost an intent; its columns would not line up
        return fit_temperature(np.vstack(scores), np.concatenate(truth))

    def predict_proba(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(intent labels, probabilities): one row per message, columns in label order.

        With a familiarity floor a row sums to less than 1: the rest is "none of these".
        """
        labels, log_probabilities = self.log_proba(embeddings)
        return labels, np.exp(log_probabilities)

    def log_proba(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(intent labels, log-probabilities): `predict_proba` before the exponential."""
        log_probabilities = log_softmax(self._scores(_unit(embeddings)) / self.temperature)
        return self.labels, log_probabilities[:, : len(self.labels)]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            version=np.array(FORMAT_VERSION),
            labels=self.labels.astype(str),
            params=np.array(
                [
                    self.c,
                    self.neighbour_weight,
                    self.temperature,
                    np.nan if self.familiarity_floor is None else self.familiarity_floor,
                ],
                dtype=np.float64,
            ),
            coef=self._coef,
            intercept=self._intercept,
            examples=self._examples,
            starts=self._starts,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> IntentModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            if int(arrays["version"]) != FORMAT_VERSION:
                raise ValueError(f"intent model format {int(arrays['version'])}, expected {FORMAT_VERSION}")
            c, weight, temperature, floor = (float(v) for v in arrays["params"])
            model = cls(c, weight, None if np.isnan(floor) else floor)
            model.temperature = temperature
            model.labels = arrays["labels"].astype(object)
            model._coef, model._intercept = arrays["coef"], arrays["intercept"]
            model._examples, model._starts = arrays["examples"], arrays["starts"]
        return model
