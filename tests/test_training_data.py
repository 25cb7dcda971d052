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
HELD_OUT = ROOT / "benchmarks" / "data" / "nlu_heldout.yml"

# Near-duplicate detection: what stays of an example once the things that vary between otherwise
# identical customer messages (case, entity values, punctuation, spacing) are taken out.
PRODUCT = re.compile(r"\[[^\]]+\](?:\(product\)|\{[^}]*\"entity\"\s*:\s*\"product\"[^}]*\})")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
RMA = re.compile(r"\brma[\s#:-]*\d+")
DIGITS = re.compile(r"\d+")
PUNCTUATION = re.compile(r"[\W_]+")
NEAR_DUPLICATE_JACCARD = 0.8


def strip_annotations(text: str) -> str:
    return ANNOTATION.sub(lambda m: m.group(1) or m.group(3), text)


def examples(path: Path, annotated: bool = False) -> list[tuple[str, str]]:
    """(intent, text) per example: lower-cased without annotations, or as written if `annotated`."""
    found = []
    for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
        if "intent" in block:
            for line in block["examples"].splitlines():
                if line.strip().startswith("- "):
                    text = line.strip()[2:].strip()
                    if not annotated:
                        text = strip_annotations(text).strip().lower()
                    found.append((block["intent"], text))
    return found


def training_examples(annotated: bool = False) -> list[tuple[str, str]]:
    return [e for path in sorted((ROOT / "data" / "nlu").glob("*.yml")) for e in examples(path, annotated)]


def normalise(example: str) -> str:
    """An annotated example with case, entity values, punctuation and spacing taken out.

    Lower-cased; annotated products become PRODUCT, other annotations their text; emails become
    EMAIL, RMA numbers RMA, digit runs 0; punctuation and whitespace collapse to single spaces.
    """
    text = strip_annotations(PRODUCT.sub(" PRODUCT ", example.lower()))
    text = DIGITS.sub("0", RMA.sub(" RMA ", EMAIL.sub(" EMAIL ", text)))
    return " ".join(PUNCTUATION.sub(" ", text).split())


def jaccard(a: str, b: str) -> float:
    left, right = set(a.split()), set(b.split())
    return len(left & right) / len(left | right) if left | right else 1.0


def similar(a: str, b: str) -> bool:
    """Normalised examples a and b: equal, or token sets at least NEAR_DUPLICATE_JACCARD alike."""
    return a == b or jaccard(a, b) >= NEAR_DUPLICATE_JACCARD


def near_duplicates(
    examples_: list[tuple[str, str]], others: list[tuple[str, str]] | None = None
) -> list[str]:
    """Each near-duplicate pair of annotated examples, one line apiece: examples_ against others,
    or among examples_ themselves if others is None."""
    left = [(intent, text, normalise(text)) for intent, text in examples_]
    right = left if others is None else [(intent, text, normalise(text)) for intent, text in others]
    return [
        f"[{a_intent}] {a_text!r}  ~  [{b_intent}] {b_text!r}"
        for i, (a_intent, a_text, a_norm) in enumerate(left)
        for j, (b_intent, b_text, b_norm) in enumerate(right)
        if (others is not None or j > i) and similar(a_norm, b_norm)
    ]


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
    held_out = examples(HELD_OUT, annotated=True)
    assert len(held_out) >= 200
    found = near_duplicates(held_out, training_examples(annotated=True))
    assert found == [], "held-out examples near-duplicating training examples:\n" + "\n".join(found)
    found = near_duplicates(held_out)
    assert found == [], "held-out examples near-duplicating each other:\n" + "\n".join(found)


def test_the_benchmark_near_duplicate_rules_catch_reworded_copies() -> None:
    assert normalise("Where's order #[100236](order_id)??") == normalise("where's order 100240")
    assert normalise("it's [jane.doe@example.com](email)") == normalise("It's [m.jones84@gmail.com](email)!")
    assert normalise("any news on [RMA-20431](rma_id)?") == normalise("Any news on rma 88120")
    assert normalise("the [lamp](product) broke") == normalise('The [mug set]{"entity": "product"} broke.')
    assert normalise("hello, is this harbor lane support?") == "hello is this harbor lane support"
    assert similar(normalise("when is the pickup for my return, please?"), "when is the pickup for my return")
    assert not similar(normalise("hiya there"), normalise("hi there"))
    assert near_duplicates([("deny", "nope, not that")], [("deny", "nope not that")]) == [
        "[deny] 'nope, not that'  ~  [deny] 'nope not that'"
    ]
