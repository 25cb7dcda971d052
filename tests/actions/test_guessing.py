"""Failed ownership checks (actions/guessing.py): counted per order, email and address across
conversations, in process or in the local Redis shared by two action servers; a check
that succeeds costs nothing, and a blocked one spends nothing."""

from __future__ import annotations

import uuid

import redis.asyncio as redis
from rasa_sdk import Tracker

from actions.guessing import PREFIX, FailedChecks, check_keys
from tests.support.stack import free_port
from token_buckets import TokenBuckets

REDIS_URL = "redis://127.0.0.1:6379/0"


def tracker(address: str | None) -> Tracker:
    metadata = {"address": address} if address else {}
    return Tracker("c", {}, {"text": "x", "metadata": metadata}, [], False, None, {}, "")


def test_the_buckets_a_check_draws_on() -> None:
    assert check_keys(tracker("203.0.113.4"), "rma-5", "Jane@Example.com") == [
        ("order", "RMA-5"),
        ("email", "jane@example.com"),
        ("address", "203.0.113.4"),
    ]
    assert check_keys(tracker(None), "100234", None) == [("order", "100234")]


async def test_five_failures_of_an_order_block_it_whoever_tries() -> None:
    checks = FailedChecks()
    order = str(uuid.uuid4())
    for n in range(5):
        keys = [("order", order), ("email", f"guess{n}@example.net")]
        assert not await checks.blocked(keys)
        await checks.failed(keys)
    assert await checks.blocked([("order", order), ("email", "the.owner@example.com")])
    assert not await checks.blocked([("order", "another order")])
    # Asking whether it is blocked spent nothing.
    for _ in range(10):
        assert not await checks.blocked([("order", "asked often")])


async def test_one_address_guessing_many_orders_is_stopped_after_ten() -> None:
    checks = FailedChecks()
    address = f"198.51.100.{uuid.uuid4().int % 250}"
    for n in range(10):
        await checks.failed([("order", f"10{n:04d}-{address}"), ("address", address)])
    assert await checks.blocked([("order", "fresh"), ("address", address)])


async def test_two_action_servers_share_the_counts_in_redis() -> None:
    one, two = (
        FailedChecks(TokenBuckets(PREFIX, redis.from_url(REDIS_URL))),
        FailedChecks(TokenBuckets(PREFIX, redis.from_url(REDIS_URL))),
    )
    order = f"test-{uuid.uuid4().hex}"
    for checks in (one, two, one, two, one):
        await checks.failed([("order", order)])
    assert await two.blocked([("order", order)])
    assert not await two.blocked([("order", f"other-{order}")])


async def test_with_redis_gone_the_counts_stay_in_the_process() -> None:
    checks = FailedChecks(TokenBuckets(PREFIX, redis.from_url(f"redis://127.0.0.1:{free_port()}/0")))
    for _ in range(5):
        await checks.failed([("order", "100234")])
    assert await checks.blocked([("order", "100234")])
