"""Issue 20, item 3: an erasure, and a retention run, survive a SIGKILL of the services
doing them, and finish once.

The conversation service and crm-bridge run as real processes (`python -m ...`) on a
database of their own; the registry and a gateway run in the test, pointed at them.

- crm-bridge is killed before an erasure of 25 conversations is asked for and stays down
  while the conversation service and the gateway do their parts: the erasure waits,
  `pending`, for crm-bridge's. The conversation service is killed halfway through its
  own part (some conversations erased, others not). Both restart; the erasure turns
  `done`, every conversation erased exactly once (one `chat.conversation_erased` each,
  one part of each kind), and nothing of the marker is left in the event store.
- Retention: the conversation service is killed while it erases 12 closed conversations
  that retention reached; restarted, each is erased exactly once, by its one erasure.

Retention runs in the conversation service's durable erasure loop (the erasures table
is its timer), not in the scheduler: the scheduler holds no part of an erasure, so
killing it changes nothing here (docs/architecture.md, Personal data)."""
from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from parley import db
from parley.service import create_app

import crm_bridge.__main__ as crm_main
from gateway import rate_limits
from conversation.erasure_requests import retention_erasure_id
from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD, GATEWAY, serve, settings, spec_for
from tests.support import ServiceProcess, create_database, database_at_the_end, drop_database, eventually

ERASED = 25
RETAINED = 12


@pytest.fixture
async def crash_rig(stack, platform, tmp_path, monkeypatch):
    """(conversation process, crm-bridge process, gateway, pool on the processes' database)."""
    # Dozens of visitors from one test address in a minute are the point here, not a flood.
    monkeypatch.setattr(rate_limits, "NEW_VISITORS_PER_MINUTE_PER_ADDRESS", 1000)
    database_url = await create_database(platform.database_url, "erasure_crash")
    await database_at_the_end(database_url, crm_main.SPEC, platform.bootstrap)
    conversation = ServiceProcess("conversation", database_url, platform.bootstrap, tmp_path / "conversation.log")
    await conversation.start()
    await conversation.ready()
    monkeypatch.setenv("PARLEY_CONVERSATION_URL", conversation.url)
    bridge = ServiceProcess("crm_bridge", database_url, platform.bootstrap, tmp_path / "crm-bridge.log")
    await bridge.start()
    await bridge.ready()
    monkeypatch.setenv("PARLEY_CRM_BRIDGE_URL", bridge.url)
    gateway = await serve(create_app(await spec_for(platform, GATEWAY, f"gw_{uuid.uuid4().hex[:8]}"),
                                     settings(platform, GATEWAY)))
    pool = await db.create_pool(database_url, "conversation")
    try:
        yield conversation, bridge, gateway, pool
    finally:
        await pool.close()
        await gateway.close()
        bridge.stop()
        conversation.stop()
        await drop_database(platform.database_url, database_url)


async def call(gateway, method: str, path: str, token: str, body: dict | None = None, status: int = 200) -> dict:
    gateway.session.cookie_jar.clear()
    r = await gateway.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status == status, (path, await r.text())
    return await r.json()


async def conversations(gateway, pool, n: int, text: str, phone: str) -> list[str]:
    """n visitors (n browsers) who gave the same phone and wrote `text`."""
    ids = []
    for _ in range(n):
        visitor = ScriptedVisitor(gateway)
        await visitor.start()
        await visitor.ws.send_json({"type": "contacts", "name": "Pat", "phone": phone})
        await visitor.send_and_wait(text)
        ids.append(await pool.fetchval("select conversation_id::text from visitor_conversations where visitor_id = $1",
                                       visitor.visitor_id))
        await visitor.drop()
    return ids


async def erased_once(pool: asyncpg.Pool, ids: list[str], mark: str) -> None:
    counts = await pool.fetch("""select stream_id, count(*) as n from events where type = 'chat.conversation_erased'
                                 and stream_id = any($1::text[]) group by stream_id""",
                              [f"conversation-{cid}" for cid in ids])
    assert sorted(r["n"] for r in counts) == [1] * len(ids)
    assert await pool.fetchval("select count(*) from events where data::text like '%' || $1 || '%'", mark) == 0


