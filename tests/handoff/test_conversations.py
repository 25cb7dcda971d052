from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from handoff import conversations, db, tickets


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


async def test_units_of_work_commit_before_they_return(database: db.Database) -> None:
    # SQLite runs them on the event loop, PostgreSQL in the thread pool: both must commit.
    assert database.on_event_loop == database_url_is_sqlite(database)

    def store(session: db.Session) -> str:
        conversation = conversations.resolve_conversation(session, "rest", "erin")
        conversations.record_message(session, conversation.id, "customer", "hello", "rest")
        return conversation.id

    conversation_id = await database.run(store)
    known = await database.execute(conversations.find_conversation, "rest", "erin")
    assert known is not None and known.id == conversation_id
    await database.execute(conversations.record_message, conversation_id, "bot", "Hi!", "rest")
    await database.ping()
    with database.sessions() as session:
        assert [line["text"] for line in tickets.transcript(session, conversation_id)] == ["hello", "Hi!"]
    assert await database.execute(conversations.find_conversation, "rest", "nobody") is None


def database_url_is_sqlite(database: db.Database) -> bool:
    return database.engine.dialect.name == "sqlite"


def test_transcript_keeps_order_authors_and_payloads(database: db.Database) -> None:
    buttons = {"buttons": [{"title": "Yes", "payload": "/affirm"}]}
    with database.sessions.begin() as session:
        conversation = conversations.resolve_conversation(session, "rest", "carol")
        message_id = conversations.record_message(session, conversation.id, "customer", "hi", "rest")
        conversations.record_message(session, conversation.id, "bot", "Hello!", "rest", buttons)
        conversations.open_ticket(session, conversation.id, "customer_request", {"order_id": "100234"})
        conversations.record_unresolved(session, conversation.id, message_id, "hi", "nlu_fallback", {})
    with database.sessions() as session:
        lines = tickets.transcript(session, conversation.id)
    assert [(line["author"], line["text"]) for line in lines] == [("customer", "hi"), ("bot", "Hello!")]
    assert lines[1]["payload"] == buttons


def test_a_conversation_has_one_open_ticket_at_a_time(database: db.Database) -> None:
    with database.sessions.begin() as session:
        conversation = conversations.resolve_conversation(session, "rest", "gina")
        first, created = conversations.open_ticket(session, conversation.id, "customer_request")
        again, created_again = conversations.open_ticket(session, conversation.id, "assistant_unavailable")
    assert created and not created_again
    assert again.id == first.id
    assert again.reason == "customer_request"


def test_the_queue_serves_the_most_urgent_tier_first_and_vips_first_within_it(database: db.Database) -> None:
    with database.sessions.begin() as session:
        opened = {}
        for sender, details in (
            ("p3-early", {"priority": "P3"}),
            ("p2", {"priority": "P2"}),
            ("p3-vip", {"priority": "P3", "vip": True}),
            ("outage", {}),  # no priority given: P3
            ("p1", {"priority": "P1"}),
        ):
            conversation = conversations.resolve_conversation(session, "rest", sender)
            opened[sender] = conversations.open_ticket(session, conversation.id, "frustration", details)[0].id
        # A more urgent escalation of a waiting conversation raises its ticket.
        raised = conversations.resolve_conversation(session, "rest", "p3-early")
        conversations.open_ticket(session, raised.id, "frustration", {"priority": "P1"})
    with database.sessions() as session:
        queue = [ticket.id for ticket in tickets.tickets(session)]
    names = {ticket_id: sender for sender, ticket_id in opened.items()}
    assert [names[i] for i in queue] == ["p3-early", "p1", "p2", "p3-vip", "outage"]


def test_tickets_from_before_priorities_get_the_default_tier(database_url: str) -> None:
    db.migrate(database_url, "0002")
    engine = sa.create_engine(database_url, future=True)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO customers (created_at) VALUES (CURRENT_TIMESTAMP)"))
        customer = connection.execute(sa.text("SELECT max(id) FROM customers")).scalar()
        connection.execute(
            sa.text(
                "INSERT INTO conversations (id, customer_id, mode, last_channel, created_at) "
                "VALUES ('old', :c, 'bot', 'rest', CURRENT_TIMESTAMP)"
            ),
            {"c": customer},
        )
        connection.execute(
            sa.text(
                "INSERT INTO tickets (conversation_id, reason, status, created_at) "
                "VALUES ('old', 'customer_request', 'queued', CURRENT_TIMESTAMP)"
            )
        )
    db.migrate(database_url)
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT priority, vip FROM tickets")).one()
    engine.dispose()
    assert (row.priority, bool(row.vip)) == ("P3", False)
