"""Finds the knowledge-base article that answers a customer's question, or declines.

Two views of a question score the articles, each a logistic regression trained on every
article's title and sample questions:
- by meaning: over the question's sentence embedding (`embeddings.encoder`), which finds an
  article however the customer words it;
- by words: over TF-IDF word and character n-grams (`LexicalModel`), which notices the
  words that decide between an article and a near miss ("Google Pay", "$4.99", "Amazon")
  and survives typos.
The two log-probabilities are mixed with fixed weights (a product of experts) and divided
by one temperature fitted on held-out folds of the training data, so the confidences are
honest probabilities and one threshold means the same for every article. The questions
of knowledge_base/not_covered.yml train one more class, "not covered", so a question near a
topic the policies do not settle loses to it instead of borrowing the nearest article.

Each question gets one of three verdicts:
- answer: the best class is an article, at `answer_threshold` or above;
- choose: no article is that sure, but the two best articles together are, and the second
  is close to the first: the customer picks (buttons);
- decline: anything else. The caller says plainly it is not sure and offers a person.

`KnowledgeService` holds the knowledge base and its index, rebuilds both when a file
under knowledge_base/ changes, and keeps serving the last good version when an edit is
broken.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline, make_union

from actions.kb import KnowledgeBase, KnowledgeBaseError, load_knowledge_base
from embeddings.classifier import IntentModel, fit_temperature, softmax

logger = logging.getLogger(__name__)

NOT_COVERED = "not_covered"


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class RetrievalSettings:
    answer_threshold: float = 0.5
    # The word model's share of the mixed log-probabilities; the meaning model has the rest.
    lexical_weight: float = 0.3
    # Folds for fitting the temperature of the mixture on held-out predictions.
    calibration_folds: int = 3
    random_state: int = 7
    # A choice is offered when the two best articles hold this much together and the
    # second has at least `choice_ratio` of the first's confidence.
    choice_threshold: float = 0.6
    choice_ratio: float = 0.5


@dataclass(frozen=True)
class Match:
    article_id: str
    title: str
    confidence: float


VerdictKind = Literal["answer", "choose", "decline"]


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    matches: tuple[Match, ...]  # the best articles, best first
    not_covered: float  # the "not covered" class's confidence

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.matches else None

    def details(self) -> dict[str, Any]:
        """What an agent or a trainer needs to see why the bot answered or declined."""
        return {
            "verdict": self.kind,
            "not_covered": round(self.not_covered, 3),
            "articles": [
                {"id": match.article_id, "confidence": round(match.confidence, 3)} for match in self.matches
            ],
        }


class LexicalModel:
    """Logistic regression over TF-IDF word (1-2) and character (3-5, inside words) n-grams.

    Every n-gram counts, even one seen once: dropping those (min_df=2) changed nothing in
    cross-validation, and a small knowledge base would have none left."""

    def __init__(self, c: float = 30.0, random_state: int = 7) -> None:
        words = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2))
        characters = TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(3, 5))
        self._pipeline = make_pipeline(
            make_union(words, characters), LogisticRegression(C=c, max_iter=3000, random_state=random_state)
        )

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> LexicalModel:
        self._pipeline.fit(list(texts), list(labels))
        return self

    def log_proba(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, one column per class in sorted order."""
        return self._pipeline.predict_log_proba(list(texts))


