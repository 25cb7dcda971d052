"""The test stories in tests/stories (`rasa test core`): the dialogue model takes each
path through the return forms, digressions included, exactly as written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.stack import BIN, ROOT
from training.model import current_model

pytestmark = pytest.mark.e2e


def test_the_dialogue_model_follows_every_test_story(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(BIN / "rasa"),
            "test",
            "core",
            "--stories",
            str(ROOT / "tests" / "stories"),
            "--model",
            str(current_model()),
            "--out",
            str(tmp_path),
            "--fail-on-prediction-errors",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    failed = result.stdout[result.stdout.find("Failed Story") :] or result.stderr[-3000:]
    assert result.returncode == 0, failed
