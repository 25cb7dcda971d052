from __future__ import annotations

import asyncio

import pytest

from handoff import conversations, db


@pytest.fixture
async def sessions(database_url: str):
    await asyncio.get_running_loop().run_in_executor(None, db.migrate, database_url)
    engine = db.create_engine(database_url)
    yield db.session_factory(engine)
    await engine.dispose()


async def test_a_sender_keeps_one_conversation(sessions) -> None:
    async with sessions.begin() as session:
        first = await conversations.resolve_conversation(session, "rest", "alice")
    async with sessions.begin() as session:
        again = await conversations.resolve_conversation(session, "rest", "alice")
        other = await conversations.resolve_conversation(session, "rest", "bob")
        same_name_other_channel = await conversations.resolve_conversation(session, "telegram", "alice")
    assert again.id == first.id
    assert len({first.id, other.id, same_name_other_channel.id}) == 3


async def test_first_messages_racing_create_one_customer(sessions) -> None:
    async def first_message() -> str:
        async with sessions.begin() as session:
            return (await conversations.resolve_conversation(session, "rest", "racer")).id

    ids = await asyncio.gather(*(first_message() for _ in range(5)), return_exceptions=True)
    errors = [i for i in ids if isinstance(i, BaseException)]
    # SQLite serialises writers and may refuse a concurrent one; no duplicate is ever made.
    assert len({i for i in ids if isinstance(i, str)}) == 1, errors


async def test_transcript_keeps_order_authors_and_payloads(sessions) -> None:
    async with sessions.begin() as session:
        conversation = await conversations.resolve_conversation(session, "rest", "carol")
        message = await conversations.record_message(session, conversation, "customer", "hi", "rest")
        await conversations.record_message(
            session,
            conversation,
            "bot",
            "Hello!",
            "rest",
            {"buttons": [{"title": "Yes", "payload": "/affirm"}]},
        )
        await conversations.open_ticket(session, conversation, "customer_request", {"order_id": "100234"})
        await conversations.record_unresolved(session, conversation, message, "hi", "nlu_fallback", {})
    async with sessions() as session:
        lines = await conversations.transcript(session, conversation.id)
    assert [(m.author, m.text) for m in lines] == [("customer", "hi"), ("bot", "Hello!")]
    assert lines[1].payload == {"buttons": [{"title": "Yes", "payload": "/affirm"}]}
