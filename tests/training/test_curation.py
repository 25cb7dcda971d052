"""The trainers' unresolved log: grouping by meaning (the NLU's own encoder), decisions with
who made them, and the export to Rasa NLU data that `rasa data validate` accepts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from embeddings.encoder import get_encoder
from handoff import conversations, db
from handoff.auth import create_agent
from handoff.models import TrainingDecision
from tests.support.gateway import PASSWORD
from training import curation

ROOT = Path(__file__).resolve().parents[2]
GIFT_WRAP = [
    "can you gift wrap my parcel",
    "is gift wrapping available",
    "do you offer gift wrap for presents",
]
LOYALTY = ["how many loyalty points do I have", "what is my loyalty points balance"]


def log(database: db.Database, texts: list[str], intent: str = "ask_faq") -> list[int]:
    with database.sessions.begin() as session:
        conversation = conversations.resolve_conversation(session, "rest", "lessons")
        ranking = [{"name": "nlu_fallback", "confidence": 0.45}, {"name": intent, "confidence": 0.3}]
        return [
            conversations.record_unresolved(
                session, conversation.id, None, text, "nlu_fallback", {"nlu": {"intent_ranking": ranking}}
            ).id
            for text in texts
        ]


def test_similar_messages_are_grouped_biggest_first(database: db.Database) -> None:
    log(database, LOYALTY, intent="out_of_scope")
    log(database, GIFT_WRAP)
    with database.sessions() as session:
        groups = curation.groups_for_display(curation.open_entries(session), get_encoder().encode)
    assert [sorted(m["text"] for m in g["messages"]) for g in groups] == [sorted(GIFT_WRAP), sorted(LOYALTY)]
    assert [g["suggested_intent"] for g in groups] == ["ask_faq", "out_of_scope"]
    assert groups[0]["reasons"] == {"nlu_fallback": 3}


def test_decisions_are_stored_with_who_made_them_and_leave_the_log(database: db.Database) -> None:
    ids = log(database, GIFT_WRAP + LOYALTY)
    with database.sessions.begin() as session:
        tia = create_agent(session, "tia@shop.test", PASSWORD, "trainer")
        assert curation.decide(session, ids[:3], "label", tia, "ask_gift_wrap") == 3
        curation.decide(session, ids[3:4], "kb_gap", tia, note="no article on loyalty points")
        curation.decide(session, ids[4:], "dismissed", tia)
        with pytest.raises(curation.TrainerError, match="intent name"):
            curation.decide(session, ids[:1], "label", tia, "Gift Wrap!")
        with pytest.raises(curation.TrainerError, match="no unresolved messages"):
            curation.decide(session, [99999], "dismissed", tia)
    with database.sessions() as session:
        assert curation.open_entries(session) == []
        rows = session.execute(sa.select(TrainingDecision.decision, TrainingDecision.agent_id)).all()
        assert sorted(decision for decision, _ in rows) == ["dismissed", "kb_gap", "label", "label", "label"]
        assert {agent for _, agent in rows} == {tia.id}


def test_the_export_is_valid_rasa_data_merged_without_duplicates(
    database: db.Database, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "data", project / "data")
    shutil.copy(ROOT / "domain.yml", project / "domain.yml")
    shutil.copy(ROOT / "config.yml", project / "config.yml")
    nlu = project / "data" / "nlu"
    hand_written = {path.name: path.read_text() for path in nlu.glob("*.yml")}
    ids = log(database, [*GIFT_WRAP, "where is my order", "  can you GIFT wrap my parcel "])
    with database.sessions.begin() as session:
        tia = create_agent(session, "tia@shop.test", PASSWORD, "trainer")
        curation.decide(session, ids, "label", tia, "ask_gift_wrap")
        first = curation.export(session, nlu, project / "domain.yml")
    # "where is my order" is already a hand-written example; the last one repeats the first.
    assert first["examples_added"] == 3 and first["new_intents"] == ["ask_gift_wrap"]
    with database.sessions.begin() as session:
        assert curation.export(session, nlu, project / "domain.yml")["examples_added"] == 0
    exported = yaml.safe_load((nlu / curation.EXPORT_FILE).read_text())
    [block] = exported["nlu"]
    assert block["intent"] == "ask_gift_wrap" and block["examples"].count("\n- ") == 2
    domain = yaml.safe_load((project / "domain.yml").read_text())
    assert "ask_gift_wrap" in domain["intents"] and "utter_ask_gift_wrap" in domain["responses"]
    assert {
        path.name: path.read_text() for path in nlu.glob("*.yml") if path.name in hand_written
    } == hand_written
    rasa = Path(sys.executable).parent / "rasa"
    result = subprocess.run(
        [str(rasa), "data", "validate", "--data", "data", "--domain", "domain.yml", "--config", "config.yml"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
