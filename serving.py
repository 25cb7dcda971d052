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

Processes that start together on one database (scale mode) migrate its schema one at a
time (`one_process_at_a_time`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
import zlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

logger = logging.getLogger(__name__)

SLOW_COLLECTION_MS = 100.0

# Every serving process, as the Procfile, deploy/scaled.py and the tests start them: one
# thread each for numpy's OpenBLAS and TensorFlow. A message is too small to split, and
# idle OpenBLAS threads spin: make bench-load measured a second Rasa thread burning 52 ms
# of CPU per message without this.
# The action server (rasa_sdk 3.6, a Sanic server) closes an idle connection after Sanic's
# 5 s: a call Rasa sent on it at that moment failed ("Can not write request body"), and the
# customer got the apology (make bench-load: 1 in ~15,000 messages). Rasa's client (aiohttp)
# drops idle connections after 15 s, so the server keeps them for 120 s, as Rasa's own does
# (rasa-sdk 3.8 does the same). Sanic reads SANIC_* variables; the others ignore it.
SERVING_ENV = {
    "OMP_NUM_THREADS": "1",
    "TF_INTER_OP_PARALLELISM_THREADS": "1",
    "TF_INTRA_OP_PARALLELISM_THREADS": "1",
    "SANIC_KEEP_ALIVE_TIMEOUT": "120",
}


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


@contextlib.contextmanager
def one_process_at_a_time(url: str, name: str) -> Iterator[None]:
    """Holds a PostgreSQL advisory lock named `name` (on SQLite, nothing): in scale mode two
    gateways or two action servers start together on one database, and both would create
    the same tables; the second waits, then finds the schema up to date."""
    if sa.engine.make_url(url).get_backend_name() != "postgresql":
        yield
        return
    key = zlib.crc32(name.encode("utf-8"))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()
