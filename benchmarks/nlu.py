"""Intent detection on public benchmarks: this project's pipeline beside Rasa's default one.

    python -m benchmarks.nlu [--banking77-test test.csv] [--clinc150-test data_full.json]

Both pipelines are trained with `rasa train nlu` on the same data in the same run and
tested through Rasa's own parsing, one message at a time, as the server would:

- Banking77 (77 intents), 10 and 30 examples per intent drawn with a fixed seed, and the
  whole training pool. Closed-set: accuracy counts the top intent; how often the fallback
  threshold would have fired is printed beside it.
- CLINC150 (150 intents plus out-of-scope queries): trained on `train` with `oos_train` as
  the intent `out_of_scope`; a test query counts as out of scope when the pipeline says
  `out_of_scope` or falls back. In-scope accuracy and out-of-scope recall.

The official test sets are not shipped here. Without `--banking77-test`, a stratified
validation part of train.csv (never drawn from for training) stands in for it; without
`--clinc150-test`, CLINC150's `val` and `oos_val` do (the file's own `test`/`oos_test`
keys, if it has them, are used). Nothing is tuned on what is reported: the pipelines'
settings live in benchmarks/pipelines/ and were chosen on splits of the training data.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_DATA = ROOT / "benchmarks" / "data"  # Banking77 and CLINC150 training files, with their licences
PIPELINES = ROOT / "benchmarks" / "pipelines"
RESULTS = ROOT / "benchmarks" / "results"
OUT_OF_SCOPE = "out_of_scope"
FALLBACK = "nlu_fallback"
SEED = 7
VALIDATION_SHARE = 0.25

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    name: str
    train: list[tuple[str, str]]  # (text, intent)
    test: list[tuple[str, str]]
    test_source: str
    has_out_of_scope: bool = False


def read_banking77(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["text"].strip(), row["category"]) for row in csv.DictReader(handle)]


def stratified_split(
    rows: list[tuple[str, str]], share: float, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(pool, held out): `share` of each intent held out, the rest the training pool."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(rows))
    pool, held = train_test_split(
        indices, test_size=share, stratify=[intent for _, intent in rows], random_state=seed
    )
    return [rows[i] for i in sorted(pool)], [rows[i] for i in sorted(held)]


def few_shot(rows: list[tuple[str, str]], per_intent: int, seed: int) -> list[tuple[str, str]]:
    """`per_intent` examples of each intent, drawn without replacement with a fixed seed."""
    rng = np.random.RandomState(seed)
    intents = np.array([intent for _, intent in rows], dtype=object)
    drawn: list[int] = []
    for intent in sorted(set(intents)):
        candidates = np.flatnonzero(intents == intent)
        drawn.extend(rng.choice(candidates, size=min(per_intent, len(candidates)), replace=False))
    return [rows[i] for i in sorted(drawn)]


def banking77_tasks(train_csv: Path, test_csv: Path | None, shots: list[int]) -> list[Task]:
    rows = read_banking77(train_csv)
    if test_csv is None:
        pool, test = stratified_split(rows, VALIDATION_SHARE, SEED)
        source = f"validation split of train.csv ({len(test)})"
    else:
        pool, test = rows, read_banking77(test_csv)
        source = f"{test_csv.name} ({len(test)})"
    tasks = [Task(f"banking77-{k}", few_shot(pool, k, SEED), test, source) for k in shots]
    tasks.append(Task("banking77-full", pool, test, source))
    return tasks


def clinc150_task(train_json: Path, test_json: Path | None) -> Task:
    data = json.loads(train_json.read_text(encoding="utf-8"))
    train = [(t, i) for t, i in data["train"]] + [(t, OUT_OF_SCOPE) for t, _ in data["oos_train"]]
    tests = json.loads(test_json.read_text(encoding="utf-8")) if test_json else data
    in_key, oos_key = ("test", "oos_test") if "test" in tests else ("val", "oos_val")
    test = [(t, i) for t, i in tests[in_key]] + [(t, OUT_OF_SCOPE) for t, _ in tests[oos_key]]
    source = f"{(test_json or train_json).name} {in_key}+{oos_key} ({len(test)})"
    return Task("clinc150", train, test, source, has_out_of_scope=True)


def nlu_yaml(rows: list[tuple[str, str]]) -> str:
    by_intent: dict[str, list[str]] = defaultdict(list)
    for text, intent in rows:
        by_intent[intent].append(text)
    # Rasa reads each example line as it stands (no YAML quoting): write the bare text.
    blocks = [
        {"intent": intent, "examples": "".join(f"- {' '.join(text.split())}\n" for text in texts)}
        for intent, texts in sorted(by_intent.items())
    ]
    return yaml.safe_dump({"version": "3.1", "nlu": blocks}, sort_keys=False, allow_unicode=True, width=10**6)


def train(config: Path, rows: list[tuple[str, str]], workdir: Path, name: str, epochs: int | None) -> float:
    """Trains with `rasa train nlu` and returns the wall time in seconds."""
    data = workdir / f"{name}.yml"
    data.write_text(nlu_yaml(rows), encoding="utf-8")
    if epochs is not None:
        spec = yaml.safe_load(config.read_text(encoding="utf-8"))
        for component in spec["pipeline"]:
            if component["name"] == "DIETClassifier":
                component["epochs"] = epochs
        config = workdir / f"{name}-config.yml"
        config.write_text(yaml.safe_dump(spec), encoding="utf-8")
    started = time.perf_counter()
    log = workdir / f"{name}.log"
    with log.open("wb") as output:
        finished = subprocess.run(
            [
                str(Path(sys.executable).with_name("rasa")),
                "train",
                "nlu",
                "--config",
                str(config),
                "--nlu",
                str(data),
                "--out",
                str(workdir),
                "--fixed-model-name",
                name,
            ],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            # RASA_MAX_CACHE_SIZE=0: no component comes from Rasa's training cache (~/.rasa/cache)
            # of an earlier run, so the training time is a cold start, as on a new machine.
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_MAX_CACHE_SIZE": "0"},
        )
    if finished.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
        raise RuntimeError(f"rasa train nlu failed for {name}:\n" + "\n".join(tail))
    return time.perf_counter() - started


def parse(model: Path, texts: list[str], label: str) -> list[dict[str, Any]]:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # otherwise every parse is logged
    agent = Agent.load(str(model))

    async def run() -> list[dict[str, Any]]:
        return [
            await agent.parse_message(text) for text in tqdm(texts, desc=f"  testing {label}", unit="msg")
        ]

    return asyncio.run(run())


def top_intent(result: dict[str, Any]) -> str:
    """The classifier's own best guess, under the fallback."""
    for entry in result.get("intent_ranking") or []:
        if entry.get("name") != FALLBACK:
            return str(entry["name"])
    return str((result.get("intent") or {}).get("name"))