@pytest.mark.slow
async def test_an_erasure_finishes_once_across_sigkills_of_crm_bridge_and_the_conversation_service(
        stack, crash_rig):
    conversation, bridge, gateway, pool = crash_rig
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    mark = f"PII{uuid.uuid4().hex[:10]}"
    ids = await conversations(gateway, pool, ERASED, f"Crash {mark}", "+79007770011")

    bridge.kill()                       # down before the erasure and through the conversation service's part
    erasure = await call(gateway, "POST", "/api/project/privacy/erasures", owner, {"phone": "+79007770011"},
                         status=202)
    assert erasure["conversations"] == ERASED

    async def parts(part: str) -> int:
        return await pool.fetchval("select count(*) from erasure_parts where erasure_id = $1 and part = $2",
                                   erasure["id"], part)
    for _ in range(2000):               # halfway through the conversation service's own part
        if await parts("conversation") > 0:
            break
        await asyncio.sleep(0.005)
    conversation.kill()
    halfway = await parts("conversation")
    assert 0 < halfway < ERASED, f"the kill came at {halfway} of {ERASED}: not halfway"
    await conversation.start()
    await conversation.ready()

    async def own_parts_done() -> bool:
        return await parts("conversation") == ERASED and await parts("files") == ERASED
    await eventually(own_parts_done, timeout=90, what="the conversation service's and the gateway's parts")
    status = await call(gateway, "GET", f"/api/project/privacy/erasures/{erasure['id']}", owner)
    assert status["status"] == "pending" and status["parts_done"]["crm"] == 0   # waiting for crm-bridge

    await bridge.start()
    await bridge.ready()

    async def done() -> bool:
        return (await call(gateway, "GET", f"/api/project/privacy/erasures/{erasure['id']}", owner))["status"] == "done"
    await eventually(done, timeout=90, what="the erasure done after the restarts")
    status = await call(gateway, "GET", f"/api/project/privacy/erasures/{erasure['id']}", owner)
    assert status["parts_done"] == {"conversation": ERASED, "files": ERASED, "crm": ERASED}
    assert status["erased"]["conversations"] == ERASED
    await erased_once(pool, ids, mark)
    assert await pool.fetchval("select count(*) from conversations where id = any($1::uuid[]) and erased_at is null",
                               ids) == 0


@pytest.mark.slow
async def test_a_retention_run_finishes_once_across_a_sigkill_of_the_conversation_service(stack, crash_rig):
    conversation, _, gateway, pool = crash_rig
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    mark = f"OLD{uuid.uuid4().hex[:10]}"
    ids = await conversations(gateway, pool, RETAINED, f"Old {mark}", "+79007770022")
    for cid in ids:
        await call(gateway, "POST", f"/api/conversations/{cid}/take", owner)
        await call(gateway, "POST", f"/api/conversations/{cid}/status", owner, {"status": "closed"})
    await pool.execute("update conversations set last_message_at = now() - interval '3 days' where id = any($1::uuid[])",
                       ids)
    await call(gateway, "PUT", "/api/project/privacy/retention", owner, {"erase_after_days": 2})

    async def erased() -> int:
        return await pool.fetchval("select count(*) from conversations where id = any($1::uuid[]) and erased_at is not null",
                                   ids)
    for _ in range(2000):
        if await erased() > 0:
            break
        await asyncio.sleep(0.005)
    conversation.kill()
    halfway = await erased()
    assert 0 < halfway < RETAINED, f"the kill came at {halfway} of {RETAINED}: not halfway"
    await conversation.start()
    await conversation.ready()

    async def all_erased() -> bool:
        return await erased() == RETAINED
    await eventually(all_erased, timeout=90, what="every old closed conversation erased after the restart")
    await erased_once(pool, ids, mark)
    rows = await pool.fetch("select id::text, kind from erasures where conversation_ids && $1::uuid[]", ids)
    assert sorted(r["id"] for r in rows) == sorted(retention_erasure_id(cid) for cid in ids)   # one each
    assert {r["kind"] for r in rows} == {"retention"}
