"""Link codes: one customer across channels, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from handoff import conversations, db, identity
from handoff.auth import Backoff, BackoffRule
from handoff.models import LinkCode


def test_a_code_joins_a_second_channel_to_the_same_conversation_once(database: db.Database) -> None:
    with database.sessions.begin() as session:
        web = conversations.resolve_conversation(session, "socketio", "web-session-1")
        code, expires = identity.issue_code(session, "socketio", "web-session-1")
        # The Telegram chat wrote before linking: its own conversation is left behind.
        conversations.resolve_conversation(session, "telegram", "777")
    assert len(code) == 8 and set(code) <= set(identity.ALPHABET)
    assert dt.timedelta(minutes=9) < expires - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(minutes=10)
    with database.sessions.begin() as session:
        joined = identity.claim_code(session, code.lower()[:4] + "-" + code[4:], "telegram", "777")
    assert joined.id == web.id
    with database.sessions.begin() as session:
        assert conversations.find_conversation(session, "telegram", "777").id == web.id
        assert conversations.find_conversation(session, "socketio", "web-session-1").id == web.id
    with database.sessions.begin() as session, pytest.raises(identity.LinkError, match="already used"):
        identity.claim_code(session, code, "telegram", "888")


def test_wrong_and_expired_codes_are_refused(database: db.Database) -> None:
    with database.sessions.begin() as session:
        code, _ = identity.issue_code(session, "telegram", "555")
        session.execute(
            sa.update(LinkCode).values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
        )
    with database.sessions.begin() as session, pytest.raises(identity.LinkError, match="expired"):
        identity.claim_code(session, code, "socketio", "web-session-2")
    with database.sessions.begin() as session, pytest.raises(identity.LinkError, match="not valid"):
        identity.claim_code(session, "ABCDEFGH", "socketio", "web-session-2")


def test_guessing_codes_slows_down_per_chat_and_per_address() -> None:
    # the gateway's settings for link claims (bot/app.py)
    throttle = Backoff(pair=BackoffRule(3, 600), address=BackoffRule(10, 900), subject=BackoffRule(3, 600))
    for _ in range(3):
        assert throttle.begin("telegram:999", None, now=0.0) == 0
        throttle.end("telegram:999", None, succeeded=False, now=0.0)
    assert throttle.begin("telegram:999", None, now=0.5) == 0.5  # a second after the last failure
    assert throttle.begin("telegram:1000", None, now=0.5) == 0  # someone else is not affected
    assert throttle.begin("telegram:999", None, now=1.0) == 0  # the wait is over: a fourth try
    throttle.end("telegram:999", None, succeeded=False, now=1.0)
    assert throttle.begin("telegram:999", None, now=2.0) == 1.0  # then two seconds
    # Web sessions are free to make: ten wrong codes of one address, whatever the session.
    for n in range(10):
        assert throttle.begin(f"socketio:s{n}", "203.0.113.8", now=10.0) == 0
        throttle.end(f"socketio:s{n}", "203.0.113.8", succeeded=False, now=10.0)
    assert throttle.begin("socketio:fresh", "203.0.113.8", now=10.0) > 0
    assert throttle.begin("socketio:fresh", "198.51.100.2", now=10.0) == 0
