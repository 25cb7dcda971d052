"""Typed answers to the return form's button questions, read three ways.

The answers (benchmarks/data/return_answers.yml: 175 reasons, 60 refund/exchange/
replacement, 40 pickup/drop-off, a third of them hard: negations, another choice's words,
no keyword at all) were written apart from the form's vocabulary (actions/returns/vocabulary.yml).

- baseline: the button labels only, as a form without a vocabulary would match them;
- phrases: the vocabulary's phrases, longest match first;
- phrases + meaning: what the form does: phrases (not those turned down, as in "no
  exchange, a refund"), then the label, phrase or example answer nearest in meaning
  (MiniLM cosine) at or above `meaning_threshold`; below it the question is asked again.

An answer is right, wrong (the form would go on with the wrong choice) or re-asked. The
threshold is checked on a development part (the first 40% of each label) and the figures
are reported on the rest; the sweep is printed so the choice can be seen.

Exchange and replacement are one answer here: the form offers one or the other (refund or
exchange for a return, replacement or refund for a damaged item) and reads either word as
the one it offered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from actions.returns.vocabulary import Choice, match_choice, read_choice, vocabulary
from benchmarks.cli import run_benchmark

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = ROOT / "benchmarks" / "data" / "return_answers.yml"
DEV_SHARE = 0.4
SWEEP = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
SAME_ANSWER = {"replacement": "exchange"}  # see the docstring


def split(data: dict[str, list[str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    dev, test = [], []
    for label, answers in data.items():
        cut = round(len(answers) * DEV_SHARE)
        dev += [(text, label) for text in answers[:cut]]
        test += [(text, label) for text in answers[cut:]]
    return dev, test


def score(pairs: list[tuple[str, str]], predicted: list[str | None]) -> dict[str, float]:
    def same(value: str | None) -> str | None:
        return SAME_ANSWER.get(value, value) if value else None

    right = sum(same(p) == same(gold) for (_, gold), p in zip(pairs, predicted, strict=True))
    asked = sum(p is None for p in predicted)
    n = max(1, len(pairs))
    return {"right": right / n, "wrong": (len(pairs) - right - asked) / n, "asked_again": asked / n}


def run() -> dict[str, Any]:
    data = yaml.safe_load(ANSWERS.read_text(encoding="utf-8"))
    words = vocabulary()
    questions = {"reasons": words.reasons, "resolutions": words.resolutions, "methods": words.methods}
    results: dict[str, Any] = {"threshold": words.meaning_threshold, "questions": {}, "misses": []}
    for question, choices in questions.items():
        labels_only = {value: Choice(value, c.label, (c.label.lower(),)) for value, c in choices.items()}
        dev, test = split(data[question])
        lexical = {text: match_choice(text, choices) for text, _ in dev + test}
        similar: dict[float, dict[str, str | None]] = {
            t: {text: read_choice(text, choices, t) for text, _ in dev + test}
            for t in sorted({*SWEEP, words.meaning_threshold})
        }
        chosen = similar[words.meaning_threshold]
        results["questions"][question] = {
            "answers": len(test),
            "baseline_labels": score(test, [match_choice(t, labels_only) for t, _ in test]),
            "phrases": score(test, [lexical[t] for t, _ in test]),
            "phrases_meaning": score(test, [chosen[t] for t, _ in test]),
            "dev_sweep": {str(t): score(dev, [v[x] for x, _ in dev]) for t, v in similar.items()},
        }
        results["misses"] += [
            {"question": question, "text": text, "gold": gold, "read": chosen[text]}
            for text, gold in test
            if SAME_ANSWER.get(chosen[text] or "", chosen[text]) != SAME_ANSWER.get(gold, gold)
        ]
    return results


def report(results: dict[str, Any]) -> str:
    lines = [
        "Return form, typed answers (held-out part; right / wrong / asked again)",
        f"  {'':12} {'n':>4}  {'baseline: labels':>20}  {'phrases':>20}  {'phrases + meaning':>20}",
    ]
    for question, r in results["questions"].items():

        def cell(key: str, r: dict[str, Any] = r) -> str:
            s = r[key]
            return f"{s['right']:.0%} / {s['wrong']:.0%} / {s['asked_again']:.0%}"

        lines.append(
            f"  {question:12} {r['answers']:4}  {cell('baseline_labels'):>20}  {cell('phrases'):>20}  "
            f"{cell('phrases_meaning'):>20}"
        )
    threshold = results["threshold"]
    lines.append(
        f"  meaning threshold {threshold} (actions/returns/vocabulary.yml); on the development part:"
    )
    for question, r in results["questions"].items():
        sweep = ", ".join(f"{t}: {s['right']:.0%}/{s['wrong']:.0%}" for t, s in r["dev_sweep"].items())
        lines.append(f"    {question}: {sweep}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    run_benchmark(
        "returns",
        __doc__ or "",
        run,
        report,
        lambda miss: f"{miss['question']:12} {miss['gold']:>13} -> {miss['read']!s:13} {miss['text']}",
        argv,
    )


if __name__ == "__main__":
    main()
