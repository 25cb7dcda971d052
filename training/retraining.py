"""Retraining from the trainer console, in the background: export the labels, evaluate the
model serving now if it never was (the "before"), train, evaluate the new one (the "after"),
and only then load it into Rasa. A failed step leaves the serving model as it was.

The steps run `python -m training train` and `python -m training evaluate` on the project
folder (PROJECT_DIR, this repository by default) as child processes, so a training that
crashes takes no gateway with it; their output feeds the progress the console shows. One
retraining runs at a time per gateway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import sys
from collections import deque
from pathlib import Path
from typing import Any

from aiohttp import web

from training import curation
from training.evaluation import History
from training.model import ROOT, current_model

logger = logging.getLogger(__name__)

EPOCHS = re.compile(r"Epochs:\s+(\d+)%")


class Retraining:
    def __init__(self, project: Path, rasa: Any) -> None:
        self.project = project
        self.rasa = rasa
        self.state = "idle"
        self.step: str | None = None
        self.progress: float | None = None
        self.log: deque[str] = deque(maxlen=20)
        self.started_at: str | None = None
        self.finished_at: str | None = None
        self.model: str | None = None
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "step": self.step,
            "progress": self.progress,
            "log": list(self.log),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "model": self.model,
            "error": self.error,
        }

    def start(self, database: Any) -> bool:
        if self.state == "running":
            return False
        self.state, self.error, self.progress, self.model = "running", None, 0.0, None
        self.log.clear()
        self.started_at, self.finished_at = _now(), None
        self._task = asyncio.create_task(self._run(database))
        return True

    async def _run(self, database: Any) -> None:
        try:
            self.step = "exporting"
            result = await database.run(
                curation.export, self.project / "data" / "nlu", self.project / "domain.yml"
            )
            self.log.append(f"{result['examples_added']} new examples exported")
            serving = await self.rasa.model_file()
            if serving and not History(self.project / "reports").has(Path(serving).name):
                # The "before" of the before/after report: the model serving now.
                self.step = "evaluating the current model"
                await self._child("evaluate", "--model", serving, weight=(0.0, 0.25))
            self.step = "training"
            await self._child("train", weight=(0.25, 0.85))
            self.step = "evaluating"
            await self._child("evaluate", weight=(0.85, 0.97))
            self.step = "loading the model"
            model = current_model(self.project).resolve()
            await self.rasa.load_model(str(model))
            self.model, self.progress, self.state = model.name, 1.0, "succeeded"
            logger.info("Retrained and now serving %s", model.name)
        except Exception as failure:  # noqa: BLE001 - reported to the console; the old model serves on
            self.state, self.error = "failed", str(failure) or type(failure).__name__
            logger.error("Retraining failed at %s: %s", self.step, self.error)
        finally:
            self.finished_at = _now()

    async def _child(self, command: str, *options: str, weight: tuple[float, float]) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "training", command, "--project", str(self.project), *options,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert process.stdout is not None
        start, end = weight
        buffer = b""
        while chunk := await process.stdout.read(4096):
            buffer += chunk
            *lines, buffer = re.split(rb"[\r\n]", buffer)
            for line in (raw.decode("utf-8", "replace").strip() for raw in lines):
                if not line:
                    continue
                found = EPOCHS.search(line)
                if found:
                    self.progress = start + (end - start) * int(found.group(1)) / 100
                elif not line.startswith(("Epochs", "Processed")):
                    self.log.append(line[:300])
        if await process.wait() != 0:
            raise RuntimeError(
                f"`python -m training {command}` failed (exit {process.returncode}); see the log"
            )
        self.progress = end


RETRAINING = web.AppKey("retraining", Retraining)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
