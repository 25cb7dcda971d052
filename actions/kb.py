"""The knowledge base as typed, validated data: FAQ articles, the questions no article
answers, and the return policy (read by actions/returns/policy.py).

A shop edits knowledge_base/ to change what the assistant answers and which returns it
accepts, so every rule lives in those files, not in Python. Whoever edits them is not
necessarily a developer: the loader checks everything at once and names the file and the
field of each problem, so one run shows the whole list of fixes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actions.data_files import (
    FieldType,
    KnowledgeBaseError,
    OptionalStrings,
    Strings,
    Text,
    display,
    one_of,
    parse_yaml,
    read_text,
)
from actions.returns.policy import ReturnPolicy, read_return_policy

ARTICLE_FIELDS = ("id", "title", "questions", "tags", "offer")
# What the bot offers after the article instead of asking whether it helped.
ARTICLE_OFFERS = ("human", "return_status", "problem_report")
NOT_COVERED_FILE = "not_covered.yml"


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    questions: tuple[str, ...]
    tags: tuple[str, ...]
    body: str
    path: Path
    offer: str | None = None  # one of ARTICLE_OFFERS, or None: "Did that answer your question?"


@dataclass(frozen=True)
class KnowledgeBase:
    articles: tuple[Article, ...]
    return_policy: ReturnPolicy
    # Questions no article answers (not_covered.yml): retrieval learns to decline them.
    not_covered: tuple[str, ...] = ()

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(article.id for article in self.articles)

    def article(self, article_id: str) -> Article:
        for article in self.articles:
            if article.id == article_id:
                return article
        raise KeyError(article_id)


def load_knowledge_base(folder: Path | str) -> KnowledgeBase:
    """Load folder/articles/*.md, folder/return_policy.yml and folder/not_covered.yml (optional),
    reporting all problems together."""
    folder = Path(folder)
    articles, article_errors = _read_articles(folder / "articles")
    policy, policy_errors = read_return_policy(folder / "return_policy.yml")
    not_covered, not_covered_errors = _read_not_covered(folder / NOT_COVERED_FILE)
    errors = article_errors + policy_errors + not_covered_errors
    if not errors and len(articles) == 1 and not not_covered:
        errors.append(
            f"{display(folder / NOT_COVERED_FILE)}: with a single article, retrieval needs questions"
            " here that the article does not answer, to learn when to decline"
        )
    if errors or policy is None:
        raise KnowledgeBaseError(errors)
    return KnowledgeBase(tuple(articles), policy, tuple(not_covered))


def load_articles(folder: Path | str) -> list[Article]:
    articles, errors = _read_articles(Path(folder))
    if errors:
        raise KnowledgeBaseError(errors)
    return articles


class _Fields:
    """Typed reads from one YAML mapping, recording problems instead of raising."""

    def __init__(self, where: str, label: str, errors: list[str]) -> None:
        self.where = where
        self.label = label  # "front matter field" or "field"
        self.errors = errors

    def error(self, field: str, problem: str) -> None:
        self.errors.append(f"{self.where}: {self.label} '{field}' {problem}")

    def unknown_keys(self, data: Mapping[Any, Any], allowed: Iterable[str], prefix: str = "") -> None:
        allowed = set(allowed)
        for key in data:
            if key not in allowed:
                self.error(f"{prefix}{key}", f"is not a known field (known: {', '.join(sorted(allowed))})")

    def text(self, data: Mapping[str, Any], key: str, field: str) -> str:
        return self._read(data, key, field, Text, "")

    def strings(
        self, data: Mapping[str, Any], key: str, field: str, required: bool = True
    ) -> tuple[str, ...]:
        if key not in data and not required:
            return ()
        return self._read(data, key, field, Strings if required else OptionalStrings, ())

    def choice(self, data: Mapping[str, Any], key: str, field: str, choices: Sequence[str]) -> str:
        return self._read(data, key, field, one_of(*choices), choices[0])

    def _read(
        self, data: Mapping[str, Any], key: str, field: str, kind: type[FieldType], default: Any
    ) -> Any:
        if key not in data:
            self.error(field, "is required")
            return default
        problem = kind.problem(data[key])
        if problem:
            self.error(field, problem)
            return default
        return kind.convert(data[key])


# --- articles ----------------------------------------------------------------------------


def _read_not_covered(path: Path) -> tuple[list[str], list[str]]:
    if not path.exists():
        return [], []
    errors: list[str] = []
    where = display(path)
    text = read_text(path, errors)
    if text is None:
        return [], errors
    parsed, data = parse_yaml(text, where, 1, errors)
    if not parsed:
        return [], errors
    if not isinstance(data, dict):
        return [], [f"{where}: must be a mapping with the field 'questions'"]
    fields = _Fields(where, "field", errors)
    fields.unknown_keys(data, ("questions",))
    return list(fields.strings(data, "questions", "questions")), errors


def _read_articles(folder: Path) -> tuple[list[Article], list[str]]:
    errors: list[str] = []
    if not folder.is_dir():
        return [], [f"{display(folder)}: articles folder not found"]
    paths = sorted(folder.glob("*.md"))
    if not paths:
        return [], [f"{display(folder)}: no articles (*.md) found"]
    articles: list[Article] = []
    first_path_by_id: dict[str, Path] = {}
    for path in paths:
        article, declared_id = _read_article(path, errors)
        if declared_id in first_path_by_id:
            other = first_path_by_id[declared_id].name
            problem = f"front matter field 'id' {declared_id!r} is already used by {other}"
            errors.append(f"{display(path)}: {problem}")
            continue
        if declared_id:
            first_path_by_id[declared_id] = path
        if article is not None:
            articles.append(article)
    return articles, errors


def _read_article(path: Path, errors: list[str]) -> tuple[Article | None, str]:
    """The article if it is valid, and the id it declares (for spotting duplicates)."""
    where = display(path)
    text = read_text(path, errors)
    if text is None:
        return None, ""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        errors.append(f"{where}: front matter is missing: the file must start with a '---' line")
        return None, ""
    closing = next((i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---"), None)
    if closing is None:
        errors.append(f"{where}: front matter is not closed by a second '---' line")
        return None, ""
    parsed, data = parse_yaml("".join(lines[1:closing]), where, 2, errors)
    if not parsed:
        return None, ""
    if data is None:
        errors.append(f"{where}: front matter is empty: it needs the fields {', '.join(ARTICLE_FIELDS)}")
        return None, ""
    if not isinstance(data, dict):
        errors.append(f"{where}: front matter must be a mapping of fields ({', '.join(ARTICLE_FIELDS)})")
        return None, ""

    before = len(errors)
    fields = _Fields(where, "front matter field", errors)
    fields.unknown_keys(data, ARTICLE_FIELDS)
    article_id = fields.text(data, "id", "id")
    if article_id and article_id != path.stem:
        fields.error("id", f"is {article_id!r} but must equal the file name {path.stem!r}")
    title = fields.text(data, "title", "title")
    questions = fields.strings(data, "questions", "questions")
    tags = fields.strings(data, "tags", "tags", required=False)
    offer = fields.choice(data, "offer", "offer", ARTICLE_OFFERS) if "offer" in data else None
    body = "".join(lines[closing + 1 :]).strip()
    if not body:
        errors.append(f"{where}: article body is empty: write the answer below the front matter")
    if len(errors) > before:
        return None, article_id
    return Article(article_id, title, questions, tags, body, path, offer), article_id
