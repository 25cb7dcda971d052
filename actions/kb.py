"""The knowledge base as typed, validated data: FAQ articles and the return policy.

A shop edits knowledge_base/ to change what the assistant answers and which returns it
accepts, so every rule lives in those files, not in Python. Whoever edits them is not
necessarily a developer: the loader checks everything at once and names the file and the
field of each problem, so one run shows the whole list of fixes.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

# The return reasons the returns form collects; a policy must price each one.
RETURN_REASONS = (
    "doesnt_fit",
    "changed_mind",
    "defective",
    "damaged",
    "wrong_item",
    "missing",
    "other",
)
ARTICLE_FIELDS = ("id", "title", "questions", "tags", "offer")
# What the bot offers after the article instead of asking whether it helped.
ARTICLE_OFFERS = ("human", "return_status", "problem_report")
REFUND_DESTINATIONS = ("original_payment_method", "store_credit")
WINDOW_STARTS = ("delivery", "purchase")
NOT_COVERED_FILE = "not_covered.yml"


class KnowledgeBaseError(Exception):
    """One or more problems in the knowledge base files, each naming its file and field."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        count = len(self.errors)
        heading = f"{count} problem{'s' if count != 1 else ''} in the knowledge base:"
        super().__init__("\n".join([heading, *(f"- {error}" for error in self.errors)]))


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
class ConditionRule:
    requirements: tuple[str, ...]
    exempt_reasons: frozenset[str]
    explanation: str


@dataclass(frozen=True)
class RefundRule:
    business_days_after_receipt: int
    bank_days: str  # a range as customers read it, "3-5"
    to: str
    gift_card_orders: str


@dataclass(frozen=True)
class ExchangeRule:
    free_exchanges_per_item: int
    fee: Decimal
    kinds: tuple[str, ...]
    within_return_window: bool
    explanation: str


@dataclass(frozen=True)
class FlagQuestion:
    """A non-returnable flag the customer is asked about, for items of `categories`."""

    flag: str
    categories: tuple[str, ...]
    question: str


@dataclass(frozen=True)
class ReturnPolicy:
    window_days: int
    window_days_by_category: Mapping[str, int]
    window_starts: str
    window_explanation: str  # may contain {days} and {last_day}
    warranty_months_by_category: Mapping[str, int]
    warranty_explanation: str  # may contain {months} and {last_day}
    non_returnable_categories: Mapping[str, str]  # category -> explanation
    non_returnable_flags: Mapping[str, str]  # item flag -> explanation
    flag_questions: tuple[FlagQuestion, ...]
    condition: ConditionRule
    fees_by_reason: Mapping[str, Decimal]
    free_pickup: bool
    pickup_after_business_days: int
    refund: RefundRule
    exchange: ExchangeRule
    problem_report_hours: int
    problem_reasons: frozenset[str]  # the reasons the report window applies to
    problem_report_explanation: str  # may contain {hours} and {delivered}
    problem_high_value: Decimal
    problem_high_value_explanation: str  # may contain {item} and {price}
    path: Path

    def window_for(self, category: str) -> int:
        return self.window_days_by_category.get(category, self.window_days)

    def label_fee(self, reason: str) -> Decimal:
        return self.fees_by_reason[reason]

    def flag_question(self, flag: str | None) -> FlagQuestion | None:
        return next((question for question in self.flag_questions if question.flag == flag), None)


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
    policy, policy_errors = _read_return_policy(folder / "return_policy.yml")
    not_covered, not_covered_errors = _read_not_covered(folder / NOT_COVERED_FILE)
    errors = article_errors + policy_errors + not_covered_errors
    if not errors and len(articles) == 1 and not not_covered:
        errors.append(
            f"{_display(folder / NOT_COVERED_FILE)}: with a single article, retrieval needs questions"
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


def load_return_policy(path: Path | str) -> ReturnPolicy:
    policy, errors = _read_return_policy(Path(path))
    if errors or policy is None:
        raise KnowledgeBaseError(errors)
    return policy


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _read_text(path: Path, errors: list[str]) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        errors.append(f"{_display(path)}: cannot be read ({exc.strerror})")
        return None
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        errors.append(f"{_display(path)}: is not valid UTF-8 (byte {exc.start}); save it as UTF-8")
        return None


def _parse_yaml(text: str, where: str, first_line: int, errors: list[str]) -> tuple[bool, Any]:
    """first_line: the file line the text starts on, so errors point into the file."""
    try:
        return True, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + first_line}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        errors.append(f"{where}: invalid YAML{line}: {problem}")
        return False, None


