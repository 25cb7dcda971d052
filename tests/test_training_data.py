"""The training data: valid for Rasa, complete for the intent inventory, apart from the benchmark set."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = [
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "bot_challenge",
    "order_status",
    "cancel_order",
    "request_return",
    "return_status",
    "refund_status",
    "ask_faq",
    "report_problem",
    "request_human",
    "inform",
    "out_of_scope",
]
ANNOTATION = re.compile(r"\[([^\]]+)\]\((\w+)\)|\[([^\]]+)\]\{[^}]*\}")


def examples(path: Path) -> list[tuple[str, str]]:
    found = []
    for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
        if "intent" in block:
            for line in block["examples"].splitlines():
                if line.strip().startswith("- "):
                    text = ANNOTATION.sub(lambda m: m.group(1) or m.group(3), line.strip()[2:])
                    found.append((block["intent"], text.strip().lower()))
    return found


def training_examples() -> list[tuple[str, str]]:
    return [e for path in sorted((ROOT / "data" / "nlu").glob("*.yml")) for e in examples(path)]


def test_rasa_data_validate_passes() -> None:
    rasa = Path(sys.executable).with_name("rasa")
    result = subprocess.run([str(rasa), "data", "validate"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_every_intent_has_at_least_30_examples() -> None:
    counts = Counter(intent for intent, _ in training_examples())
    assert {intent: counts[intent] for intent in INVENTORY if counts[intent] < 30} == {}
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert set(INVENTORY) <= set(domain["intents"])


def test_the_benchmark_set_is_never_trained_on() -> None:
    trained = {text for _, text in training_examples()}
    held_out = examples(ROOT / "benchmarks" / "data" / "nlu_heldout.yml")
    assert len(held_out) >= 200
    assert [text for _, text in held_out if text in trained] == []
