"""The frustration cues and score, with the real encoder and the shipped training set."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.shared.nlu.training_data.loading import load_data

from bot.nlu.frustration import CALM_INTENTS, TRAINING_FILE, CueFinder, FrustrationModel, training_set
from embeddings.encoder import get_encoder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model() -> FrustrationModel:
    texts, labels = training_set(ROOT / TRAINING_FILE, load_data(str(ROOT / "data" / "nlu")), CALM_INTENTS)
    return FrustrationModel(CueFinder()).fit(get_encoder().encode(texts), texts, labels)


def score(model: FrustrationModel, text: str) -> tuple[float, list[str]]:
    [result] = model.predict(get_encoder().encode([text]), [text])
    return result.score, result.cues


def test_cues_name_what_fired() -> None:
    cues = CueFinder()
    fired = cues.cues(cues.features("THIS IS RIDICULOUS, THIRD TIME I ASK!!! I'll dispute the charge ASAP"))
    assert {"capitals", "!!/??", "repetition", "threat", "exasperation", "urgency"} <= set(fired)
    assert cues.cues(cues.features("is the XL size in STOCK?")) == []  # one word in capitals is not shouting
    assert "sarcasm" not in cues.cues(cues.features("these boots are brilliant, love them"))
    assert "sarcasm" in cues.cues(cues.features("oh great, my parcel is lost again. love it"))


def test_a_furious_message_scores_high_and_a_calm_problem_report_low(model: FrustrationModel) -> None:
    furious, cues = score(model, "This is the THIRD time I'm asking where my order is. Absolutely useless!!!")
    assert furious >= 0.5 and "repetition" in cues
    calm, _ = score(model, "the lid of the jar was cracked, could I get another one?")
    assert calm < 0.5
    for everyday in ("hello there", "ok thanks", "100234", "bye for now"):
        assert score(model, everyday)[0] < 0.5, everyday


def test_the_model_round_trips_through_bytes(model: FrustrationModel) -> None:
    text = "still no refund after three weeks, I'm done with you"
    restored = FrustrationModel(CueFinder()).load_bytes(model.to_bytes())
    assert score(restored, text) == score(model, text)
