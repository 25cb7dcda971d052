from __future__ import annotations

from pathlib import Path

from training.evaluation import History, compare


def summary(model: str, accuracy: float, f1: dict[str, float]) -> dict:
    return {
        "model": model,
        "accuracy": accuracy,
        "macro_f1": sum(f1.values()) / len(f1),
        "intents": {name: {"f1-score": value} for name, value in f1.items()},
        "confusion_matrix": f"reports/{model}/intent_confusion_matrix.png",
    }


def test_the_comparison_names_what_got_better_and_worse() -> None:
    before = summary("model-a", 0.90, {"order_status": 0.95, "ask_faq": 0.80, "thank": 1.0})
    after = summary(
        "model-b", 0.93, {"order_status": 0.93, "ask_faq": 0.90, "thank": 1.0, "ask_gift_wrap": 0.8}
    )
    text = compare(after, before)
    assert "accuracy 93.0%" in text and "Before (model-a): accuracy 90.0%" in text
    assert "Better: ask_faq 0.80 -> 0.90, ask_gift_wrap 0.00 -> 0.80" in text
    assert "Worse: order_status 0.95 -> 0.93" in text
    assert "thank" not in text
    assert "nothing to compare" in compare(after, None)


def test_the_history_is_remembered_and_the_before_is_another_model(tmp_path: Path) -> None:
    history = History(tmp_path)
    assert history.latest() == (None, None) and not history.has("model-a")
    a, b = summary("model-a", 0.90, {"thank": 1.0}), summary("model-b", 0.93, {"thank": 1.0})
    assert history.record(a) is None
    assert history.record(b) == a
    assert history.record(b) == a  # evaluated twice: the "before" is still the other model
    assert history.latest() == (b, a) and history.has("model-a") and not history.has("model-c")
    assert [entry["model"] for entry in History(tmp_path).entries()] == ["model-a", "model-b", "model-b"]