class _Fields:
    """Typed reads from one YAML mapping, recording problems instead of raising."""

    def __init__(self, where: str, label: str, errors: list[str]) -> None:
        self.where = where
        self.label = label  # "front matter field" or "field"
        self.errors = errors

    def error(self, field: str, problem: str) -> None:
        self.errors.append(f"{self.where}: {self.label} '{field}' {problem}")

    def mapping(
        self, data: Mapping[str, Any], key: str, field: str, allowed: Iterable[str]
    ) -> dict[str, Any]:
        value = data.get(key)
        if not isinstance(value, dict):
            self.error(field, "must be a mapping" if key in data else "is required")
            return {}
        self.unknown_keys(value, allowed, field + ".")
        return value

    def unknown_keys(self, data: Mapping[Any, Any], allowed: Iterable[str], prefix: str = "") -> None:
        allowed = set(allowed)
        for key in data:
            if key not in allowed:
                self.error(f"{prefix}{key}", f"is not a known field (known: {', '.join(sorted(allowed))})")

    def text(self, data: Mapping[str, Any], key: str, field: str, placeholders: Iterable[str] = ()) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            self.error(field, "must be a non-empty string" if key in data else "is required")
            return ""
        allowed = set(placeholders)
        try:
            used = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError:
            used = {"<unbalanced braces>"}
        if used - allowed:
            unknown = sorted(used - allowed)
            self.error(field, f"uses unknown placeholders {unknown} (allowed: {sorted(allowed)})")
        return value.strip()

    def strings(
        self, data: Mapping[str, Any], key: str, field: str, required: bool = True
    ) -> tuple[str, ...]:
        if key not in data and not required:
            return ()
        value = data.get(key)
        ok = isinstance(value, list) and all(isinstance(item, str) and item.strip() for item in value)
        if not ok or (required and not value):
            kind = "a non-empty list of strings" if required else "a list of strings"
            self.error(field, f"must be {kind}" if key in data else "is required")
            return ()
        return tuple(item.strip() for item in value)

    def days(self, data: Mapping[str, Any], key: str, field: str) -> int:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.error(field, f"must be a whole number >= 0, not {value!r}" if key in data else "is required")
            return 0
        return value

    def money(self, value: Any, field: str) -> Decimal:
        number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not number or value < 0:
            self.error(field, f"must be an amount >= 0, not {value!r}")
            return Decimal(0)
        return Decimal(str(value))

    def flag(self, data: Mapping[str, Any], key: str, field: str) -> bool:
        value = data.get(key)
        if not isinstance(value, bool):
            self.error(field, "must be true or false" if key in data else "is required")
            return False
        return value

    def choice(self, data: Mapping[str, Any], key: str, field: str, choices: Sequence[str]) -> str:
        value = data.get(key)
        if value not in choices:
            self.error(field, f"must be one of {', '.join(choices)}, not {value!r}")
            return choices[0]
        return str(value)


# --- articles ----------------------------------------------------------------------------


def _read_not_covered(path: Path) -> tuple[list[str], list[str]]:
    if not path.exists():
        return [], []
    errors: list[str] = []
    where = _display(path)
    text = _read_text(path, errors)
    if text is None:
        return [], errors
    parsed, data = _parse_yaml(text, where, 1, errors)
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
        return [], [f"{_display(folder)}: articles folder not found"]
    paths = sorted(folder.glob("*.md"))
    if not paths:
        return [], [f"{_display(folder)}: no articles (*.md) found"]
    articles: list[Article] = []
    first_path_by_id: dict[str, Path] = {}
    for path in paths:
        article, declared_id = _read_article(path, errors)
        if declared_id in first_path_by_id:
            other = first_path_by_id[declared_id].name
            problem = f"front matter field 'id' {declared_id!r} is already used by {other}"
            errors.append(f"{_display(path)}: {problem}")
            continue
        if declared_id:
            first_path_by_id[declared_id] = path
        if article is not None:
            articles.append(article)
    return articles, errors


def _read_article(path: Path, errors: list[str]) -> tuple[Article | None, str]:
    """The article if it is valid, and the id it declares (for spotting duplicates)."""
    where = _display(path)
    text = _read_text(path, errors)
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
    parsed, data = _parse_yaml("".join(lines[1:closing]), where, 2, errors)
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


