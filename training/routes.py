"""Every route of the trainer's workflow, in one list (the handlers are in views.py)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from handoff.api import PREFIX, console_page
from training import views
from training.views import PROJECT, TRAINER_ROLES


def add_routes(app: web.Application, project: Path) -> None:
    """The trainer's API and console page over `project` (PROJECT_DIR); `app[RETRAINING]` is
    set when the app starts (the job needs the Rasa client)."""
    app[PROJECT] = project
    app.router.add_routes(
        [
            web.get(f"{PREFIX}/unresolved", views.unresolved),
            # Digits only: the id must not also match /unresolved/decisions and /unresolved/export.
            web.get(f"{PREFIX}/unresolved/{{id:\\d+}}", views.unresolved_message),
            web.get(f"{PREFIX}/intents", views.intents),
            web.post(f"{PREFIX}/unresolved/decisions", views.decide),
            web.post(f"{PREFIX}/unresolved/export", views.export),
            web.get(f"{PREFIX}/training", views.get_training),
            web.post(f"{PREFIX}/training", views.post_training),
            web.get(f"{PREFIX}/reports/latest", views.latest_report),
            web.get(f"{PREFIX}/reports/latest/confusion_matrix.png", views.confusion_matrix),
            web.get("/trainer", console_page("trainer.html", TRAINER_ROLES, "trainer console")),
        ]
    )
