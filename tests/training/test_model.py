from __future__ import annotations

import shutil
from pathlib import Path

from training.model import MODEL_INPUTS, inputs_hash

ROOT = Path(__file__).resolve().parents[2]


def copy_inputs(target: Path) -> None:
    for name in MODEL_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target / name)


def test_the_model_is_retrained_only_when_its_inputs_change(tmp_path: Path) -> None:
    copy_inputs(tmp_path)
    before = inputs_hash(tmp_path)
    (tmp_path / "README.md").write_text("not a model input")
    assert inputs_hash(tmp_path) == before
    with (tmp_path / "data" / "nlu" / "chitchat.yml").open("a") as f:
        f.write("\n")
    assert inputs_hash(tmp_path) != before
