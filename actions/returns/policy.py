"""The return policy as typed data: knowledge_base/return_policy.yml read through a declared
schema (`PolicyFile`, pydantic) into `ReturnPolicy`, which rules.py evaluates.

A shop changes which returns it accepts by editing that file, and whoever edits it is not
necessarily a developer. The schema's field types say what each value must be in the
editor's terms (a whole number of days, an amount, a placeholder the explanation may use),
and every problem is reported at once, naming the file and the field.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Dict, Optional  # noqa: UP035 - pydantic 1.10 resolves these in annotations

from pydantic import BaseModel, Extra, ValidationError, create_model, root_validator, validator

from actions.data_files import (
    REQUIRED,
    DayRange,
    Days,
    FieldType,
    Flag,
    KnowledgeBaseError,
    Money,
    OptionalStrings,
    Strings,
    Text,
    display,
    one_of,
    parse_yaml,
    read_text,
    text,
)

# The return reasons the returns form collects; a policy must price each one.
RETURN_REASONS = ("doesnt_fit", "changed_mind", "defective", "damaged", "wrong_item", "missing", "other")
REFUND_DESTINATIONS = ("original_payment_method", "store_credit")
WINDOW_STARTS = ("delivery", "purchase")


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


# --- the file's field types: each says what is wrong in the editor's words -----------------


class Reasons(Strings):
    """A non-empty list of return reasons, each one of RETURN_REASONS."""

    @classmethod
    def problem(cls, value: Any) -> str | None:
        unknown = [] if super().problem(value) else [r for r in cls.convert(value) if r not in RETURN_REASONS]
        return super().problem(value) or (f"names unknown reason {unknown[0]!r}" if unknown else None)


class OptionalReasons(Reasons):
    """Return reasons that may be none at all."""

    @classmethod
    def problem(cls, value: Any) -> str | None:
        if value == []:
            return None
        return OptionalStrings.problem(value) or super().problem(value)


WindowText = text("days", "last_day")
WarrantyText = text("months", "last_day")
ReportText = text("hours", "delivered")
HighValueText = text("item", "price")
WindowStart = one_of(*WINDOW_STARTS)
Destination = one_of(*REFUND_DESTINATIONS)


def must_be_mapping(problem: str) -> Any:
    """A validator for a mapping field that says what the mapping holds when it is not one."""

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(problem)
        return value

    return check


# --- the file's layout ---------------------------------------------------------------------


class Section(BaseModel):
    class Config:
        extra = Extra.forbid
        not_a_mapping = "must be a mapping"


class ExplainedRule(Section):
    explanation: Text

    class Config:
        not_a_mapping = "must be a mapping with an 'explanation'"


class FlagRule(ExplainedRule):
    question: Optional[Text] = None  # noqa: UP007 - pydantic 1.10
    ask_for: Optional[Strings] = None  # noqa: UP007

    @root_validator(pre=True)
    def _asked_together(cls, values: dict[str, Any]) -> dict[str, Any]:
        """A flag the customer is asked about needs both its question and its categories."""
        if ("ask_for" in values) != ("question" in values):
            missing = "question" if "ask_for" in values else "ask_for"
            return {**values, missing: REQUIRED}
        return values


class NonReturnable(Section):
    categories: Dict[str, ExplainedRule] = {}  # noqa: UP006 - pydantic 1.10
    flags: Dict[str, FlagRule] = {}  # noqa: UP006

    _rules = validator("categories", "flags", pre=True, allow_reuse=True)(
        must_be_mapping("must be a mapping of name to {explanation: ...}")
    )


class Condition(Section):
    requirements: Strings
    exempt_reasons: OptionalReasons = ()
    explanation: Text


class Refund(Section):
    business_days_after_receipt: Days
    bank_days: DayRange
    to: Destination
    gift_card_orders: Destination


class Exchange(Section):
    free_exchanges_per_item: Days
    fee: Money
    kinds: Strings
    within_return_window: Flag
    explanation: Text


class FeesConfig(Section.Config):
    missing_problem = "is required: every reason needs a fee, 0 if free"
    unknown_problem = f"is not a known reason (known: {', '.join(RETURN_REASONS)})"


# Every reason priced, by name: a missing one and an unknown one are both reported.
Fees = create_model("Fees", __config__=FeesConfig, **{reason: (Money, ...) for reason in RETURN_REASONS})


class PolicyFile(Section):
    window_days: Days
    window_days_by_category: Dict[str, Days] = {}  # noqa: UP006
    window_starts: WindowStart
    window_explanation: WindowText
    warranty_months_by_category: Dict[str, Days] = {}  # noqa: UP006
    warranty_explanation: WarrantyText
    non_returnable: NonReturnable
    condition: Condition
    fees_by_reason: Fees
    free_pickup: Flag
    pickup_after_business_days: Days
    refund: Refund
    exchange: Exchange
    problem_report_hours: Days
    problem_reasons: Reasons
    problem_report_explanation: ReportText
    problem_high_value: Money
    problem_high_value_explanation: HighValueText

    _windows = validator("window_days_by_category", pre=True, allow_reuse=True)(
        must_be_mapping("must be a mapping of category to days")
    )
    _warranties = validator("warranty_months_by_category", pre=True, allow_reuse=True)(
        must_be_mapping("must be a mapping of category to months")
    )
    _fees = validator("fees_by_reason", pre=True, allow_reuse=True)(
        must_be_mapping("must be a mapping of reason to fee")
    )


# --- reading -------------------------------------------------------------------------------


def load_return_policy(path: Path | str) -> ReturnPolicy:
    policy, errors = read_return_policy(Path(path))
    if errors or policy is None:
        raise KnowledgeBaseError(errors)
    return policy


def read_return_policy(path: Path) -> tuple[ReturnPolicy | None, list[str]]:
    """The policy in `path` and no problems, or None and every problem found."""
    errors: list[str] = []
    where = display(path)
    content = read_text(path, errors)
    if content is None:
        return None, errors
    parsed, data = parse_yaml(content, where, 1, errors)
    if not parsed:
        return None, errors
    if not isinstance(data, dict):
        return None, [f"{where}: must be a mapping of the fields {', '.join(PolicyFile.__fields__)}"]
    try:
        schema = PolicyFile.parse_obj(data)
    except ValidationError as invalid:
        return None, problems(invalid, where)
    return policy_from(schema, path), []


def problems(invalid: ValidationError, where: str) -> list[str]:
    """The schema's errors in the editor's words, each naming its field ("refund.bank_days")."""
    found = []
    for error in invalid.errors():
        loc = tuple(str(part) for part in error["loc"])
        found.append(f"{where}: field '{'.'.join(loc)}' {_problem(error, loc)}")
    return list(dict.fromkeys(found))


def _problem(error: dict[str, Any], loc: tuple[str, ...]) -> str:
    kind = error["type"]
    if kind == "value_error.missing":
        return getattr(_type_at(loc[:-1]).__config__, "missing_problem", "is required")
    if kind == "value_error.extra":
        parent = _type_at(loc[:-1])
        known = f"is not a known field (known: {', '.join(sorted(parent.__fields__))})"
        return getattr(parent.__config__, "unknown_problem", known)
    target = _type_at(loc)
    if kind == "type_error.none.not_allowed" and isinstance(target, type) and issubclass(target, FieldType):
        return target.problem(None) or "is required"
    if kind in ("type_error.dict", "type_error.none.not_allowed"):
        return getattr(getattr(target, "__config__", None), "not_a_mapping", "must be a mapping")
    return str(error["msg"])


def _type_at(loc: tuple[str, ...]) -> Any:
    """The declared type of the field at `loc` in PolicyFile (a section, or a field type)."""
    current: Any = PolicyFile
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            current = typing.get_type_hints(current)[part]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
    return _unwrap(current)


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Union:
        return next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation


def policy_from(schema: PolicyFile, path: Path) -> ReturnPolicy:
    rules = schema.non_returnable
    return ReturnPolicy(
        window_days=schema.window_days,
        window_days_by_category=MappingProxyType(dict(schema.window_days_by_category)),
        window_starts=schema.window_starts,
        window_explanation=schema.window_explanation,
        warranty_months_by_category=MappingProxyType(dict(schema.warranty_months_by_category)),
        warranty_explanation=schema.warranty_explanation,
        non_returnable_categories=MappingProxyType({n: r.explanation for n, r in rules.categories.items()}),
        non_returnable_flags=MappingProxyType({n: r.explanation for n, r in rules.flags.items()}),
        flag_questions=tuple(
            FlagQuestion(name, rule.ask_for, rule.question)
            for name, rule in rules.flags.items()
            if rule.question is not None
        ),
        condition=ConditionRule(
            requirements=schema.condition.requirements,
            exempt_reasons=frozenset(schema.condition.exempt_reasons),
            explanation=schema.condition.explanation,
        ),
        fees_by_reason=MappingProxyType(dict(schema.fees_by_reason)),
        free_pickup=schema.free_pickup,
        pickup_after_business_days=schema.pickup_after_business_days,
        refund=RefundRule(**dict(schema.refund)),
        exchange=ExchangeRule(**dict(schema.exchange)),
        problem_report_hours=schema.problem_report_hours,
        problem_reasons=frozenset(schema.problem_reasons),
        problem_report_explanation=schema.problem_report_explanation,
        problem_high_value=schema.problem_high_value,
        problem_high_value_explanation=schema.problem_high_value_explanation,
        path=path,
    )