class ArticleModel:
    """The mixture of the meaning and word models over the articles and "not covered"."""

    def __init__(self, settings: RetrievalSettings) -> None:
        self.settings = settings
        self.temperature = 1.0
        self.labels = np.array([], dtype=object)

    def fit(self, texts: Sequence[str], vectors: np.ndarray, labels: Sequence[str]) -> ArticleModel:
        y = np.asarray(labels, dtype=object)
        self._fit_experts(texts, vectors, y)
        # A class with fewer examples than folds (a new article with its title and a question)
        # is in every fold's training part and never held out, so each fold knows every class.
        folds = self.settings.calibration_folds
        classes, counts = np.unique(y, return_counts=True)
        always = np.flatnonzero(np.isin(y, classes[counts < folds]))
        rows = np.flatnonzero(np.isin(y, classes[counts >= folds]))
        if folds < 2 or len(rows) == 0:
            return self  # too few examples to calibrate: the temperature stays 1
        scores, truth = [], []
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.settings.random_state)
        for train, held in splitter.split(rows, y[rows]):
            train, held = np.concatenate([rows[train], always]), rows[held]
            fold = ArticleModel(self.settings)
            fold._fit_experts([texts[i] for i in train], vectors[train], y[train])
            scores.append(fold._scores([texts[i] for i in held], vectors[held]))
            truth.append(np.searchsorted(fold.labels, y[held]))
        self.temperature = fit_temperature(np.vstack(scores), np.concatenate(truth))
        return self

    def _fit_experts(self, texts: Sequence[str], vectors: np.ndarray, labels: np.ndarray) -> ArticleModel:
        # Neither expert is calibrated on its own (no folds): the mixture's temperature is.
        # No nearest-example term: with "not covered" as a class of its own, plain logistic
        # regression declined more of it in cross-validation at equal accuracy on articles.
        self._meaning = IntentModel(
            neighbour_weight=0.0, calibration_folds=0, random_state=self.settings.random_state
        ).fit(vectors, labels)
        self._words = LexicalModel(random_state=self.settings.random_state).fit(texts, labels)
        self.labels = self._meaning.labels  # both experts order the classes alike: sorted
        return self

    def _scores(self, texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
        weight = self.settings.lexical_weight
        _, meaning = self._meaning.log_proba(vectors)
        return (1 - weight) * meaning + weight * self._words.log_proba(texts)

    def predict_proba(self, texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
        return softmax(self._scores(texts, vectors) / self.temperature)


class ArticleIndex:
    """The articles of one knowledge base, embedded once, and the model over them."""

    def __init__(
        self,
        knowledge_base: KnowledgeBase,
        encoder: Encoder,
        settings: RetrievalSettings | None = None,
    ) -> None:
        self.knowledge_base = knowledge_base
        self.settings = settings or RetrievalSettings()
        self._encoder = encoder
        texts, labels = [], []
        for article in knowledge_base.articles:
            for text in (article.title, *article.questions):
                texts.append(text)
                labels.append(article.id)
        for text in knowledge_base.not_covered:
            texts.append(text)
            labels.append(NOT_COVERED)
        self._titles = {article.id: article.title for article in knowledge_base.articles}
        self._model = ArticleModel(self.settings).fit(texts, encoder.encode(texts), labels)

    def confidences(self, question: str) -> dict[str, float]:
        probabilities = self._model.predict_proba([question], self._encoder.encode([question]))
        return {str(label): float(p) for label, p in zip(self._model.labels, probabilities[0], strict=True)}

    def decide(self, question: str) -> Verdict:
        confidences = self.confidences(question)
        not_covered = confidences.pop(NOT_COVERED, 0.0)
        ranked = sorted(confidences.items(), key=lambda item: item[1], reverse=True)[:3]
        matches = tuple(Match(article_id, self._titles[article_id], p) for article_id, p in ranked)
        return Verdict(self._verdict(matches, not_covered), matches, not_covered)

    def _verdict(
        self, matches: Sequence[Match], not_covered: float
    ) -> Literal["answer", "choose", "decline"]:
        settings = self.settings
        if not matches:
            return "decline"
        first = matches[0].confidence
        if first >= settings.answer_threshold and first > not_covered:
            return "answer"
        if len(matches) > 1:
            second = matches[1].confidence
            if (
                first + second >= settings.choice_threshold
                and second >= settings.choice_ratio * first
                and second > not_covered
            ):
                return "choose"
        return "decline"


def folder_signature(folder: Path) -> str:
    """Changes whenever a file under `folder` is added, removed, renamed or edited."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # an editor's temporary file, gone since the listing
        if path.is_file():
            digest.update(f"{path.relative_to(folder)}\0{stat.st_mtime_ns}\0{stat.st_size}\0".encode())
    return digest.hexdigest()


@dataclass
class _Loaded:
    signature: str
    index: ArticleIndex


class KnowledgeService:
    """The current knowledge base and its index, rebuilt when knowledge_base/ changes.

    Checks the folder at most every `check_seconds` (a few dozen stat calls). The first
    load happens on the first call; later rebuilds run in a background thread while the
    previous version keeps answering. A broken edit is logged with every problem the
    loader found, and the last good version keeps serving until the files are fixed.
    """

    def __init__(
        self,
        folder: Path,
        encoder_factory: Callable[[], Encoder],
        settings: RetrievalSettings | None = None,
        check_seconds: float = 2.0,
        background: bool = True,
    ) -> None:
        self.folder = folder
        self.settings = settings or RetrievalSettings()
        self.check_seconds = check_seconds
        self.background = background
        self._encoder_factory = encoder_factory
        self._lock = threading.Lock()  # guards the fields below
        self._build_lock = threading.Lock()  # one build at a time
        self._loaded: _Loaded | None = None
        self._failed_signature: str | None = None
        self._building = False
        self._checked_at = 0.0
        self.last_error: KnowledgeBaseError | None = None

    def index(self) -> ArticleIndex:
        """The index to answer from now; raises KnowledgeBaseError only if no version ever loaded."""
        if self._loaded is None:
            with self._build_lock:
                if self._loaded is None:
                    signature = folder_signature(self.folder)
                    if signature != self._failed_signature:  # the same broken files fail again
                        self._build(signature)
            if self._loaded is None:
                assert self.last_error is not None
                raise self.last_error
            return self._loaded.index
        with self._lock:
            now = time.monotonic()
            stale = now - self._checked_at >= self.check_seconds and not self._building
            if stale:
                self._checked_at = now
                signature = folder_signature(self.folder)
                stale = signature not in (self._loaded.signature, self._failed_signature)
            if stale:
                self._building = True
        if stale:
            if self.background:
                threading.Thread(target=self._rebuild, args=(signature,), daemon=True).start()
            else:
                self._rebuild(signature)
        return self._loaded.index

    def _rebuild(self, signature: str) -> None:
        try:
            with self._build_lock:
                self._build(signature)
        finally:
            with self._lock:
                self._building = False

    def _build(self, signature: str) -> None:
        try:
            knowledge_base = load_knowledge_base(self.folder)
            started = time.perf_counter()
            try:
                index = ArticleIndex(knowledge_base, self._encoder_factory(), self.settings)
            except ValueError as problem:  # data the loader accepts but the models cannot fit
                raise KnowledgeBaseError([f"{self.folder}: cannot be indexed: {problem}"]) from problem
        except KnowledgeBaseError as error:
            self._failed_signature, self.last_error = signature, error
            if self._loaded is None:
                logger.error("The knowledge base cannot be loaded:\n%s", error)
            else:
                logger.error("Knowledge base edit rejected; the last good version answers.\n%s", error)
            return
        reloaded = self._loaded is not None
        self._loaded, self._failed_signature, self.last_error = _Loaded(signature, index), None, None
        logger.info(
            "Knowledge base %s: %d articles, %d not-covered questions, indexed in %.1f s",
            "reloaded" if reloaded else "loaded",
            len(knowledge_base.articles),
            len(knowledge_base.not_covered),
            time.perf_counter() - started,
        )
