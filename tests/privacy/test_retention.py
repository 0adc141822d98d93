"""Issue 20, item 4: retention. With `erase_after_days` set, a closed conversation whose
last message is older than that is erased by itself - once, as an erasure of kind
retention whose id follows from the conversation's - while a recent closed one and an
old one still open are kept. Bad settings get a clear 422, non-admins a 403."""
from __future__ import annotations

import uuid

from parley.service import POOL

from conversation.erasure_requests import retention_erasure_id
from tests.visitor import ScriptedVisitor
from tests.crm_bridge.test_handoff import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually


async def conversation(stack, owner: str, text: str, *, closed: bool) -> str:
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait(text)
    cid = (await stack.conversation_client.checked("GET", "/internal/visitor/conversation", params={
        "project_id": "demo", "visitor_id": visitor.visitor_id}))["conversation_id"]
    if closed:
        assert (await stack.call("POST", f"/api/conversations/{cid}/take", owner)).status == 200
        assert (await stack.call("POST", f"/api/conversations/{cid}/status", owner,
                                 json={"status": "closed"})).status == 200
    await visitor.drop()
    return cid


async def test_old_closed_conversations_are_erased_once_by_themselves(crm_stack):
    stack = crm_stack
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, operator, _ = await stack.add_operator(owner, "Plain Operator")
    assert (await stack.call("PUT", "/api/project/privacy/retention", operator,
                             json={"erase_after_days": 30})).status == 403
    for bad in (0, 3651, "30", 1.5, True):
        r = await stack.call("PUT", "/api/project/privacy/retention", owner, json={"erase_after_days": bad})
        assert r.status == 422 and (await r.json())["error"]["code"] == "erase_after_days_invalid", bad

    mark = f"OLD{uuid.uuid4().hex[:8]}"
    old_closed = await conversation(stack, owner, f"old and closed {mark}", closed=True)
    recent_closed = await conversation(stack, owner, "recent and closed", closed=True)
    old_open = await conversation(stack, owner, "old and still open", closed=False)
    pool = stack.conversation.app[POOL]
    await pool.execute("update conversations set last_message_at = now() - interval '3 days'"
                       " where id = any($1::uuid[])", [old_closed, old_open])

    r = await stack.call("PUT", "/api/project/privacy/retention", owner, json={"erase_after_days": 2})
    assert r.status == 200 and (await r.json()) == {"erase_after_days": 2}
    assert await (await stack.call("GET", "/api/project/privacy/retention", owner)).json() == {"erase_after_days": 2}

    erasure = retention_erasure_id(old_closed)

    async def done() -> bool:
        return await pool.fetchval("select status = 'done' from erasures where id = $1", erasure) is True
    await eventually(done, timeout=60, what="the retention erasure done")
    erased = {str(r["id"]): r["erased_at"] for r in await pool.fetch(
        "select id, erased_at from conversations where id = any($1::uuid[])", [old_closed, recent_closed, old_open])}
    assert erased[old_closed] is not None and erased[recent_closed] is None and erased[old_open] is None
    assert await pool.fetchval("select count(*) from erasures where $1::uuid = any(conversation_ids)", old_closed) == 1
    r = await stack.call("GET", f"/api/project/privacy/erasures/{erasure}", owner)
    assert (await r.json())["kind"] == "retention"
    inbox = await (await stack.call("GET", "/api/inbox?view=all", owner)).text()
    assert mark not in inbox

    assert (await (await stack.call("PUT", "/api/project/privacy/retention", owner,
                                    json={"erase_after_days": None})).json()) == {"erase_after_days": None}
