"""Trains the Rasa model only when its inputs changed.

The model is named after a hash of everything that shapes it (config, domain, training
data, the custom NLU components), so an unchanged project reuses its model and a test run
trains at most once. models/current.tar.gz points at the model to serve.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from bot.settings import ROOT

logger = logging.getLogger(__name__)

MODEL_INPUTS = ("config.yml", "domain.yml", "data", "bot/nlu", "embeddings")


def input_files(root: Path = ROOT) -> list[Path]:
    files: list[Path] = []
    for name in MODEL_INPUTS:
        path = root / name
        if path.is_dir():
            files.extend(p for p in path.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml", ".py"))
        elif path.is_file():
            files.append(path)
    return sorted(files)


def inputs_hash(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for path in input_files(root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def current_model(root: Path = ROOT) -> Path:
    return root / "models" / "current.tar.gz"


def ensure_model(root: Path = ROOT, force: bool = False) -> Path:
    """Returns the path of a model trained on the current inputs, training it if needed."""
    models = root / "models"
    models.mkdir(exist_ok=True)
    name = f"model-{inputs_hash(root)}"
    model = models / f"{name}.tar.gz"
    if force or not model.exists():
        logger.info("Training %s (inputs changed)", model.name)
        rasa = Path(sys.executable).with_name("rasa")
        subprocess.run(
            [
                str(rasa),
                "train",
                "--config",
                "config.yml",
                "--domain",
                "domain.yml",
                "--data",
                "data",
                "--out",
                "models",
                "--fixed-model-name",
                name,
            ],
            cwd=root,
            # A project copy elsewhere (the trainer console's retraining in tests) still
            # imports this code's NLU components.
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            },
            check=True,
        )
    else:
        logger.info("Model %s is up to date", model.name)
    link = current_model(root)
    tmp = link.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(model.name)
    os.replace(tmp, link)
    return model
