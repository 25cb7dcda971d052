"""The knowledge base the action server serves: the FAQ articles and the return policy, one
index for the process, reloaded when knowledge_base/ changes (actions/retrieval.py).

The FAQ answers and the returns read it from here, so neither reaches into the other.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys

from actions.retrieval import KnowledgeService
from actions.returns.policy import ReturnPolicy
from actions.settings import get_settings
from serving import freeze_heap

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def knowledge_service() -> KnowledgeService:
    from embeddings.encoder import get_encoder

    return KnowledgeService(get_settings().knowledge_base_dir, get_encoder)


def _warm_up() -> None:
    try:
        knowledge_service().index()
    except Exception:  # logged by the service; the first question will report it again
        logger.exception("The knowledge base could not be loaded at start-up")
    freeze_heap("loading the encoder and indexing the knowledge base")


if "rasa_sdk.endpoint" in sys.modules:
    # Inside the action server: load the model and index the articles before the server
    # opens its port (rasa_sdk imports the actions first), rather than take calls it would
    # keep waiting for half a minute. In scale mode this matters: a restarted action server
    # that took calls while indexing held Rasa past the gateway's timeout (make
    # test-faults), where a closed port sends them to the other action server.
    _warm_up()


async def current_policy() -> ReturnPolicy:
    """The return policy the knowledge base serves now (edits apply without a restart)."""
    index = await asyncio.to_thread(knowledge_service().index)
    return index.knowledge_base.return_policy
