"""`make evaluate`: the serving model on the held-out NLU set, beside the previous model's report.

Rasa's own `rasa test nlu` writes the per-intent precision, recall and F1 (intent_report.json)
and the confusion matrix (intent_confusion_matrix.png) into reports/<model>/. Each
evaluation is remembered in reports/history.json (read and written by `History` only), and
the comparison shows what got better and what got worse since the last evaluation of a
different model.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.settings import ROOT
from training.model import current_model

TEST_SET = ROOT / "benchmarks" / "data" / "nlu_heldout.yml"
REPORTS = ROOT / "reports"
Summary = dict[str, Any]  # one evaluation: model, when, accuracy, macro_f1, intents, confusion_matrix


class History:
    """The evaluations of a project's models, oldest first (reports/history.json)."""

    def __init__(self, reports: Path) -> None:
        self.file = reports / "history.json"

    def entries(self) -> list[Summary]:
        return json.loads(self.file.read_text(encoding="utf-8")) if self.file.exists() else []

    def record(self, summary: Summary) -> Summary | None:
        """Appends an evaluation; returns the last one of a different model (the "before")."""
        history = self.entries()
        previous = _before(history, summary["model"])
        history.append(summary)
        self.file.write_text(json.dumps(history, indent=2), encoding="utf-8")
        return previous

    def latest(self) -> tuple[Summary | None, Summary | None]:
        """The last evaluation and the one before it of a different model."""
        history = self.entries()
        if not history:
            return None, None
        return history[-1], _before(history, history[-1]["model"])

    def has(self, model_name: str) -> bool:
        return any(entry["model"] == model_name for entry in self.entries())


def _before(history: list[Summary], model_name: str) -> Summary | None:
    return next((entry for entry in reversed(history) if entry["model"] != model_name), None)


def evaluate(model: Path | None = None, test_set: Path = TEST_SET, reports: Path = REPORTS) -> dict[str, Any]:
    model = (model or current_model()).resolve()
    out = reports / model.name.removesuffix(".tar.gz")
    rasa = Path(sys.executable).with_name("rasa")
    subprocess.run(
        [str(rasa), "test", "nlu", "--model", str(model), "--nlu", str(test_set), "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    summary = {
        "model": model.name,
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "accuracy": report["accuracy"],
        "macro_f1": report["macro avg"]["f1-score"],
        "intents": {
            name: {key: round(scores[key], 4) for key in ("precision", "recall", "f1-score", "support")}
            for name, scores in report.items()
            if isinstance(scores, dict) and name not in ("macro avg", "weighted avg", "micro avg")
        },
        "confusion_matrix": str(out / "intent_confusion_matrix.png"),
    }
    return {"current": summary, "previous": History(reports).record(summary)}


def compare(current: Summary, previous: Summary | None) -> str:
    lines = [
        f"Model {current['model']} on {TEST_SET.name}: accuracy {current['accuracy']:.1%}, "
        f"macro F1 {current['macro_f1']:.3f}",
        f"Confusion matrix: {current['confusion_matrix']}",
    ]
    if previous is None:
        lines.append("No earlier model was evaluated: nothing to compare with yet.")
        return "\n".join(lines)
    accuracy, macro_f1 = previous["accuracy"], previous["macro_f1"]
    lines.append(f"Before ({previous['model']}): accuracy {accuracy:.1%}, macro F1 {macro_f1:.3f}")
    changes = []
    for name in sorted(set(current["intents"]) | set(previous["intents"])):
        now = current["intents"].get(name, {}).get("f1-score")
        before = previous["intents"].get(name, {}).get("f1-score")
        if now != before:
            changes.append((name, before, now))
    better = [c for c in changes if (c[2] or 0) > (c[1] or 0)]
    worse = [c for c in changes if (c[2] or 0) < (c[1] or 0)]
    for title, rows in (("Better", better), ("Worse", worse)):
        described = ", ".join(f"{name} {old or 0:.2f} -> {new or 0:.2f}" for name, old, new in rows)
        lines.append(f"{title}: {described or 'none'}")
    return "\n".join(lines)
