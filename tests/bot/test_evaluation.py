from __future__ import annotations

from bot.evaluation import compare


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
