"""Schemathesis against the agent API: every operation of handoff/openapi.yml, with inputs
generated from the schema and broken on purpose, as an admin (who also reaches the
trainers' routes) and an agent at once, and a third session logging out. No answer may be
a 5xx, and every answer must be one the schema documents, in the shape it documents
(Schemathesis's checks, all of them; 413 counts as a refusal, and a plain GET of the
websocket is not expected to succeed).

The gateway runs in this process on a loopback port, over SQLite, beside FakeRasa. Two
stand-ins keep it cheap: the sentence encoder of GET /unresolved (its real test is in
test_api.py) and the retraining that POST /training starts (it would train a model).
Schemathesis runs from .venv-tools (`make tools`), whose libraries Rasa 3.6 cannot share.

The inputs it found that broke the API are kept in
`test_what_the_fuzzer_found_stays_fixed`, on SQLite and PostgreSQL, whatever a run happens
to generate. FUZZ_SEED=<seed> repeats a run (each run prints its seed).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import sqlalchemy as sa

import embeddings.encoder
from bot.app import create_app
from bot.limits import LimitSettings
from bot.settings import ROOT, Settings
from handoff import db
from handoff.auth import create_agent
from handoff.models import Attachment, Message, UnresolvedMessage
from tests.support.gateway import Browser, FakeRasa, say
from training.retraining import Retraining

SCHEMATHESIS = ROOT / ".venv-tools" / "bin" / "schemathesis"
OPENAPI = ROOT / "handoff" / "openapi.yml"
RUN_SECONDS = 150  # for each run; all three take 60-100 s together on two cores

AGENTS = {"alex@shop.test": "agent", "ada@shop.test": "admin", "otto@shop.test": "agent"}
PASSWORD = "a long agent password"


class StandInEncoder:
    """Every message the same vector: one group, found without loading the model."""

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 8), dtype=np.float32)


async def _no_retraining(self: Retraining, database: Any) -> None:
    self.step, self.state = None, "succeeded"


@dataclass
class Helpdesk:
    base: str
    database_url: str

    async def session_of(self, email: str) -> str:
        """A fresh login's session cookie."""
        login = {"email": email, "password": PASSWORD}
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.base}/api/v1/auth/login", json=login, headers={"Origin": self.base}
            ) as response,
        ):
            assert response.status == 200, await response.text()
            return response.cookies["helpdesk_session"].value


def _project(tmp_path: Path) -> Path:
    """A copy of what the trainers' export writes into (data/nlu, domain.yml)."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "data" / "nlu", project / "data" / "nlu")
    shutil.copy(ROOT / "domain.yml", project / "domain.yml")
    return project


async def start_helpdesk(
    aiohttp_server: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Helpdesk:
    """The gateway with three agents, three tickets, a photo and an unresolved message: ids
    1-3 exist, so the generated requests reach more than the 404 path."""
    monkeypatch.setattr(embeddings.encoder, "get_encoder", StandInEncoder)
    monkeypatch.setattr(Retraining, "_run", _no_retraining)
    rasa = await aiohttp_server(FakeRasa().app())
    settings = Settings(
        database_url=database_url,
        rasa_url=str(rasa.make_url("")).rstrip("/"),
        secret_key="fuzz",
        project_dir=_project(tmp_path),
        limits=LimitSettings(sender_burst=1000, sender_per_minute=1000),
    )
    server = await aiohttp_server(create_app(settings))
    base = str(server.make_url("")).rstrip("/")
    engine = db.create_engine(database_url)
    with db.sessionmaker(engine, future=True).begin() as session:
        for email, role in AGENTS.items():
            create_agent(session, email, PASSWORD, role)
    customer = Browser(base)
    for sender in ("cora", "dev", "eli"):
        await say(customer, "I want a human NOW", sender)
    await customer.close()
    with db.sessionmaker(engine, future=True).begin() as session:
        first = session.scalars(sa.select(Message).order_by(Message.id)).first()
        assert first is not None
        session.add(Attachment(message_id=first.id, content_type="image/jpeg", data=b"\xff\xd8 a photo"))
        session.add(
            UnresolvedMessage(
                conversation_id=first.conversation_id,
                message_id=first.id,
                text=first.text,
                reason="low_csat",
                details={},
            )
        )
    engine.dispose()
    return Helpdesk(base, database_url)


def _config(base: str, fail_on: tuple[str, ...]) -> str:
    """schemathesis.toml for one run; the session cookie comes from HELPDESK_SESSION."""
    return f"""
headers = {{ Origin = "{base}" }}

[auth.openapi.session]
api_key = "${{HELPDESK_SESSION}}"

# 413 (text over 2,000 characters) is a refusal too.
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]

# A plain HTTP request is never a websocket handshake: /ws answers it 400 (documented), and
# the handshake itself is tested in test_api.py.
[[operations]]
include-path = "/ws"
checks.positive_data_acceptance.enabled = false

