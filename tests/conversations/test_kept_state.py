"""Constant cost per command (issue 12), on real PostgreSQL: the conversation service
decides on the state it keeps in `conversation_state`, written in the transaction that
appends the events. The events stay the source of truth: folded from scratch, they give
exactly the kept state, for a conversation with every kind of event."""
from __future__ import annotations

import uuid

from parley.contract import conversation_stream
from parley.service import POOL, STORE
from parley.service_client import path

from conversation import domain
from tests.conversations.test_hostile_input import ADMIN, OLGA, PETR, PROJECT, as_, call
from tests.conversations.test_conversation_state import EVERY_KIND


async def visitor_call(stack, route: str, visitor_id: str, **body):
    answer = await call(stack, "POST", path("internal", "visitor", route),
                        json={"project_id": PROJECT, "visitor_id": visitor_id, **body})
    assert answer.status == 200, answer.raw
    return answer.body


async def operator_call(stack, who: dict, cid: str, action: str, **body):
    answer = await call(stack, "POST", path("api", "conversations", cid, action), headers=as_(who), json=body)
    assert answer.status == 200, answer.raw
    return answer.body


async def every_kind_of_event(stack) -> str:
    visitor = f"v-{uuid.uuid4().hex[:12]}"
    cid = (await visitor_call(stack, "offline", visitor, message_id="form-1", name="Vera", phone="8 900 000-00-00",
                              text="Call me back", page_url="https://x.test/a", custom_params={"product": "Windows"},
                              chat_open=False))["conversation_id"]
    first = str(uuid.uuid4())
    await visitor_call(stack, "messages", visitor, message_id=first, text="Hello?", page_url="https://x.test/b")
    await visitor_call(stack, "messages", visitor, message_id=first, text="Hello?")  # a resend: nothing
    await visitor_call(stack, "params", visitor, params={"office": "Moscow"})
    await visitor_call(stack, "contacts", visitor, email="vera@example.com")
    await operator_call(stack, OLGA, cid, "take")
    await operator_call(stack, OLGA, cid, "messages", text="Hi, Olga here")
    await operator_call(stack, OLGA, cid, "notes", text="VIP")
    await operator_call(stack, OLGA, cid, "contacts", name="Vera P.", phone="+7 900 000 00 01", email=None)
    await operator_call(stack, ADMIN, cid, "assign", operator={"id": PETR["id"], "project": PROJECT, "name": "Petr"})
    await operator_call(stack, PETR, cid, "status", status="closed")
    await operator_call(stack, PETR, cid, "status", status="in_work")  # an operator reopens it
    await visitor_call(stack, "messages", visitor, message_id=str(uuid.uuid4()), text="One more thing")
    await operator_call(stack, PETR, cid, "lead")
    closed = await call(stack, "POST", path("internal", "conversations", cid, "close-idle"),
                        headers={"Idempotency-Key": f"timer-{uuid.uuid4()}"}, json={"hours": 2})
    assert closed.status == 200 and closed.body["closed"], closed.raw
    return cid


async def kept_and_folded(stack, cid: str):
    pool, store = stack.conversation.app[POOL], stack.conversation.app[STORE]
    row = await pool.fetchrow("select version, state from conversation_state where conversation_id = $1", cid)
    events = await store.load(conversation_stream(cid))
    messages = await pool.fetch("select side, message_id, seq from conversation_messages where conversation_id = $1",
                                cid)
    return row, events, messages


async def test_the_kept_state_equals_the_events_folded_from_scratch(stack):
    cid = await every_kind_of_event(stack)
    row, events, messages = await kept_and_folded(stack, cid)
    assert {e.type for e in events} == EVERY_KIND
    folded = domain.fold(events)
    assert row["version"] == len(events) == events[-1].stream_version
    assert domain.from_state(row["state"]) == domain.kept(folded)
    assert (folded.status, folded.assignee_id) == ("closed", PETR["id"])
    # the message ids the row leaves out, each with its seq
    assert {(m["side"], m["message_id"], m["seq"]) for m in messages} == {
        ("visitor" if e.type == "chat.visitor_message_posted" else "operator", e.data["message_id"], e.stream_version)
        for e in events if e.type in ("chat.visitor_message_posted", "chat.operator_replied")}
    [lead] = [e for e in events if e.type == "lead.requested"]
    assert [m["text"] for m in lead.data["transcript"]] == ["Call me back", "Hello?", "Hi, Olga here",
                                                           "One more thing"]