def score(task: Task, parsed: list[dict[str, Any]]) -> dict[str, float]:
    gold = [intent for _, intent in task.test]
    said = [str((p.get("intent") or {}).get("name")) for p in parsed]
    if not task.has_out_of_scope:
        guesses = [top_intent(p) for p in parsed]
        return {
            "accuracy": sum(g == p for g, p in zip(gold, guesses, strict=True)) / len(gold),
            "fallback_rate": said.count(FALLBACK) / len(said),
        }
    decided = [OUT_OF_SCOPE if s in (FALLBACK, OUT_OF_SCOPE) else s for s in said]
    pairs = list(zip(gold, decided, strict=True))
    in_scope = [(g, d) for g, d in pairs if g != OUT_OF_SCOPE]
    oos = [(g, d) for g, d in pairs if g == OUT_OF_SCOPE]
    return {
        "accuracy": sum(g == d for g, d in pairs) / len(pairs),
        "in_scope_accuracy": sum(g == d for g, d in in_scope) / len(in_scope),
        "oos_recall": sum(d == OUT_OF_SCOPE for _, d in oos) / len(oos),
    }


def run_task(task: Task, pipelines: dict[str, tuple[Path, int | None]], workdir: Path) -> dict[str, Any]:
    print(f"{task.name}: {len(task.train)} training examples; testing on {task.test_source}", flush=True)
    results: dict[str, Any] = {"train_examples": len(task.train), "test": task.test_source}
    for label, (config, epochs) in pipelines.items():
        name = f"{task.name}-{label}"
        print(f"  training {label}" + (f" (DIET {epochs} epochs)" if epochs else ""), flush=True)
        seconds = train(config, task.train, workdir, name, epochs)
        parsed = parse(workdir / f"{name}.tar.gz", [text for text, _ in task.test], label)
        results[label] = {**score(task, parsed), "train_seconds": seconds, "diet_epochs": epochs}
        print(f"  {label}: {json.dumps(results[label])}", flush=True)
    return results


