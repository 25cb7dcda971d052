"""Frustration detection on labelled customer messages, beside a VADER-only threshold.

The messages (benchmarks/data/frustration.yml, half frustrated, with hard cases: sarcasm,
polite complaints, negation, capitals that are not anger, calm problem reports) were
written apart from the training set (bot/nlu/data/frustration.yml, plus the calm intents'
NLU examples) and never tune the detector. The detector and the baseline learn only from
the training set: the detector as the Rasa component does, the baseline's threshold on
VADER's compound score as the one with the best F1 there.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.cli import run_benchmark
from bot.nlu.frustration import TRAINING_FILE, CueFinder, FrustrationDetector, FrustrationModel, training_set

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = ROOT / "benchmarks" / "data" / "frustration.yml"


def prf(gold: list[bool], predicted: list[bool]) -> dict[str, float]:
    tp = sum(g and p for g, p in zip(gold, predicted, strict=True))
    precision = tp / max(1, sum(predicted))
    recall = tp / max(1, sum(gold))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def best_threshold(values: list[float], gold: list[bool]) -> float:
    candidates = sorted(set(values))
    return max(candidates, key=lambda t: prf(gold, [v >= t for v in values])["f1"])


def run() -> dict[str, Any]:
    from rasa.shared.nlu.training_data.loading import load_data

    from embeddings.encoder import get_encoder

    defaults = FrustrationDetector.get_default_config()
    nlu = load_data(str(ROOT / "data" / "nlu"))
    train_texts, train_labels = training_set(ROOT / TRAINING_FILE, nlu, defaults["calm_intents"])
    messages = yaml.safe_load(MESSAGES.read_text(encoding="utf-8"))["messages"]
    texts, gold = [m["text"] for m in messages], [bool(m["frustrated"]) for m in messages]

    cues = CueFinder()
    encoder = get_encoder()
    model = FrustrationModel(cues, c=defaults["C"], cue_weight=defaults["cue_weight"])
    model.fit(encoder.encode(train_texts), train_texts, train_labels)
    results = model.predict(encoder.encode(texts), texts)
    ours = [r.score >= defaults["threshold"] for r in results]

    threshold = best_threshold([cues.negativity(t) for t in train_texts], train_labels)
    vader = [cues.negativity(t) >= threshold for t in texts]

    kinds: dict[str, list[bool]] = defaultdict(list)
    for message, mine, base in zip(messages, ours, vader, strict=True):
        kind = message.get("note", "plain")
        kinds[kind].append(mine == message["frustrated"])
        kinds[f"{kind} (vader)"].append(base == message["frustrated"])
    misses = [
        {"text": t, "frustrated": g, "score": round(r.score, 3), "cues": r.cues}
        for t, g, r, p in zip(texts, gold, results, ours, strict=True)
        if p != g
    ]
    calm = [(m, r) for m, r, p in zip(messages, results, ours, strict=True) if not m["frustrated"]]
    false_alarms = [
        {"text": m["text"], "note": m.get("note", "plain"), "score": round(r.score, 3), "cues": r.cues}
        for m, r in calm
        if r.score >= defaults["threshold"]
    ]
    vader_alarms = sum(b for m, b in zip(messages, vader, strict=True) if not m["frustrated"])
    return {
        "messages": len(texts),
        "frustrated": sum(gold),
        # A calm customer apologised to and handed over: what a false alarm costs.
        "false_alarms": {
            "calm_messages": len(calm),
            "detector": len(false_alarms),
            "baseline_vader": int(vader_alarms),
            "messages": false_alarms,
        },
        "detector": prf(gold, ours) | {"threshold": defaults["threshold"]},
        "baseline_vader": prf(gold, vader) | {"threshold_negated_compound": threshold},
        "accuracy_by_kind": {kind: float(np.mean(v)) for kind, v in sorted(kinds.items())},
        "misses": misses,
    }


def report(results: dict[str, Any]) -> str:
    lines = [
        f"Frustration: {results['messages']} messages, {results['frustrated']} frustrated",
        f"  {'':34} {'precision':>9} {'recall':>7} {'F1':>6}",
    ]
    rows = (("detector (embeddings + cues)", "detector"), ("baseline: VADER threshold", "baseline_vader"))
    for label, key in rows:
        r = results[key]
        lines.append(f"  {label:34} {r['precision']:9.3f} {r['recall']:7.3f} {r['f1']:6.3f}")
    by_kind = results["accuracy_by_kind"].items()
    hard = {k: v for k, v in by_kind if not k.endswith("(vader)") and k != "plain"}
    lines.append("  right on hard cases: " + ", ".join(f"{k} {v:.0%}" for k, v in hard.items()))
    alarms = results["false_alarms"]
    lines.append(
        f"  false alarms (calm messages scored frustrated): {alarms['detector']} of {alarms['calm_messages']}"
        f" (VADER threshold: {alarms['baseline_vader']})"
    )
    lines += [f"    {alarm['score']:.2f} [{alarm['note']}] {alarm['text']}" for alarm in alarms["messages"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    run_benchmark(
        "frustration",
        __doc__ or "",
        run,
        report,
        lambda miss: f"{str(miss['frustrated']):>5} {miss['score']:.2f} {miss['text']}",
        argv,
    )


if __name__ == "__main__":
    main()
