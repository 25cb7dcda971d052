"""Reading the shop's data files (knowledge_base/): text that must be UTF-8, YAML whose
errors point at the line in the file, field types that say what is wrong with a value in
the editor's words, and one error type that lists every problem at once.

Whoever edits these files is not necessarily a developer, so each problem names its file
(relative to the working directory) and, where there is one, its field.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml


class KnowledgeBaseError(Exception):
    """One or more problems in the knowledge base files, each naming its file and field."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        count = len(self.errors)
        heading = f"{count} problem{'s' if count != 1 else ''} in the knowledge base:"
        super().__init__("\n".join([heading, *(f"- {error}" for error in self.errors)]))


def display(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def read_text(path: Path, errors: list[str]) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        errors.append(f"{display(path)}: cannot be read ({exc.strerror})")
        return None
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        errors.append(f"{display(path)}: is not valid UTF-8 (byte {exc.start}); save it as UTF-8")
        return None


def parse_yaml(text: str, where: str, first_line: int, errors: list[str]) -> tuple[bool, Any]:
    """first_line: the file line the text starts on, so errors point into the file."""
    try:
        return True, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + first_line}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        errors.append(f"{where}: invalid YAML{line}: {problem}")
        return False, None


# --- field types (pydantic 1.10 custom types: `problem` is also usable on its own) -----------

# Stands in for a field that must be there because its partner is (a flag's question and
# the categories it is asked for): its type reports it as required.
REQUIRED = object()


class FieldType:
    """A value of the policy file: `problem` says what is wrong with it (None if nothing),
    `convert` turns a valid one into what the policy holds."""

    @classmethod
    def problem(cls, value: Any) -> str | None:
        raise NotImplementedError

    @classmethod
    def convert(cls, value: Any) -> Any:
        return value

    @classmethod
    def __get_validators__(cls) -> Iterator[Callable[[Any], Any]]:
        yield cls.validate

    @classmethod
    def validate(cls, value: Any) -> Any:
        problem = "is required" if value is REQUIRED else cls.problem(value)
        if problem:
            raise ValueError(problem)
        return cls.convert(value)


class Days(FieldType):
    @classmethod
    def problem(cls, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"must be a whole number >= 0, not {value!r}"
        return None


class Money(FieldType):
    @classmethod
    def problem(cls, value: Any) -> str | None:
        number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return None if number and value >= 0 else f"must be an amount >= 0, not {value!r}"

    @classmethod
    def convert(cls, value: Any) -> Decimal:
        return Decimal(str(value))


class Flag(FieldType):
    @classmethod
    def problem(cls, value: Any) -> str | None:
        return None if isinstance(value, bool) else "must be true or false"


class DayRange(FieldType):
    """A number of days or a range such as "3-5", as customers read it."""

    @classmethod
    def _parts(cls, value: Any) -> list[str]:
        return str(value).split("-") if isinstance(value, str | int) and not isinstance(value, bool) else []

    @classmethod
    def problem(cls, value: Any) -> str | None:
        parts = cls._parts(value)
        valid = 1 <= len(parts) <= 2 and all(part.strip().isdigit() for part in parts)
        if not valid or int(parts[0]) > int(parts[-1]):
            return f'must be a number of days or a range like "3-5", not {value!r}'
        return None

    @classmethod
    def convert(cls, value: Any) -> str:
        return "-".join(part.strip() for part in cls._parts(value))


class Strings(FieldType):
    """A non-empty list of non-empty strings."""

    @classmethod
    def problem(cls, value: Any) -> str | None:
        ok = isinstance(value, list) and all(isinstance(item, str) and item.strip() for item in value)
        return None if ok and value else "must be a non-empty list of strings"

    @classmethod
    def convert(cls, value: Any) -> tuple[str, ...]:
        return tuple(item.strip() for item in value)


class OptionalStrings(Strings):
    """A list of non-empty strings that may be empty."""

    @classmethod
    def problem(cls, value: Any) -> str | None:
        return None if value == [] or not super().problem(value) else "must be a list of strings"


def text(*placeholders: str) -> type[FieldType]:
    """A non-empty string that may use these placeholders in braces, and no others."""
    allowed = frozenset(placeholders)

    class Text(FieldType):
        @classmethod
        def problem(cls, value: Any) -> str | None:
            if not isinstance(value, str) or not value.strip():
                return "must be a non-empty string"
            try:
                used = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
            except ValueError:
                used = {"<unbalanced braces>"}
            if used - allowed:
                return f"uses unknown placeholders {sorted(used - allowed)} (allowed: {sorted(allowed)})"
            return None

        @classmethod
        def convert(cls, value: Any) -> str:
            return value.strip()

    return Text


def one_of(*choices: str) -> type[FieldType]:
    class Choice(FieldType):
        @classmethod
        def problem(cls, value: Any) -> str | None:
            return None if value in choices else f"must be one of {', '.join(choices)}, not {value!r}"

    return Choice


# A non-empty string without placeholders: titles, explanations, questions.
Text = text()