def report(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{'task':16} {'pipeline':24} {'accuracy':>9} {'in-scope':>9} {'oos rec.':>9} {'train s':>8}",
    ]
    for task, result in results.items():
        for label in ("embeddings", "rasa_default"):
            if label not in result:
                continue
            r = result[label]
            name = "this project" if label == "embeddings" else "Rasa default (DIET)"
            if r.get("diet_epochs"):
                name += f" {r['diet_epochs']}ep"
            in_scope = f"{r['in_scope_accuracy']:9.1%}" if "in_scope_accuracy" in r else f"{'':9}"
            oos = f"{r['oos_recall']:9.1%}" if "oos_recall" in r else f"{'':9}"
            lines.append(
                f"{task:16} {name:24} {r['accuracy']:9.1%} {in_scope} {oos} {r['train_seconds']:8.0f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--banking77", type=Path, default=PUBLIC_DATA / "banking77" / "train.csv")
    parser.add_argument("--banking77-test", type=Path, help="test.csv in the same format as train.csv")
    parser.add_argument("--clinc150", type=Path, default=PUBLIC_DATA / "clinc150" / "train_val.json")
    parser.add_argument("--clinc150-test", type=Path, help="JSON with test/oos_test (or val/oos_val)")
    parser.add_argument(
        "--tasks",
        default="banking77-10,banking77-30,banking77-full,clinc150",
        help="comma-separated subset of banking77-10, banking77-30, banking77-full, clinc150",
    )
    parser.add_argument("--baseline-epochs", type=int, default=100, help="DIET epochs of Rasa's default")
    parser.add_argument(
        "--baseline-budget",
        type=int,
        default=77_000,
        help="cap on DIET's examples x epochs per task (0: no cap). The default is what 100 epochs "
        "on Banking77's 770 examples cost (about 7 minutes here); at 100 epochs DIET needs over an "
        "hour on Banking77's full pool and two on CLINC150 on 2 cores. Never fewer than 10 epochs.",
    )
    parser.add_argument("--no-baseline", action="store_true", help="train only this project's pipeline")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    wanted = [name.strip() for name in args.tasks.split(",") if name.strip()]
    tasks: list[Task] = []
    if any(name.startswith("banking77") for name in wanted):
        shots = [int(name.split("-")[1]) for name in wanted if name.split("-")[-1].isdigit()]
        tasks += [t for t in banking77_tasks(args.banking77, args.banking77_test, shots) if t.name in wanted]
    if "clinc150" in wanted:
        tasks.append(clinc150_task(args.clinc150, args.clinc150_test))

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-nlu-") as tmp:
        for task in tasks:
            pipelines: dict[str, tuple[Path, int | None]] = {
                "embeddings": (PIPELINES / "embeddings.yml", None)
            }
            if not args.no_baseline:
                epochs = args.baseline_epochs
                if args.baseline_budget:
                    epochs = max(10, min(epochs, args.baseline_budget // len(task.train)))
                pipelines["rasa_default"] = (PIPELINES / "rasa_default.yml", epochs)
            results[task.name] = run_task(task, pipelines, Path(tmp))
            # After every task, so an interrupted run keeps what it measured.
            RESULTS.mkdir(parents=True, exist_ok=True)
            (RESULTS / "nlu.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print()
    print(report(results))


if __name__ == "__main__":
    main()