[warnings]
fail-on = {list(fail_on)!r}
"""


async def run_schemathesis(
    helpdesk: Helpdesk,
    email: str,
    tmp_path: Path,
    *filters: str,
    examples: int = 25,
    fail_on: tuple[str, ...] = (),
) -> str | None:
    """Schemathesis as `email`: `examples` generated cases per operation in its fuzzing phase,
    beside the coverage phase's boundary values and the stateful phase's sequences. What it
    found, or None."""
    folder = tmp_path / email.split("@")[0]
    folder.mkdir()
    config = folder / "schemathesis.toml"
    # Always a failure: a pattern Schemathesis cannot read, or a filter naming no operation,
    # would test less than this file says without anyone noticing.
    config.write_text(_config(helpdesk.base, ("unsupported_regex", "unmatched_filter", *fail_on)))
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        str(OPENAPI),
        "--url",
        f"{helpdesk.base}/api/v1",
        "--max-examples",
        str(examples),
        "--workers",
        "2",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "ndjson",  # every case and answer, for whoever reads a failure
        "--report-dir",
        str(folder),
        *filters,
    ]
    if os.environ.get("FUZZ_SEED"):
        command += ["--seed", os.environ["FUZZ_SEED"]]
    environment = {**os.environ, "HELPDESK_SESSION": await helpdesk.session_of(email)}
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=folder,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_SECONDS)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        return f"Schemathesis as {email} took over {RUN_SECONDS} s: {' '.join(command)}"
    text = output.decode("utf-8", "replace")
    if process.returncode == 0:
        return None
    start, end = text.find("=== FAILURES"), text.find("=== WARNINGS")
    report = text[start:end] if 0 <= start < end else text[-8000:]
    seed = re.search(r"Seed: \d+", text)
    return (
        f"Schemathesis as {email} (exit {process.returncode}; {seed.group() if seed else 'no seed'}; "
        f"`st replay ID` and the ndjson report in {folder}):\n{report[:20000]}"
    )


async def test_no_operation_answers_5xx_or_off_the_schema(aiohttp_server, tmp_path, monkeypatch) -> None:
    if not SCHEMATHESIS.exists():
        pytest.fail(
            f"{SCHEMATHESIS} is missing: run `make tools` (make test builds it); Schemathesis "
            "lives in a virtual environment of its own, beside Rasa's"
        )
    database_url = f"sqlite:///{tmp_path / 'helpdesk.db'}"
    helpdesk = await start_helpdesk(aiohttp_server, database_url, tmp_path, monkeypatch)
    logout = ("--exclude-path", "/auth/logout")  # it would end the session the run tests with
    runs = [
        # The admin may use every route: most of the answers must be more than 401 and 403.
        run_schemathesis(helpdesk, "ada@shop.test", tmp_path, *logout, fail_on=("missing_auth",)),
        # An agent: the same tickets, and 403 for the trainers' routes; fewer cases, since the
        # handlers behind the role check are the admin's.
        run_schemathesis(helpdesk, "alex@shop.test", tmp_path, *logout, examples=10),
        run_schemathesis(helpdesk, "otto@shop.test", tmp_path, "--include-path", "/auth/logout", examples=10),
    ]
    # At once, as agents work: one claims what another closes, and every answer must still
    # be one the schema documents.
    found = [problem for problem in await asyncio.gather(*runs) if problem]
    assert not found, "\n\n".join(found)


async def test_what_the_fuzzer_found_stays_fixed(aiohttp_server, database_url, tmp_path, monkeypatch) -> None:
    helpdesk = await start_helpdesk(aiohttp_server, database_url, tmp_path, monkeypatch)
    ada = Browser(helpdesk.base)
    # Headers sent as written: no cookie jar (aiohttp's would parse the Cookie header too).
    raw = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    try:
        assert await ada.login("ada@shop.test", PASSWORD) == 200
        cookie = await helpdesk.session_of("ada@shop.test")
        # Another site's cookie with a name http.cookies refuses made every console request
        # a 500; now it is ignored and the agent's own session still counts.
        for header, status in (
            (f"aj/e0=1; helpdesk_session={cookie}", 200),
            ('aj/e0=1; helpdesk_session="forged"', 401),
            ("=; ;;helpdesk_session", 401),
        ):
            async with raw.get(f"{helpdesk.base}/api/v1/auth/me", headers={"Cookie": header}) as response:
                assert response.status == status, header
        # JSON's true is an int to Python, and PostgreSQL refused to compare it to an id (500).
        decide = "/api/v1/unresolved/decisions"
        status, body = await ada.call("POST", decide, {"ids": [True], "decision": "dismissed"})
        assert status == 400 and "'ids'" in body["error"]["message"]
        # The same id twice broke the one-decision-per-message constraint (500).
        assert await ada.call("POST", decide, {"ids": [1, 1], "decision": "kb_gap"}) == (200, {"decided": 1})
        status, body = await ada.call("POST", decide, {"ids": [1, 99], "decision": "dismissed"})
        assert status == 404 and "[99]" in body["error"]["message"]  # was 400 for a well-formed request
        # A 405 keeps its Allow header, which lists what the schema says, no more.
        for method, path, allowed in (
            ("TRACE", "/api/v1/tickets", "GET,HEAD"),
            ("OPTIONS", decide, "POST"),  # /unresolved/{id} matched "decisions" and added GET
            ("GET", "/api/v1/unresolved/export", "POST"),
        ):
            async with ada.http.request(method, helpdesk.base + path) as response:
                assert response.status == 405, (method, path)
                assert set(response.headers["Allow"].split(",")) == set(allowed.split(",")), (method, path)
                assert (await response.json())["error"]["status"] == 405
    finally:
        await ada.close()
        await raw.close()
