"""The trainer's API handlers (routes.py lists them): the unresolved log and its decisions,
the export of the labels, the background retraining and the latest evaluation.

Each handler parses and checks its input, calls curation, the retraining job or the
evaluation history, and shapes the JSON that handoff/openapi.yml documents.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from handoff import tickets
from handoff.api import AGENT, HELPDESK, MAX_ID, error, json_body, path_id, plain_text, requires
from training import curation
from training.evaluation import History, compare
from training.retraining import RETRAINING

logger = logging.getLogger(__name__)

TRAINER_ROLES = ("trainer", "admin")
PROJECT = web.AppKey("training_project", Path)  # config.yml, domain.yml, data/, models/, reports/


def nlu_dir(request: web.Request) -> Path:
    return request.app[PROJECT] / "data" / "nlu"  # where trainers' labels are exported


def domain_file(request: web.Request) -> Path:
    return request.app[PROJECT] / "domain.yml"


def history(request: web.Request) -> History:
    return History(request.app[PROJECT] / "reports")


# -- The unresolved log ----------------------------------------------------------------------


@requires(*TRAINER_ROLES)
async def unresolved(request: web.Request) -> web.StreamResponse:
    """The unresolved messages no trainer has decided on, grouped by meaning."""
    database = request.app[HELPDESK].database
    entries = await database.run(curation.open_entries)

    def embed(texts: list[str]) -> Any:
        from embeddings.encoder import get_encoder

        return get_encoder().encode(texts)

    # The encoder is the NLU's own (loaded on first use); it runs off the event loop.
    groups = await asyncio.get_running_loop().run_in_executor(
        None, curation.groups_for_display, entries, embed
    )
    return web.json_response({"open": len(entries), "groups": groups})


@requires(*TRAINER_ROLES)
async def unresolved_message(request: web.Request) -> web.StreamResponse:
    """One unresolved message and the conversation behind it."""
    number = path_id(request, "unresolved message")

    def work(session: Any) -> dict[str, Any] | None:
        entry = curation.entry(session, number)
        if entry is None:
            return None
        return {"message": entry.__dict__, "transcript": tickets.transcript(session, entry.conversation_id)}

    found = await request.app[HELPDESK].database.run(work)
    return web.json_response(found) if found else error(404, f"there is no unresolved message {number}")


@requires(*TRAINER_ROLES)
async def intents(request: web.Request) -> web.StreamResponse:
    """The domain's intents, for labelling (a new name makes a new intent at export)."""
    domain = yaml.safe_load(domain_file(request).read_text(encoding="utf-8"))
    return web.json_response({"intents": sorted(domain.get("intents") or [])})


@requires(*TRAINER_ROLES)
async def decide(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    ids, decision = body.get("ids"), body.get("decision")
    intent, note = body.get("intent"), body.get("note")
    # JSON's true and false are ints to Python, and PostgreSQL refuses to compare them to ids.
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 0 < i <= MAX_ID for i in ids
    ):
        return error(400, "'ids' must be a list of unresolved message ids")
    if note is not None and (not isinstance(note, str) or not plain_text(note) or len(note) > 2000):
        return error(400, "'note' must be text of at most 2000 characters")
    try:
        count = await request.app[HELPDESK].database.run(
            curation.decide, ids, decision, request[AGENT], intent, note
        )
    except curation.TrainerError as failure:
        return error(failure.status, str(failure))
    return web.json_response({"decided": count})


@requires(*TRAINER_ROLES)
async def export(request: web.Request) -> web.StreamResponse:
    """Writes the labels as Rasa NLU data (data/nlu/trainer_labels.yml) and new intents into
    the domain, as `make export-nlu` does."""
    result = await request.app[HELPDESK].database.run(curation.export, nlu_dir(request), domain_file(request))
    logger.info("%s exported %s new examples", request[AGENT].email, result["examples_added"])
    return web.json_response(result)


# -- Retraining and its reports --------------------------------------------------------------


@requires(*TRAINER_ROLES)
async def get_training(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[RETRAINING].as_dict())


@requires(*TRAINER_ROLES)
async def post_training(request: web.Request) -> web.StreamResponse:
    retraining = request.app[RETRAINING]
    if not retraining.start(request.app[HELPDESK].database):
        return error(409, "a retraining is already running")
    return web.json_response(retraining.as_dict(), status=202)


@requires(*TRAINER_ROLES)
async def latest_report(request: web.Request) -> web.StreamResponse:
    current, previous = history(request).latest()
    comparison = compare(current, previous) if current else None
    return web.json_response({"current": current, "previous": previous, "comparison": comparison})


@requires(*TRAINER_ROLES)
async def confusion_matrix(request: web.Request) -> web.StreamResponse:
    current, _ = history(request).latest()
    picture = Path(current["confusion_matrix"]) if current else None
    if picture is None or not picture.exists():
        return error(404, "no evaluation yet: retrain, or run make evaluate")
    return web.FileResponse(picture, headers={"Cache-Control": "no-cache"})
