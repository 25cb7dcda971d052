"""The return form's typed answers: reasons, refund or exchange, pickup or drop-off, and the
order's items, read from the customer's own words.

vocabulary.yml beside this module holds the words (labels, phrases, example answers); an
answer is read by its phrases first ("no exchange, a refund": a phrase turned down does not
count), then by meaning (the nearest label, phrase or example in sentence-embedding space).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from actions.shop.base import Order, OrderItem

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.yml")

STOPWORDS = frozenset(
    "the a an my i it its it's this that these those just only please pls one and of from in to want "
    "would like".split()
)


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    phrases: tuple[str, ...]
    examples: tuple[str, ...] = ()  # whole answers, anchors for reading by meaning


@dataclass(frozen=True)
class Vocabulary:
    reasons: dict[str, Choice]
    reason_buttons: dict[str, tuple[str, ...]]
    resolutions: dict[str, Choice]
    methods: dict[str, Choice]
    all_items: tuple[str, ...]
    meaning_threshold: float


def _choices(data: dict[str, Any]) -> dict[str, Choice]:
    return {
        value: Choice(
            value,
            str(entry["label"]),
            tuple(str(p).lower() for p in entry["phrases"]),
            tuple(str(e) for e in entry.get("examples", ())),
        )
        for value, entry in data.items()
    }


@functools.lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    data = yaml.safe_load(VOCABULARY_FILE.read_text(encoding="utf-8"))
    return Vocabulary(
        reasons=_choices(data["reasons"]),
        reason_buttons={flow: tuple(values) for flow, values in data["reason_buttons"].items()},
        resolutions=_choices(data["resolutions"]),
        methods=_choices(data["methods"]),
        all_items=tuple(str(p).lower() for p in data["all_items"]),
        meaning_threshold=float(data["meaning_threshold"]),
    )


def _normalise(text: str) -> str:
    return " ".join(text.lower().replace("’", "'").split())


# Words that turn a choice down when they come shortly before it: "no exchange, a refund".
NEGATORS = frozenset({"no", "not", "don't", "dont", "never", "without", "nor"})
NEGATION_WINDOW = 4  # words before the phrase


def _hits(text: str, choices: dict[str, Choice]) -> tuple[list[tuple[int, str]], set[str]]:
    """Phrases found in `text`, as (length, value), and the values named only to be turned down."""
    found, declined = [], set()
    for choice in choices.values():
        for phrase in choice.phrases:
            for match in re.finditer(rf"(?<![\w']){re.escape(phrase)}(?![\w'])", text):
                # Only the same clause counts: in "no exchange thanks, refund" the "no"
                # turns the exchange down, not the refund.
                clause = re.split(r"[,.;:!?]|\bbut\b|\bjust\b", text[: match.start()])[-1]
                if NEGATORS & set(clause.split()[-NEGATION_WINDOW:]):
                    declined.add(choice.value)
                else:
                    found.append((len(phrase), choice.value))
    return found, declined - {value for _, value in found}


def _lexical(text: str, choices: dict[str, Choice]) -> tuple[str | None, set[str]]:
    """The value `text` names exactly or by its longest phrase (None if neither), leaving
    out phrases that are turned down ("no exchange thanks, refund"); and the values turned
    down."""
    normalised = _normalise(text)
    if normalised in choices:
        return normalised, set()
    found, declined = _hits(normalised, choices)
    return (max(found)[1] if found else None), declined


def match_choice(text: str, choices: dict[str, Choice]) -> str | None:
    """The value whose phrase is the longest one in `text` (or that `text` names exactly)."""
    return _lexical(text, choices)[0]


@dataclass(frozen=True)
class Anchors:
    values: tuple[str, ...]
    vectors: Any  # one unit-length row per label, phrase and example


@functools.lru_cache(maxsize=8)
def _anchors(choices: tuple[Choice, ...]) -> Anchors:
    from embeddings.encoder import get_encoder

    values, texts = [], []
    for choice in choices:
        for text in (choice.label.lower(), *choice.phrases, *choice.examples):
            values.append(choice.value)
            texts.append(text)
    vectors = get_encoder().encode(texts)
    return Anchors(tuple(values), vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9))


def nearest_choice(
    text: str, choices: dict[str, Choice], threshold: float, exclude: Iterable[str] = ()
) -> str | None:
    """The value of the anchor (label, phrase or example answer) nearest in meaning (cosine
    of sentence embeddings), when it is near enough: "way too snug around the shoulders" is
    a fit problem though no phrase is in it. Blocking (it embeds the text): call it in a
    thread."""
    from embeddings.encoder import get_encoder

    anchors = _anchors(tuple(choices.values()))
    query = get_encoder().encode([text])[0]
    similarity = anchors.vectors @ (query / (np.linalg.norm(query) + 1e-9))
    excluded = set(exclude)
    for index in np.argsort(-similarity):
        if similarity[index] < threshold:
            return None
        if anchors.values[index] not in excluded:
            return anchors.values[index]
    return None


def read_choice(text: str, choices: dict[str, Choice], threshold: float | None = None) -> str | None:
    """A typed answer to a button question: the vocabulary's phrases, then meaning (never a
    choice the answer turns down). `threshold` defaults to the vocabulary's."""
    value, declined = _lexical(text, choices)
    if value:
        return value
    limit = vocabulary().meaning_threshold if threshold is None else threshold
    return nearest_choice(text, choices, limit, exclude=declined)


def _words(text: str) -> set[str]:
    return {word.rstrip("s") for word in re.findall(r"[a-z0-9$]+", text.lower()) if word not in STOPWORDS}


# Words that may stand around "both" or "all of them" in an answer that means every item.
FILLER = frozenset(
    "please pls thanks thank you ok okay i want to return send back id i'd like would the just".split()
)


def _means_every_item(text: str) -> bool:
    """ "both", "all of them please": the whole answer names every item, and nothing else
    ("not all of them, just the socks" does not)."""
    words = [word for word in re.findall(r"[a-z']+", text) if word not in FILLER]
    return " ".join(words) in vocabulary().all_items


def match_items(order: Order, mentions: Iterable[str]) -> list[OrderItem]:
    """The order's items the customer named: exactly, by their words ("the socks": the item
    sharing the most words with each part of the answer, none if two share as many), or
    every item ("both")."""
    chosen: list[OrderItem] = []
    for mention in mentions:
        text = _normalise(str(mention))
        exact = [item for item in order.items if item.name.lower() == text]
        if exact:
            chosen += [item for item in exact if item not in chosen]
            continue
        if _means_every_item(text):
            return list(order.items)
        for part in re.split(r",|&|\band\b|\bplus\b", text):
            words = _words(part)
            overlap = {item: len(words & _words(item.name)) for item in order.items}
            best = max(overlap.values(), default=0)
            named = [item for item, count in overlap.items() if count == best]
            if best and len(named) == 1 and named[0] not in chosen:
                chosen.append(named[0])
    return chosen


def items_named(order: Order, names: Iterable[str]) -> list[OrderItem]:
    """The items whose exact names the form stored."""
    wanted = set(names)
    return [item for item in order.items if item.name in wanted]
