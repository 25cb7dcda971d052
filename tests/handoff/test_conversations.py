from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from handoff import conversations, db


@pytest.fixture
def database(database_url: str):
    db.migrate(database_url)
    database = db.Database(database_url)
    yield database
    database.close()


def test_a_sender_keeps_one_conversation(database: db.Database) -> None:
    with database.sessions.begin() as session:
        first = conversations.resolve_conversation(session, "rest", "alice").id
    with database.sessions.begin() as session:
        again = conversations.resolve_conversation(session, "rest", "alice").id
        other = conversations.resolve_conversation(session, "rest", "bob").id
        same_name_other_channel = conversations.resolve_conversation(session, "telegram", "alice").id
    assert again == first
    assert len({first, other, same_name_other_channel}) == 3


def test_first_messages_racing_create_one_customer(database: db.Database) -> None:
    def first_message(_: int) -> str:
        with database.sessions.begin() as session:
            return conversations.resolve_conversation(session, "rest", "racer").id

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(first_message, range(12)))
    assert len(set(ids)) == 1


async def test_units_of_work_run_off_the_event_loop_and_commit(database: db.Database) -> None:
    def store(session: db.Session) -> str:
        conversation = conversations.resolve_conversation(session, "rest", "erin")
        conversations.record_message(session, conversation.id, "customer", "hello", "rest")
        return conversation.id

    conversation_id = await database.run(store)
    await database.ping()
    with database.sessions() as session:
        assert [m.text for m in conversations.transcript(session, conversation_id)] == ["hello"]


def test_transcript_keeps_order_authors_and_payloads(database: db.Database) -> None:
    buttons = {"buttons": [{"title": "Yes", "payload": "/affirm"}]}
    with database.sessions.begin() as session:
        conversation = conversations.resolve_conversation(session, "rest", "carol")
        message_id = conversations.record_message(session, conversation.id, "customer", "hi", "rest")
        conversations.record_message(session, conversation.id, "bot", "Hello!", "rest", buttons)
        conversations.open_ticket(session, conversation.id, "customer_request", {"order_id": "100234"})
        conversations.record_unresolved(session, conversation.id, message_id, "hi", "nlu_fallback", {})
    with database.sessions() as session:
        lines = conversations.transcript(session, conversation.id)
    assert [(m.author, m.text) for m in lines] == [("customer", "hi"), ("bot", "Hello!")]
    assert lines[1].payload == buttons


def test_a_conversation_has_one_open_ticket_at_a_time(database: db.Database) -> None:
    with database.sessions.begin() as session:
        conversation = conversations.resolve_conversation(session, "rest", "gina")
        first, created = conversations.open_ticket(session, conversation.id, "customer_request")
        again, created_again = conversations.open_ticket(session, conversation.id, "assistant_unavailable")
    assert created and not created_again
    assert again.id == first.id
    assert again.reason == "customer_request"
