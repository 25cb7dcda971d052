"""The Rasa server keeps the trackers it saved, and loads one from the SQL tracker store only
when the database holds something the kept one does not.

For every customer message Rasa 3.6's SQL tracker store reads all events of the
conversation's session, parses each from JSON and replays them into a new tracker; a moment
later it saves the same tracker with one or two events more. `make profile --scripts` put
that load at 3-6 ms of every message, growing with the conversation. Here `save` keeps the
tracker it has just written, with the number of the session's events and the id of the
newest row, once the database agrees with the tracker; `retrieve` gives that tracker back
when one indexed query finds the newest row unchanged and the tracker has not grown since
(a handler that failed before saving leaves its tracker grown, so it is not used). Anything
else (another process wrote to the conversation, a model was loaded, a conversation not
kept) loads from the database exactly as Rasa does.

The kept tracker is the object Rasa itself handles next: Rasa's lock store serves one message
of a conversation at a time, and its HTTP routes that read a tracker without the lock load
the full tracker (`retrieve_full_tracker`), which is never kept. With an event broker,
Rasa's save first retrieves the stored tracker to find the new events: the kept one has grown
by then, so that read loads from the database and the broker gets the same events.
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

# Trackers kept per Rasa process; the least recently used goes first.
KEPT_TRACKERS = 5000

_rasa_retrieve = SQLTrackerStore.retrieve
_rasa_save = SQLTrackerStore.save


@dataclass(frozen=True)
class _Kept:
    tracker: DialogueStateTracker
    domain: Domain
    events: int  # len(tracker.events) when it was saved
    newest_row: int  # the id of the conversation's newest row then


class KeptTrackers:
    def __init__(self, size: int = KEPT_TRACKERS) -> None:
        self.size = size
        self._kept: collections.OrderedDict[tuple[int, str], _Kept] = collections.OrderedDict()
        self.hits = self.misses = 0

    def get(self, store: SQLTrackerStore, sender_id: str) -> _Kept | None:
        return self._kept.get((id(store), sender_id))

    def put(self, store: SQLTrackerStore, sender_id: str, kept: _Kept) -> None:
        key = (id(store), sender_id)
        self._kept[key] = kept
        self._kept.move_to_end(key)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    def drop(self, store: SQLTrackerStore, sender_id: str) -> None:
        self._kept.pop((id(store), sender_id), None)

    def clear(self) -> None:
        self._kept.clear()


KEPT = KeptTrackers()


def _newest_row(store: SQLTrackerStore, sender_id: str) -> int | None:
    with store.session_scope() as session:
        return session.execute(
            sa.select(sa.func.max(store.SQLEvent.id)).where(store.SQLEvent.sender_id == sender_id)
        ).scalar()


def _session_rows(store: SQLTrackerStore, sender_id: str) -> tuple[int, int | None]:
    """How many events of the latest session the database holds, and the newest row's id."""
    with store.session_scope() as session:
        query = store._event_query(session, sender_id, fetch_events_from_all_sessions=False).order_by(None)
        rows = query.with_entities(sa.func.count(store.SQLEvent.id), sa.func.max(store.SQLEvent.id))
        count, newest = rows.one()
        return int(count), newest


@functools.wraps(_rasa_retrieve)
async def retrieve(self: SQLTrackerStore, sender_id: str) -> DialogueStateTracker | None:
    kept = KEPT.get(self, sender_id)
    if (
        kept is not None
        and kept.domain is self.domain
        and len(kept.tracker.events) == kept.events
        and _newest_row(self, sender_id) == kept.newest_row
    ):
        KEPT.hits += 1
        return kept.tracker
    KEPT.misses += 1
    KEPT.drop(self, sender_id)
    return await _rasa_retrieve(self, sender_id)


@functools.wraps(_rasa_save)
async def save(self: SQLTrackerStore, tracker: DialogueStateTracker) -> None:
    KEPT.drop(self, tracker.sender_id)
    await _rasa_save(self, tracker)
    count, newest = _session_rows(self, tracker.sender_id)
    # Kept only if a load would give the same events: a tracker that still holds an earlier
    # session (a session started during this message) is loaded next time.
    if newest is not None and count == len(tracker.events):
        KEPT.put(self, tracker.sender_id, _Kept(tracker, self.domain, count, newest))


def install() -> None:
    SQLTrackerStore.retrieve = retrieve  # type: ignore[method-assign]
    SQLTrackerStore.save = save  # type: ignore[method-assign]
