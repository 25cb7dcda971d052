"""The Rasa server's kept trackers (bot/nlu/tracker_cache.py): a kept tracker is used only
while the database holds nothing it lacks, and it is what Rasa's own load would give."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.nlu import tracker_cache

DOMAIN = {
    "intents": ["greet"],
    "slots": {"order_number": {"type": "text", "mappings": [{"type": "custom"}]}},
}


@pytest.fixture
def stores(tmp_path: Path) -> tuple[SQLTrackerStore, SQLTrackerStore]:
    """Two stores on one SQLite file, as two Rasa processes would have."""
    tracker_cache.install()
    tracker_cache.KEPT.clear()
    domain = Domain.from_dict(DOMAIN)
    db = str(tmp_path / "tracker.db")
    return SQLTrackerStore(domain, dialect="sqlite", db=db), SQLTrackerStore(domain, dialect="sqlite", db=db)


def _conversation(store: SQLTrackerStore, sender: str) -> DialogueStateTracker:
    tracker = DialogueStateTracker.from_events(
        sender,
        [
            ActionExecuted("action_session_start", timestamp=1.0),
            SessionStarted(timestamp=2.0),
            ActionExecuted("action_listen", timestamp=3.0),
            UserUttered("hello", {"name": "greet", "confidence": 1.0}, timestamp=4.0),
        ],
        slots=store.domain.slots,
    )
    asyncio.run(store.save(tracker))
    return tracker


def _dicts(tracker: DialogueStateTracker | None) -> list[dict]:
    assert tracker is not None
    return [event.as_dict() for event in tracker.events]


def _rasa_load(store: SQLTrackerStore, sender: str) -> DialogueStateTracker | None:
    return asyncio.run(tracker_cache._rasa_retrieve(store, sender))


def test_a_saved_tracker_comes_back_without_loading_and_equals_rasa_s_own_load(stores) -> None:
    store, _ = stores
    tracker = _conversation(store, "a")
    # The first save held the session's opening action, which a load leaves out: loaded once.
    first = asyncio.run(store.retrieve("a"))
    assert first is not tracker
    first.update(SlotSet("order_number", "100234", timestamp=5.0))
    asyncio.run(store.save(first))

    hits = tracker_cache.KEPT.hits
    again = asyncio.run(store.retrieve("a"))
    assert again is first
    assert tracker_cache.KEPT.hits == hits + 1
    assert _dicts(again) == _dicts(_rasa_load(store, "a"))
    assert again.get_slot("order_number") == "100234"


def test_what_another_process_wrote_is_loaded(stores) -> None:
    store, other = stores
    _conversation(store, "b")
    kept = asyncio.run(store.retrieve("b"))
    asyncio.run(store.save(kept))

    theirs = asyncio.run(other.retrieve("b"))
    theirs.update(SlotSet("order_number", "100237", timestamp=6.0))
    asyncio.run(other.save(theirs))

    mine = asyncio.run(store.retrieve("b"))
    assert mine is not kept
    assert mine.get_slot("order_number") == "100237"
    assert _dicts(mine) == _dicts(_rasa_load(store, "b"))


def test_a_tracker_that_grew_without_being_saved_is_not_used(stores) -> None:
    store, _ = stores
    _conversation(store, "c")
    kept = asyncio.run(store.retrieve("c"))
    asyncio.run(store.save(kept))
    # A message whose handling failed after changing the tracker, before saving it.
    kept.update(SlotSet("order_number", "999999", timestamp=7.0))

    loaded = asyncio.run(store.retrieve("c"))
    assert loaded is not kept
    assert loaded.get_slot("order_number") is None


def test_a_new_model_s_domain_loads_again(stores) -> None:
    store, _ = stores
    _conversation(store, "d")
    kept = asyncio.run(store.retrieve("d"))
    asyncio.run(store.save(kept))
    store.domain = Domain.from_dict(DOMAIN)
    assert asyncio.run(store.retrieve("d")) is not kept


def test_the_least_recently_used_goes_first(stores, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = stores
    monkeypatch.setattr(tracker_cache.KEPT, "size", 2)
    for sender in ("e1", "e2", "e3"):
        _conversation(store, sender)
        asyncio.run(store.save(asyncio.run(store.retrieve(sender))))
    assert tracker_cache.KEPT.get(store, "e1") is None
    assert tracker_cache.KEPT.get(store, "e3") is not None