# --- return policy -----------------------------------------------------------------------

POLICY_FIELDS = (
    "window_days",
    "window_days_by_category",
    "window_starts",
    "window_explanation",
    "warranty_months_by_category",
    "warranty_explanation",
    "non_returnable",
    "condition",
    "fees_by_reason",
    "free_pickup",
    "pickup_after_business_days",
    "refund",
    "exchange",
    "problem_report_hours",
    "problem_reasons",
    "problem_report_explanation",
    "problem_high_value",
    "problem_high_value_explanation",
)


def _read_return_policy(path: Path) -> tuple[ReturnPolicy | None, list[str]]:
    errors: list[str] = []
    where = _display(path)
    text = _read_text(path, errors)
    if text is None:
        return None, errors
    parsed, data = _parse_yaml(text, where, 1, errors)
    if not parsed:
        return None, errors
    if not isinstance(data, dict):
        return None, [f"{where}: must be a mapping of the fields {', '.join(POLICY_FIELDS)}"]

    fields = _Fields(where, "field", errors)
    fields.unknown_keys(data, POLICY_FIELDS)

    by_category = data.get("window_days_by_category", {})
    if not isinstance(by_category, dict):
        fields.error("window_days_by_category", "must be a mapping of category to days")
        by_category = {}
    warranties = data.get("warranty_months_by_category", {})
    if not isinstance(warranties, dict):
        fields.error("warranty_months_by_category", "must be a mapping of category to months")
        warranties = {}

    non_returnable = fields.mapping(data, "non_returnable", "non_returnable", ("categories", "flags"))
    condition = fields.mapping(
        data, "condition", "condition", ("requirements", "exempt_reasons", "explanation")
    )
    refund = fields.mapping(
        data, "refund", "refund", ("business_days_after_receipt", "bank_days", "to", "gift_card_orders")
    )
    exchange = fields.mapping(
        data,
        "exchange",
        "exchange",
        ("free_exchanges_per_item", "fee", "kinds", "within_return_window", "explanation"),
    )

    exempt = _reasons(fields, condition, "exempt_reasons", "condition.exempt_reasons", required=False)

    policy = ReturnPolicy(
        window_days=fields.days(data, "window_days", "window_days"),
        window_days_by_category=MappingProxyType(
            {
                str(category): fields.days(by_category, category, f"window_days_by_category.{category}")
                for category in by_category
            }
        ),
        window_starts=fields.choice(data, "window_starts", "window_starts", WINDOW_STARTS),
        window_explanation=fields.text(
            data, "window_explanation", "window_explanation", ("days", "last_day")
        ),
        warranty_months_by_category=MappingProxyType(
            {
                str(category): fields.days(warranties, category, f"warranty_months_by_category.{category}")
                for category in warranties
            }
        ),
        warranty_explanation=fields.text(
            data, "warranty_explanation", "warranty_explanation", ("months", "last_day")
        ),
        non_returnable_categories=_explained_rules(fields, non_returnable, "categories"),
        non_returnable_flags=_explained_rules(fields, non_returnable, "flags", ("ask_for", "question")),
        flag_questions=_flag_questions(fields, non_returnable),
        condition=ConditionRule(
            requirements=fields.strings(condition, "requirements", "condition.requirements"),
            exempt_reasons=frozenset(exempt),
            explanation=fields.text(condition, "explanation", "condition.explanation"),
        ),
        fees_by_reason=_fees(fields, data),
        free_pickup=fields.flag(data, "free_pickup", "free_pickup"),
        pickup_after_business_days=fields.days(
            data, "pickup_after_business_days", "pickup_after_business_days"
        ),
        refund=RefundRule(
            business_days_after_receipt=fields.days(
                refund, "business_days_after_receipt", "refund.business_days_after_receipt"
            ),
            bank_days=_day_range(fields, refund, "bank_days", "refund.bank_days"),
            to=fields.choice(refund, "to", "refund.to", REFUND_DESTINATIONS),
            gift_card_orders=fields.choice(
                refund, "gift_card_orders", "refund.gift_card_orders", REFUND_DESTINATIONS
            ),
        ),
        exchange=ExchangeRule(
            free_exchanges_per_item=fields.days(
                exchange, "free_exchanges_per_item", "exchange.free_exchanges_per_item"
            ),
            fee=fields.money(exchange.get("fee"), "exchange.fee"),
            kinds=fields.strings(exchange, "kinds", "exchange.kinds"),
            within_return_window=fields.flag(
                exchange, "within_return_window", "exchange.within_return_window"
            ),
            explanation=fields.text(exchange, "explanation", "exchange.explanation"),
        ),
        problem_report_hours=fields.days(data, "problem_report_hours", "problem_report_hours"),
        problem_reasons=frozenset(_reasons(fields, data, "problem_reasons", "problem_reasons")),
        problem_report_explanation=fields.text(
            data, "problem_report_explanation", "problem_report_explanation", ("hours", "delivered")
        ),
        problem_high_value=fields.money(data.get("problem_high_value"), "problem_high_value"),
        problem_high_value_explanation=fields.text(
            data,
            "problem_high_value_explanation",
            "problem_high_value_explanation",
            ("item", "price"),
        ),
        path=path,
    )
    return (None if errors else policy), errors