async def test_a_conversation_without_a_current_row_is_made_good_from_its_events(stack):
    """A conversation from before the table (no row), or a row of another format: the next
    command folds the events once, decides right and writes the row."""
    pool = stack.conversation.app[POOL]
    visitor = f"v-{uuid.uuid4().hex[:12]}"
    first = str(uuid.uuid4())
    cid = (await visitor_call(stack, "messages", visitor, message_id=first, text="Hi"))["conversation_id"]
    await operator_call(stack, OLGA, cid, "take")
    for spoil in ("delete from conversation_state where conversation_id = $1",
                  "update conversation_state set state = state || '{\"format\": 0}' where conversation_id = $1"):
        await pool.execute(spoil, cid)
        answer = await visitor_call(stack, "messages", visitor, message_id=first, text="Hi")  # a resend
        assert answer["seq"] == 2  # found, not appended again
        answer = await visitor_call(stack, "messages", visitor, message_id=str(uuid.uuid4()), text="Still there?")
        row, events, _ = await kept_and_folded(stack, cid)
        assert row["version"] == len(events) == answer["seq"]
        assert domain.from_state(row["state"]) == domain.kept(domain.fold(events))
        assert domain.from_state(row["state"]).assignee_id == OLGA["id"]


async def test_the_message_answer_carries_what_the_socket_has_not_sent(stack):
    """The gateway sends these before the ack, with no second call: the command's own
    events, anything after the caller's `after` before them, and on a resend the found ones."""
    visitor = f"v-{uuid.uuid4().hex[:12]}"
    first = await visitor_call(stack, "messages", visitor, message_id="m-1", text="Hi", after=0, conversation_id=None)
    cid = first["conversation_id"]
    assert [(e["stream_version"], e["type"]) for e in first["events"]] == [
        (1, "chat.conversation_started"), (2, "chat.visitor_message_posted")]
    await operator_call(stack, OLGA, cid, "take")           # 3, 4: not sent to this socket yet
    second = await visitor_call(stack, "messages", visitor, message_id="m-2", text="Thanks", after=2,
                                conversation_id=cid)
    assert second["seq"] == 5
    assert [e["stream_version"] for e in second["events"]] == [3, 4, 5]
    resent = await visitor_call(stack, "messages", visitor, message_id="m-2", text="Thanks", after=4,
                                conversation_id=cid)
    assert (resent["seq"], [e["stream_version"] for e in resent["events"]]) == (5, [5])
    assert (await visitor_call(stack, "messages", visitor, message_id="m-2", text="Thanks", after=5,
                               conversation_id=cid))["events"] == []
    other = await visitor_call(stack, "messages", visitor, message_id="m-3", text="?", after=5,
                               conversation_id=str(uuid.uuid4()))  # the socket knew another conversation
    assert [e["stream_version"] for e in other["events"]] == [1, 2, 3, 4, 5, 6]
    assert (await visitor_call(stack, "messages", visitor, message_id="m-4", text="!"))["events"] is None
    answer = await call(stack, "GET", path("internal", "conversations", cid, "events"), params={"after": "4"})
    assert [e["stream_version"] for e in answer.body["events"]] == [5, 6, 7]


async def test_load_after_a_version_reads_the_tail_by_the_stream_index(stack):
    store, pool = stack.conversation.app[STORE], stack.conversation.app[POOL]
    visitor = f"v-{uuid.uuid4().hex[:12]}"
    for i in range(4):
        cid = (await visitor_call(stack, "messages", visitor, message_id=f"m-{i}", text=str(i)))["conversation_id"]
    stream = conversation_stream(cid)
    assert [e.stream_version for e in await store.load(stream, after=3)] == [4, 5]
    assert [e.stream_version for e in await store.load(stream)] == [1, 2, 3, 4, 5]
    assert await store.load(stream, after=5) == []
    columns = await pool.fetch(
        """select a.attname from pg_index i join pg_class t on t.oid = i.indrelid
           join pg_namespace n on n.oid = t.relnamespace and n.nspname = current_schema()
           join unnest(i.indkey) with ordinality k(attnum, ord) on true
           join pg_attribute a on a.attrelid = t.oid and a.attnum = k.attnum
           where t.relname = 'events' and i.indisunique and i.indnatts = 2 order by k.ord""")
    assert [c["attname"] for c in columns] == ["stream_id", "stream_version"]
