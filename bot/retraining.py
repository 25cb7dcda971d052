"""Retraining from the trainer console, in the background: export the labels, evaluate the
model serving now if it never was (the "before"), train, evaluate the new one (the "after"),
and only then load it into Rasa. A failed step leaves the serving model as it was.

The steps run `python -m bot train` and `python -m bot evaluate` on the project folder
(PROJECT_DIR, this repository by default) as child processes, so a training that crashes
takes no gateway with it; their output feeds the progress the console shows. One
retraining runs at a time per gateway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import sys
from collections import deque
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.appkeys import SETTINGS
from bot.evaluation import compare
from bot.training import ROOT, current_model
from handoff import trainer
from handoff.api import HELPDESK, TRAINER_ROLES, error, requires

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
                trainer.export, self.project / "data" / "nlu", self.project / "domain.yml"
            )
            self.log.append(f"{result['examples_added']} new examples exported")
            serving = await self.rasa.model_file()
            if serving and not _evaluated(self.project, Path(serving).name):
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
            sys.executable, "-m", "bot", command, "--project", str(self.project), *options,
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
            raise RuntimeError(f"`python -m bot {command}` failed (exit {process.returncode}); see the log")
        self.progress = end


RETRAINING = web.AppKey("retraining", Retraining)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@requires(*TRAINER_ROLES)
async def get_training(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[RETRAINING].as_dict())


@requires(*TRAINER_ROLES)
async def post_training(request: web.Request) -> web.StreamResponse:
    retraining = request.app[RETRAINING]
    if not retraining.start(request.app[HELPDESK].database):
        return error(409, "a retraining is already running")
    return web.json_response(retraining.as_dict(), status=202)


def _evaluated(project: Path, model_name: str) -> bool:
    history_file = project / "reports" / "history.json"
    if not history_file.exists():
        return False
    return any(entry["model"] == model_name for entry in json.loads(history_file.read_text(encoding="utf-8")))


def _latest(project: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    history_file = project / "reports" / "history.json"
    if not history_file.exists():
        return None, None
    history = json.loads(history_file.read_text(encoding="utf-8"))
    if not history:
        return None, None
    current = history[-1]
    previous = next((entry for entry in reversed(history) if entry["model"] != current["model"]), None)
    return current, previous


@requires(*TRAINER_ROLES)
async def latest_report(request: web.Request) -> web.StreamResponse:
    current, previous = _latest(request.app[SETTINGS].project_dir)
    comparison = compare(current, previous) if current else None
    return web.json_response({"current": current, "previous": previous, "comparison": comparison})


@requires(*TRAINER_ROLES)
async def confusion_matrix(request: web.Request) -> web.StreamResponse:
    current, _ = _latest(request.app[SETTINGS].project_dir)
    picture = Path(current["confusion_matrix"]) if current else None
    if picture is None or not picture.exists():
        return error(404, "no evaluation yet: retrain, or run make evaluate")
    return web.FileResponse(picture, headers={"Cache-Control": "no-cache"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/training", get_training)
    app.router.add_post("/api/v1/training", post_training)
    app.router.add_get("/api/v1/reports/latest", latest_report)
    app.router.add_get("/api/v1/reports/latest/confusion_matrix.png", confusion_matrix)