def _reasons(
    fields: _Fields, data: Mapping[str, Any], key: str, field: str, required: bool = True
) -> tuple[str, ...]:
    """A list of return reasons, each one of RETURN_REASONS."""
    reasons = fields.strings(data, key, field, required=required)
    for reason in reasons:
        if reason not in RETURN_REASONS:
            fields.error(field, f"names unknown reason {reason!r}")
    return reasons


def _flag_questions(fields: _Fields, non_returnable: Mapping[str, Any]) -> tuple[FlagQuestion, ...]:
    flags = non_returnable.get("flags", {})
    questions = []
    for name, rule in flags.items() if isinstance(flags, dict) else ():
        if not isinstance(rule, dict) or ("ask_for" not in rule and "question" not in rule):
            continue
        field = f"non_returnable.flags.{name}"
        questions.append(
            FlagQuestion(
                flag=str(name),
                categories=fields.strings(rule, "ask_for", f"{field}.ask_for"),
                question=fields.text(rule, "question", f"{field}.question"),
            )
        )
    return tuple(questions)


def _explained_rules(
    fields: _Fields, non_returnable: Mapping[str, Any], key: str, optional: tuple[str, ...] = ()
) -> Mapping[str, str]:
    field = f"non_returnable.{key}"
    rules = non_returnable.get(key, {})
    if not isinstance(rules, dict):
        fields.error(field, "must be a mapping of name to {explanation: ...}")
        return MappingProxyType({})
    explained: dict[str, str] = {}
    for name, rule in rules.items():
        if not isinstance(rule, dict):
            fields.error(f"{field}.{name}", "must be a mapping with an 'explanation'")
            continue
        fields.unknown_keys(rule, ("explanation", *optional), f"{field}.{name}.")
        explained[str(name)] = fields.text(rule, "explanation", f"{field}.{name}.explanation")
    return MappingProxyType(explained)


def _fees(fields: _Fields, data: Mapping[str, Any]) -> Mapping[str, Decimal]:
    fees = data.get("fees_by_reason")
    if not isinstance(fees, dict):
        problem = "must be a mapping of reason to fee" if "fees_by_reason" in data else "is required"
        fields.error("fees_by_reason", problem)
        return MappingProxyType({})
    for reason in fees:
        if reason not in RETURN_REASONS:
            known = ", ".join(RETURN_REASONS)
            fields.error(f"fees_by_reason.{reason}", f"is not a known reason (known: {known})")
    for reason in RETURN_REASONS:
        if reason not in fees:
            fields.error(f"fees_by_reason.{reason}", "is required: every reason needs a fee, 0 if free")
    return MappingProxyType(
        {reason: fields.money(fee, f"fees_by_reason.{reason}") for reason, fee in fees.items()}
    )


def _day_range(fields: _Fields, data: Mapping[str, Any], key: str, field: str) -> str:
    """A number of days or a range such as "3-5", as customers read it."""
    value = data.get(key)
    parts = str(value).split("-") if isinstance(value, str | int) and not isinstance(value, bool) else []
    valid = 1 <= len(parts) <= 2 and all(part.strip().isdigit() for part in parts)
    if not valid or int(parts[0]) > int(parts[-1]):
        fields.error(field, f'must be a number of days or a range like "3-5", not {value!r}')
        return ""
    return "-".join(part.strip() for part in parts)
