"""Finds the knowledge-base article that answers a customer's question, or declines.

By meaning, not by words: questions are embedded with the sentence encoder
(`embeddings.encoder`), and a classifier (`embeddings.classifier.IntentModel`) trained on
each article's title and sample questions scores the articles. The questions of
knowledge_base/not_covered.yml train one more class, "not covered", so a question near a
topic the policies do not settle loses to it instead of borrowing the nearest article. The
classifier's confidences are calibrated on held-out folds of that training data, which
makes one threshold mean the same for every article.

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

from actions.kb import KnowledgeBase, KnowledgeBaseError, load_knowledge_base

logger = logging.getLogger(__name__)

NOT_COVERED = "not_covered"


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class RetrievalSettings:
    answer_threshold: float = 0.5
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


class ArticleIndex:
    """The articles of one knowledge base, embedded once, and the classifier over them."""

    def __init__(
        self,
        knowledge_base: KnowledgeBase,
        encoder: Encoder,
        settings: RetrievalSettings | None = None,
    ) -> None:
        from embeddings.classifier import IntentModel

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
        # No nearest-example term: with "not covered" as a class of its own, plain logistic
        # regression declined more of it in 5-fold cross-validation on this training data
        # (84% against 80% at equal accuracy on the articles' questions).
        self._model = IntentModel(neighbour_weight=0.0).fit(encoder.encode(texts), labels)

    def confidences(self, question: str) -> dict[str, float]:
        labels, probabilities = self._model.predict_proba(self._encoder.encode([question]))
        return {str(label): float(p) for label, p in zip(labels, probabilities[0], strict=True)}

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
            index = ArticleIndex(knowledge_base, self._encoder_factory(), self.settings)
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
