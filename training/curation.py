"""The trainers' side of the unresolved log: groups of similar messages, decisions, export.

Messages the bot could not handle (NLU fallbacks, knowledge-base misses, escalations without
a clear intent, conversations closed with a CSAT of 1 or 2) are logged by the gateway in
`unresolved_messages`. Here they are grouped by meaning (cosine similarity of the sentence
embeddings the NLU uses), biggest groups first, each with the intent the model leaned to;
a trainer labels them, marks them as knowledge-base gaps, or dismisses them; labels are
exported as Rasa NLU training data in a file of their own.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from handoff.auth import AgentRef
from handoff.models import TrainingDecision, UnresolvedMessage, utcnow

DECISIONS = ("label", "kb_gap", "dismissed")
INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
GROUP_SIMILARITY = 0.65  # cosine to a group's centre: paraphrases scored 0.61-0.87 here, other topics 0.3-0.6
EXPORT_FILE = "trainer_labels.yml"
NOT_INTENTS = {"nlu_fallback", None}


class TrainerError(ValueError):
    status = 400


class UnresolvedNotFound(TrainerError):
    status = 404


@dataclass(frozen=True)
class Entry:
    id: int
    text: str
    reason: str
    conversation_id: str
    created_at: str
    ranking: list[dict[str, Any]]  # the model's top intents for it, when known


def open_entries(session: Session) -> list[Entry]:
    """Unresolved messages no trainer has decided on yet, oldest first."""
    rows = session.scalars(
        sa.select(UnresolvedMessage)
        .outerjoin(TrainingDecision, TrainingDecision.unresolved_id == UnresolvedMessage.id)
        .where(TrainingDecision.id.is_(None))
        .order_by(UnresolvedMessage.id)
    )
    return [
        Entry(
            row.id,
            row.text,
            row.reason,
            row.conversation_id,
            row.created_at.isoformat(),
            list(((row.details or {}).get("nlu") or {}).get("intent_ranking") or []),
        )
        for row in rows
    ]


def entry(session: Session, unresolved_id: int) -> Entry | None:
    row = session.get(UnresolvedMessage, unresolved_id)
    if row is None:
        return None
    ranking = list(((row.details or {}).get("nlu") or {}).get("intent_ranking") or [])
    return Entry(row.id, row.text, row.reason, row.conversation_id, row.created_at.isoformat(), ranking)


def suggest_intent(entries: Sequence[Entry]) -> str | None:
    """The intent the model leaned to across the group: confidence summed over each message's
    ranking (the fallback itself is no suggestion)."""
    votes: dict[str, float] = defaultdict(float)
    for entry in entries:
        for item in entry.ranking:
            if item.get("name") not in NOT_INTENTS:
                votes[item["name"]] += float(item.get("confidence") or 0.0)
    return max(votes, key=votes.__getitem__) if votes else None


def group(
    entries: Sequence[Entry], vectors: np.ndarray, similarity: float = GROUP_SIMILARITY
) -> list[list[Entry]]:
    """Greedy grouping by meaning: each message joins the group whose centre is most similar,
    if similar enough, else starts one. Biggest groups first, then the oldest."""
    centres: list[np.ndarray] = []
    groups: list[list[int]] = []
    for index, vector in enumerate(vectors):
        vector = vector / (np.linalg.norm(vector) or 1.0)
        best, score = -1, similarity
        for number, centre in enumerate(centres):
            cosine = float(vector @ centre / (np.linalg.norm(centre) or 1.0))
            if cosine >= score:
                best, score = number, cosine
        if best < 0:
            centres.append(vector.copy())
            groups.append([index])
        else:
            groups[best].append(index)
            centres[best] = centres[best] + (vector - centres[best]) / len(groups[best])
    ordered = sorted(groups, key=lambda members: (-len(members), members[0]))
    return [[entries[index] for index in members] for members in ordered]


def groups_for_display(
    entries: Sequence[Entry], embed: Callable[[list[str]], np.ndarray]
) -> list[dict[str, Any]]:
    if not entries:
        return []
    vectors = embed([entry.text for entry in entries])
    return [
        {
            "size": len(members),
            "suggested_intent": suggest_intent(members),
            "reasons": dict(Counter(entry.reason for entry in members)),
            "messages": [entry.__dict__ for entry in members],
        }
        for members in group(entries, vectors)
    ]


def decide(
    session: Session,
    ids: Sequence[int],
    decision: str,
    agent: AgentRef,
    intent: str | None = None,
    note: str | None = None,
) -> int:
    """Stores one decision for each of the unresolved messages; returns how many."""
    ids = list(dict.fromkeys(ids))  # one decision per message, however often it is named
    if decision not in DECISIONS:
        raise TrainerError(f"decision must be one of {', '.join(DECISIONS)}")
    if decision == "label" and (not isinstance(intent, str) or not INTENT_NAME.match(intent)):
        raise TrainerError(
            "a label needs an intent name: lower-case letters, digits and _, like order_status"
        )
    if not ids:
        raise TrainerError("name the messages: 'ids' is empty")
    found = set(session.scalars(sa.select(UnresolvedMessage.id).where(UnresolvedMessage.id.in_(ids))))
    missing = sorted(set(ids) - found)
    if missing:
        raise UnresolvedNotFound(f"there are no unresolved messages {missing}")
    session.execute(sa.delete(TrainingDecision).where(TrainingDecision.unresolved_id.in_(ids)))
    for unresolved_id in ids:
        session.add(
            TrainingDecision(
                unresolved_id=unresolved_id,
                decision=decision,
                intent=intent if decision == "label" else None,
                note=note,
                agent_id=agent.id,
                created_at=utcnow(),
            )
        )
    return len(ids)


def _normal(text: str) -> str:
    """An example as Rasa compares them: entity markup read as its text, case, spaces and
    end punctuation aside ("where is my order?" repeats "Where is my order")."""
    plain = re.sub(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})", r"\1", text)
    return re.sub(r"\s+", " ", plain.lower()).strip(" ?!.,;:")


def _examples(path: Path) -> dict[str, list[str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    found: dict[str, list[str]] = defaultdict(list)
    for block in data.get("nlu") or []:
        if "intent" in block:
            for line in str(block.get("examples") or "").splitlines():
                if line.strip().startswith("- "):
                    found[block["intent"]].append(line.strip()[2:].strip())
    return found


def export(session: Session, nlu_dir: Path, domain_file: Path) -> dict[str, Any]:
    """Writes the labels into nlu_dir/trainer_labels.yml, merged with what it already holds,
    without duplicates, and skipping texts any hand-written file already has. New intents
    join the domain with a response for the shop to write. Returns what changed."""
    labels = session.execute(
        sa.select(TrainingDecision, UnresolvedMessage.text)
        .join(UnresolvedMessage, UnresolvedMessage.id == TrainingDecision.unresolved_id)
        .where(TrainingDecision.decision == "label")
        .order_by(TrainingDecision.id)
    ).all()
    target = nlu_dir / EXPORT_FILE
    written = _examples(target) if target.exists() else defaultdict(list)
    elsewhere = {
        _normal(text)
        for path in sorted(nlu_dir.glob("*.yml"))
        if path.name != EXPORT_FILE
        for examples in _examples(path).values()
        for text in examples
    }
    known = {_normal(text) for examples in written.values() for text in examples} | elsewhere
    added = 0
    for decision, text in labels:
        if _normal(text) not in known:
            written[decision.intent].append(text.strip())
            known.add(_normal(text))
            added += 1
        decision.exported_at = decision.exported_at or utcnow()
    new_intents = _add_intents(domain_file, sorted(written))
    lines = [
        "# Written by `make export-nlu` (and the trainer console) from trainers' labels.",
        "# Merged on every export; label in the console rather than editing here.",
        'version: "3.1"',
        "",
        "nlu:",
    ]
    for intent, examples in sorted(written.items()):
        if examples:
            lines += [
                f"- intent: {intent}",
                "  examples: |",
                *(f"    - {' '.join(text.split())}" for text in examples),
            ]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"file": str(target), "examples_added": added, "new_intents": new_intents}


def _add_intents(domain_file: Path, intents: Sequence[str]) -> list[str]:
    """Adds intents the domain lacks, each with a response to write; keeps the file's layout."""
    from ruamel.yaml import YAML

    parser = YAML()
    parser.preserve_quotes = True
    parser.width = 4096
    domain = parser.load(domain_file.read_text(encoding="utf-8"))
    missing = [intent for intent in intents if intent not in domain["intents"]]
    if not missing:
        return []
    for intent in missing:
        domain["intents"].append(intent)
        domain["responses"][f"utter_{intent}"] = [
            {"text": f"TODO: write the answer for '{intent}' (added by export-nlu)"}
        ]
    with domain_file.open("w", encoding="utf-8") as file:
        parser.dump(domain, file)
    return missing
