"""Issue 20 (in progress): the conversation service's part of erasing a conversation
(conversation/erasure.py), on the real stack with real Kafka and PostgreSQL. After it:
- no table of the conversation service's schema holds the marker the conversation put
  in every personal field (its event store included), and no topic does;
- the conversation is still a record: closed, erased with a date, its operator kept;
- the transcript and inbox answer without the data; the visitor writing again starts a
  new conversation not linked to the erased one;
- a rebuild of the inbox from Kafka equals the live tables, the erased conversation
  coming back erased (its events' key is gone) - not with its old text, not failing;
- erasing again changes nothing (a crash halfway is finished by running it again)."""
from __future__ import annotations

import uuid

from parley.service import POOL, STORE
from parley.subject_keys import LocalOpener

import conversation.__main__ as conversation_main
from conversation import erasure, projection
from tests.privacy.marked import all_published, every_record, marked_conversation
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import rebuilt_until


async def schema_text(pool) -> str:
    """Every row of every table in the pool's schema, as text."""
    tables = [r["table_name"] for r in await pool.fetch(
        "select table_name from information_schema.tables where table_schema = current_schema()")]
    texts = [str(await pool.fetchval(f'select coalesce(string_agg(t::text, chr(10)), \'\') from "{t}" t'))
             for t in tables]
    return "\n".join(texts)


async def test_an_erased_conversation_leaves_a_record_and_nothing_personal(stack, platform):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    cid, mark, visitor = await marked_conversation(stack, owner)
    pool = stack.conversation.app[POOL]
    assert mark in await schema_text(pool)                             # the marker is there to find

    erasure_id = str(uuid.uuid4())
    assert await erasure.erase_conversation(stack.conversation.app[STORE], cid, erasure_id) >= 8
    assert await erasure.erase_conversation(stack.conversation.app[STORE], cid, erasure_id) == 0   # idempotent
    assert mark not in await schema_text(pool) and mark.lower() not in await schema_text(pool)

    # A record remains, and the answers hold nothing of the visitor.
    r = await stack.call("GET", f"/api/conversations/{cid}", owner)
    assert r.status == 200
    body = await r.json()
    assert body["conversation"]["erased_at"] is not None and body["conversation"]["status"] == "closed"
    assert body["conversation"]["assignee_name"] == "Owner" and mark not in await r.text()
    assert [e["event"] for e in body["events"]][-1] == "chat.conversation_erased"
    r = await stack.call("POST", f"/api/conversations/{cid}/messages", owner, json={"text": "still there?"})
    assert r.status == 409 and (await r.json())["error"]["code"] == "conversation_erased"
    inbox = await (await stack.call("GET", "/api/inbox?view=all", owner)).text()
    assert cid in inbox and mark not in inbox

    # The visitor writing again starts afresh, unlinked.
    await visitor.send_and_wait("Hello again")
    fresh = (await stack.conversation_client.checked("GET", "/internal/visitor/conversation", params={
        "project_id": "demo", "visitor_id": visitor.visitor_id}))["conversation_id"]
    assert fresh != cid
    started = await pool.fetchval("select data from events where stream_id = $1 and stream_version = 1",
                                  f"conversation-{fresh}")
    assert "previous_conversation_id" not in started

    # Kafka: nothing readable before or after; the erased conversation rebuilds erased.
    await all_published(pool)
    records = await every_record(platform.bootstrap)
    assert [r for r in records if mark.encode() in r] == []
    assert any(b"chat.conversation_erased" in r and cid.encode() in r for r in records)
    row = "select row(c.*)::text from conversations c where id = $1"
    live = await pool.fetchval(row, cid)

    async def rebuilt(scratch) -> bool:
        return await scratch.fetchval(row, cid) == live
    await rebuilt_until(platform, conversation_main.SPEC.migrations, projection.replay, LocalOpener(pool).open, rebuilt,
                        what="the erased conversation rebuilt from Kafka as it is live")
    assert mark not in live
