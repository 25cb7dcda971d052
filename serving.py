"""What the three serving processes (Rasa, the action server, the gateway) do once they have
loaded what they keep for their lifetime.

Python's cyclic garbage collector walks every tracked object of the oldest generation on a
full collection. A Rasa process holds about a million of them once the model is loaded
(TensorFlow, spaCy, the graph); under load a full collection came every few seconds and
stopped its event loop for a quarter of a second or more, and every customer waiting on that
process waited too (`make bench-load`, docs/benchmarks.md). `gc.freeze()` moves everything
alive at that moment into a permanent generation the collector no longer walks; objects are
still freed as soon as nothing refers to them, only cycles among the frozen ones are never
collected. Each process calls `freeze_heap` once its long-lived objects exist: Rasa after a
model is loaded, the action server after the knowledge base is indexed, the gateway after
start-up. A collection that still takes longer than `SLOW_COLLECTION_MS` is logged.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

logger = logging.getLogger(__name__)

SLOW_COLLECTION_MS = 100.0


def freeze_heap(what: str) -> int:
    """Collect what is garbage now, then freeze the rest; returns the objects frozen."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info(
        "Froze %d objects after %s (%.0f ms): full garbage collections skip them",
        frozen,
        what,
        (time.perf_counter() - started) * 1000,
    )
    _watch_collections()
    return frozen


_started = 0.0


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    global _started
    if phase == "start":
        _started = time.perf_counter()
        return
    took_ms = (time.perf_counter() - _started) * 1000
    if took_ms > SLOW_COLLECTION_MS:
        logger.warning(
            "A garbage collection (generation %d) stopped the process for %.0f ms",
            info["generation"],
            took_ms,
        )


def _watch_collections() -> None:
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)
