"""Intent accuracy on held-out data and message latency, each beside a baseline from the same run.

- Accuracy: the trained Rasa model (POST /model/parse) on benchmarks/data/nlu_heldout.yml,
  which training never sees (tests check there is no overlap), beside a TF-IDF + logistic
  regression classifier trained on the same data/nlu/ in this run. Entities: micro P/R/F1
  on the held-out annotations.
- Latency: the same customer messages sent through the gateway (store, route, store) and
  straight to Rasa's REST channel, alternating, on one machine; p50/p95/p99 of each and
  the gateway's overhead on Rasa's p50. Each path has its own Rasa and action server (same
  model): the sentence encoder caches the embeddings of texts it has seen, so with one
  shared Rasa whichever path sent a text second got it about 8 ms faster.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union
from tqdm import tqdm

from tests.support.stack import MACHINE_SPEED, Stack

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT = ROOT / "benchmarks" / "data" / "nlu_heldout.yml"
RESULTS = ROOT / "benchmarks" / "results"
ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<entity>\w+)\)")


def load_examples(path: Path) -> list[dict[str, Any]]:
    """Examples with their intent and annotated entities (text, type)."""
    found = []
    for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
        if "intent" not in block:
            continue
        for line in block["examples"].splitlines():
            line = line.strip()
            if not line.startswith("- "):
                continue
            raw = line[2:].strip()
            entities = [(m["entity"], m["text"]) for m in ANNOTATION.finditer(raw)]
            found.append(
                {"intent": block["intent"], "text": ANNOTATION.sub(r"\g<text>", raw), "entities": entities}
            )
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def macro_f1(gold: list[str], predicted: list[str]) -> float:
    scores = []
    for label in sorted(set(gold)):
        tp = sum(g == p == label for g, p in zip(gold, predicted, strict=False))
        fp = sum(p == label != g for g, p in zip(gold, predicted, strict=False))
        fn = sum(g == label != p for g, p in zip(gold, predicted, strict=False))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return statistics.mean(scores)


def entity_scores(examples: list[dict[str, Any]], parsed: list[dict[str, Any]]) -> dict[str, float]:
    """Micro precision/recall/F1 over (type, surface text) pairs, case-insensitive."""
    tp = fp = fn = 0
    for example, result in zip(examples, parsed, strict=False):
        gold = Counter((kind, text.lower()) for kind, text in example["entities"])
        found = Counter(
            (e["entity"], example["text"][e["start"] : e["end"]].lower()) for e in result.get("entities", [])
        )
        # Rules may include "#" or "order" in an order number's span; compare the digits.
        gold = Counter({(k, re.sub(r"\D", "", t) if k == "order_id" else t): n for (k, t), n in gold.items()})
        found = Counter(
            {(k, re.sub(r"\D", "", t) if k == "order_id" else t): n for (k, t), n in found.items()}
        )
        tp += sum((gold & found).values())
        fp += sum((found - gold).values())
        fn += sum((gold - found).values())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def baseline_classifier(train: list[dict[str, Any]]) -> Any:
    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
    )
    model = make_pipeline(features, LogisticRegression(C=10, max_iter=2000))
    model.fit([e["text"] for e in train], [e["intent"] for e in train])
    return model


def measure_accuracy(stack: Stack) -> dict[str, Any]:
    held_out = load_examples(HELD_OUT)
    train = [e for path in sorted((ROOT / "data" / "nlu").glob("*.yml")) for e in load_examples(path)]
    gold = [e["intent"] for e in held_out]

    parsed = []
    with requests.Session() as http:
        for example in tqdm(held_out, desc="held-out NLU", unit="msg"):
            response = http.post(
                f"{stack.rasa_url}/model/parse",
                json={"text": example["text"]},
                params=stack.rasa_params,
                timeout=30,
            )
            parsed.append(response.json())
    rasa_predicted = [p["intent"]["name"] for p in parsed]
    started = time.perf_counter()
    baseline = baseline_classifier(train)
    baseline_seconds = time.perf_counter() - started
    baseline_predicted = list(baseline.predict([e["text"] for e in held_out]))

    def summary(predicted: list[str]) -> dict[str, float]:
        correct = sum(g == p for g, p in zip(gold, predicted, strict=False))
        return {"accuracy": correct / len(gold), "macro_f1": macro_f1(gold, predicted)}

    misses = Counter((g, p) for g, p in zip(gold, rasa_predicted, strict=False) if g != p)
    return {
        "examples": len(held_out),
        "training_examples": len(train),
        "rasa": {
            **summary(rasa_predicted),
            "fallback_rate": rasa_predicted.count("nlu_fallback") / len(gold),
        },
        "baseline_tfidf_logreg": {**summary(baseline_predicted), "train_seconds": baseline_seconds},
        "entities": entity_scores(held_out, parsed),
        "top_confusions": [f"{g} -> {p}: {n}" for (g, p), n in misses.most_common(8)],
    }


def measure_latency(stack: Stack, direct: Stack, messages: int, conversations: int) -> dict[str, Any]:
    texts = [e["text"] for e in load_examples(HELD_OUT)]
    per_conversation = messages // conversations
    paths = {
        "gateway": f"{stack.gateway_url}/webhooks/rest/webhook",
        "rasa_direct": f"{direct.rasa_url}/webhooks/rest/webhook",
    }
    timings: dict[str, list[float]] = {name: [] for name in paths}
    with requests.Session() as http:

        def send(name: str, sender: str, text: str) -> float:
            started = time.perf_counter()
            headers = stack.rest_headers if name == "gateway" else {}
            response = http.post(
                paths[name], json={"sender": sender, "message": text}, headers=headers, timeout=60
            )
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            return elapsed

        for i in range(10):  # warm-up: connections, caches, the shop database's seeding
            for name in paths:
                send(name, f"warmup-{name}", texts[i])
        progress = tqdm(total=2 * per_conversation * conversations, desc="latency", unit="msg")
        for c in range(conversations):
            for m in range(per_conversation):
                text = texts[(c * per_conversation + m) % len(texts)]
                # Alternate which path goes first, so neither always meets a warmer cache.
                order = list(paths) if (c + m) % 2 == 0 else list(reversed(paths))
                for name in order:
                    timings[name].append(send(name, f"bench-{name}-{c}", text))
                    progress.update()
        progress.close()

    def stats(values: list[float]) -> dict[str, float]:
        return {f"p{q}_ms": 1000 * percentile(values, q) for q in (50, 95, 99)} | {"n": len(values)}

    result = {name: stats(values) for name, values in timings.items()}
    result["gateway_overhead_on_p50"] = result["gateway"]["p50_ms"] / result["rasa_direct"]["p50_ms"] - 1
    return result


def report(results: dict[str, Any]) -> str:
    acc, lat = results["accuracy"], results["latency"]
    rasa, base, ents = acc["rasa"], acc["baseline_tfidf_logreg"], acc["entities"]
    lines = [
        f"Intent accuracy on {acc['examples']} held-out messages (trained on {acc['training_examples']}):",
        f"  {'':28} {'accuracy':>9} {'macro F1':>9}",
        f"  {'Rasa (config.yml)':28} {rasa['accuracy']:9.1%} {rasa['macro_f1']:9.3f}"
        f"   ({rasa['fallback_rate']:.1%} fell back)",
        f"  {'baseline: TF-IDF + logreg':28} {base['accuracy']:9.1%} {base['macro_f1']:9.3f}",
        f"  entities (micro): precision {ents['precision']:.3f}  recall {ents['recall']:.3f}"
        f"  F1 {ents['f1']:.3f}",
        "  most frequent confusions: " + ("; ".join(acc["top_confusions"]) or "none"),
        "",
        f"Latency per message, {lat['gateway']['n']} messages each, sequential:",
        f"  {'':28} {'p50':>8} {'p95':>8} {'p99':>8}",
    ]
    for name, label in (("rasa_direct", "baseline: Rasa REST direct"), ("gateway", "gateway -> Rasa")):
        s = lat[name]
        lines.append(f"  {label:28} {s['p50_ms']:6.1f}ms {s['p95_ms']:6.1f}ms {s['p99_ms']:6.1f}ms")
    lines.append(f"  gateway overhead on Rasa's p50: {lat['gateway_overhead_on_p50']:+.1%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir, contextlib.ExitStack() as running:
        stack, direct = Stack(Path(workdir) / "gateway", MACHINE_SPEED), Stack(Path(workdir) / "direct")
        for each in (stack, direct):  # both start at once; each waits for its own health
            each.workdir.mkdir()
            running.callback(each.stop_all)
            each.start()
        for each in (stack, direct):
            each.wait_healthy()
        # Latency first: parsing the held-out set would fill one Rasa's embedding cache.
        latency = measure_latency(stack, direct, args.messages, args.conversations)
        results = {"accuracy": measure_accuracy(stack), "latency": latency}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "foundation.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(report(results))


if __name__ == "__main__":
    main()
