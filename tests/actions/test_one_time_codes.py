"""One-time codes (actions/one_time_codes.py) and the mail that carries them (actions/mail.py):
a code confirms once, wrong entries are counted (also by a second action server sharing
Redis), an order's mailbox gets a limited number of codes, and the mail reaches a real SMTP
server on loopback, or the failure to send it is told."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as redis

from actions.mail import MailSettings, MailUnavailable, compose, send
from actions.one_time_codes import PREFIX, CodeRules, OneTimeCodes, normalise_code
from tests.support.mailbox import Mailbox
from tests.support.stack import free_port
from token_buckets import TokenBuckets

REDIS_URL = "redis://127.0.0.1:6379/0"


def subject() -> str:
    return f"cancel:test-{uuid.uuid4().hex}:100237"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_what_a_customer_types_for_the_code() -> None:
    assert normalise_code(" 482 913 ") == normalise_code("482-913.") == "482913"
    assert normalise_code("48291") is None and normalise_code("4829130") is None
    assert normalise_code("code 482913") is None  # a sentence is not a code


async def test_a_code_confirms_once_and_only_its_own_subject() -> None:
    codes, mine = OneTimeCodes(), subject()
    code = await codes.issue(mine, "100237")
    assert code is not None and len(code) == 6
    assert (await codes.check(subject(), code)).outcome == "spent"  # another conversation's
    assert not await codes.consume(mine)  # not entered yet
    code = await codes.issue(mine, "100237")  # a new code replaces the old one
    assert (await codes.check(mine, code)).outcome == "confirmed"
    assert await codes.consume(mine)
    assert not await codes.consume(mine)  # used once


async def test_three_wrong_entries_spend_the_code_even_the_right_one_after() -> None:
    codes, mine = OneTimeCodes(CodeRules(tries=3)), subject()
    code = await codes.issue(mine, "100237")
    assert [(await codes.check(mine, wrong(code))).tries_left for _ in range(2)] == [2, 1]
    assert (await codes.check(mine, wrong(code))).outcome == "spent"
    assert (await codes.check(mine, code)).outcome == "spent"
    assert not await codes.consume(mine)


async def test_an_order_gets_a_limited_number_of_codes_per_hour() -> None:
    codes, order = OneTimeCodes(CodeRules(per_order_per_hour=2)), f"9{uuid.uuid4().int % 10**7:07d}"
    assert [await codes.issue(subject(), order) is not None for _ in range(3)] == [True, True, False]
    assert await codes.issue(subject(), "another order") is not None


async def test_two_action_servers_share_codes_and_tries_in_redis() -> None:
    clients = redis.from_url(REDIS_URL), redis.from_url(REDIS_URL)
    one, two = (OneTimeCodes(CodeRules(tries=2), c, TokenBuckets(f"{PREFIX}:sent", c)) for c in clients)
    mine = subject()
    try:
        code = await one.issue(mine, "100237")
        assert (await two.check(mine, wrong(code))).tries_left == 1
        assert (await one.check(mine, wrong(code))).outcome == "spent"
        code = await two.issue(mine, "100237")
        assert (await one.check(mine, code)).outcome == "confirmed"
        assert await two.consume(mine) and not await one.consume(mine)
        assert await clients[0].ttl(f"{PREFIX}:{mine}") == -2  # the used code is gone
    finally:
        for client in clients:
            await client.close()


async def test_the_code_mail_reaches_the_customers_smtp_server() -> None:
    mailbox = Mailbox(free_port())
    mailbox.start()
    try:
        message = compose(
            "cancel_code", "sam.patel@example.net", order_id="100237", code="482913", minutes=10
        )
        await send(message, MailSettings(port=mailbox.port, tls="none"))
        assert mailbox.cancel_code("sam.patel@example.net", "100237") == "482913"
        received = mailbox.to("sam.patel@example.net")[0]
        assert "Harbor Lane Supply" in received["From"] and "10 minutes" in received.get_payload()
    finally:
        mailbox.stop()


async def test_no_smtp_server_is_a_clear_failure_not_a_crash() -> None:
    with pytest.raises(MailUnavailable):
        await send(
            compose("cancel_code", "x@example.com", order_id="1", code="1", minutes=1),
            MailSettings(port=free_port(), timeout_seconds=2),
        )
