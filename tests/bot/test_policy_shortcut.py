"""With the trained model, skipping TED when RulePolicy is certain
(bot/nlu/rasa_patches.py) changes no prediction: at every step of every story and rule in
data/, the action, the policy that chose it and its confidence are those of Rasa's full
ensemble, and TED was in fact skipped for most of them."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from rasa.core.agent import load_agent
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.shared.core.constants import RULE_SNIPPET_ACTION_NAME
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.generator import TrainingDataGenerator
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.importers.importer import TrainingDataImporter

from bot.nlu import rasa_patches
from tests.support.stack import ROOT
from training.model import current_model

pytestmark = pytest.mark.e2e


def test_skipping_the_policies_a_certain_rule_overrules_changes_no_prediction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = asyncio.run(load_agent(model_path=str(current_model())))
    processor, domain = agent.processor, agent.domain
    importer = TrainingDataImporter.load_from_config(
        str(ROOT / "config.yml"), str(ROOT / "domain.yml"), [str(ROOT / "data")]
    )
    trackers = TrainingDataGenerator(importer.get_stories(), domain, augmentation_factor=0).generate()

    skipped = {"n": 0}
    nothing = rasa_patches._nothing

    def counted(policy: object, domain: object) -> object:
        skipped["n"] += isinstance(policy, TEDPolicy)
        return nothing(policy, domain)  # type: ignore[arg-type]

    monkeypatch.setattr(rasa_patches, "_nothing", counted)

    def decide(tracker: DialogueStateTracker, skip: bool) -> tuple[int, str | None, float]:
        monkeypatch.setattr(rasa_patches, "skip_when_rules_decide", skip)
        prediction = processor._predict_next_with_tracker(tracker.copy())
        return int(np.argmax(prediction.probabilities)), prediction.policy_name, prediction.max_confidence

    steps = 0
    for story in trackers:
        events = list(story.events)
        for i, event in enumerate(events):
            snippet = isinstance(event, ActionExecuted) and event.action_name == RULE_SNIPPET_ACTION_NAME
            if i == 0 or not isinstance(event, ActionExecuted) or snippet:
                continue
            prefix = DialogueStateTracker.from_events(story.sender_id, events[:i], slots=domain.slots)
            full = decide(prefix, skip=False)
            short = decide(prefix, skip=True)
            assert short == full, f"{story.sender_id} step {i}: {domain.action_names_or_texts[full[0]]}"
            steps += 1
    assert steps > 200
    assert skipped["n"] > steps / 2
