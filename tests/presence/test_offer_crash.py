"""An offer times out and moves on exactly once although the services handling it are
SIGKILLed during the offer (issue 13, item 2). The conversation service and the
scheduler run as real processes (`python -m ...`) on a database of their own; the
registry is the stack's, and the operators are kept online by heartbeats sent as a
gateway sends them. A timer minute is one second (PARLEY_SCHEDULER_MINUTE_SECONDS=1):
an offer of 120 s stands 2 s, the scheduler's lease is 0.5 s.

Both are killed while the first offer stands; the scheduler comes back first, past the
offer's due time, and cannot reach the conversation service (its lease brings the call
back); then the conversation service comes back. The first offer expires once, the
second operator is offered the conversation once, and that offer expires once too."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import pytest

from parley import db, internal_auth
from parley.service_client import ServiceClient, new_session, path

import scheduler.__main__ as scheduler_main
from tests.presence.conftest import add_operator, own_project
from tests.stack import admin_headers, by_host_name
from tests.support import ServiceProcess, create_database, database_at_the_end, drop_database, eventually


@pytest.fixture
async def crash_database(platform):
    database_url = await create_database(platform.database_url, "offer_crash")
    await database_at_the_end(database_url, scheduler_main.SPEC, platform.bootstrap)
    pools = {schema: await db.create_pool(database_url, schema) for schema in ("scheduler", "conversation")}
    yield database_url, pools
    for pool in pools.values():
        await pool.close()
    await drop_database(platform.database_url, database_url)


@pytest.mark.slow
async def test_sigkill_during_an_offer_expires_it_and_moves_on_exactly_once(crash_database, platform, stack,
                                                                          tmp_path):
    database_url, pools = crash_database
    conversation = ServiceProcess("conversation", database_url, platform.bootstrap, tmp_path / "conversation.log",
                                  PARLEY_OPERATOR_REGISTRY_URL=by_host_name(stack.registry))
    sched = ServiceProcess("scheduler", database_url, platform.bootstrap, tmp_path / "scheduler.log",
                           PARLEY_SCHEDULER_MINUTE_SECONDS="1", PARLEY_CONVERSATION_URL=conversation.url)
    project, owner = await own_project(stack)
    people = sorted([await add_operator(stack, project, owner, name) for name in ("Ann", "Bob")])
    first, second = people[0][0], people[1][0]
    async with new_session() as http:
        try:
            await conversation.start()
            await sched.start()
            await conversation.ready()
            await sched.ready()
            signed = ServiceClient("conversation", conversation.url, http, internal_auth.secret())
            r = await signed.call("PUT", path("api", "project", "assignment"), headers=admin_headers(project),
                                  json={"assignment_mode": "round_robin", "offer_seconds": 120})
            assert r.status == 200, r.body
            r = await stack.registry_client.call("POST", "/internal/presence/heartbeats",
                                                 json={"operators": [first, second]})   # as a gateway does
            assert r.status == 200

            body = await signed.checked("POST", path("internal", "visitor", "messages"), json={
                "project_id": project, "visitor_id": "v-crash", "message_id": str(uuid.uuid4()),
                "text": "Anyone there?", "page_url": None, "chat_open": True})
            cid = body["conversation_id"]
            stream = f"conversation-{cid}"

            async def offers() -> list[tuple[str, str]]:
                rows = await pools["conversation"].fetch(
                    """select type, data from events where stream_id = $1 and type like 'assignment.%'
                       order by stream_version""", stream)
                return [(r["type"], r["data"]["operator_id"]) for r in rows]

            async def armed():
                return await pools["scheduler"].fetchrow(
                    "select * from timers where kind = 'offer' and conversation_id = $1 and status = 'pending'",
                    uuid.UUID(cid))
            await eventually(armed, timeout=20, what="the first offer's timer armed")
            assert await offers() == [("assignment.offered", first)]

            # Both die while the offer stands.
            sched.kill()
            conversation.kill()
            row = await pools["scheduler"].fetchrow("select * from timers where kind = 'offer' and conversation_id = $1",
                                                    uuid.UUID(cid))
            assert row["status"] == "pending" and row["due_at"] > datetime.now(timezone.utc), "killed after the due time"
            await asyncio.sleep((row["due_at"] - datetime.now(timezone.utc)).total_seconds() + 0.5)

            # The scheduler first: the conversation service is still down, its lease retries.
            await sched.start()
            await sched.ready()

            async def attempted():
                return await pools["scheduler"].fetchval("select attempts from timers where id = $1", row["id"]) >= 2
            await eventually(attempted, timeout=20, what="the expiry tried while the conversation service is down")
            await conversation.start()
            await conversation.ready()

            expected = [("assignment.offered", first), ("assignment.offer_expired", first),
                        ("assignment.offered", second), ("assignment.offer_expired", second)]
            await eventually(lambda: _at_least(offers, len(expected)), timeout=30, what="both offers expired")

            async def finished():
                rows = await pools["scheduler"].fetch(
                    "select status from timers where kind = 'offer' and conversation_id = $1", uuid.UUID(cid))
                return len(rows) == 2 and all(r["status"] == "fired" for r in rows)
            await eventually(finished, timeout=20, what="both offer timers fired")
            assert await offers() == expected
        finally:
            sched.stop()
            conversation.stop()


async def _at_least(offers, n: int) -> bool:
    return len(await offers()) >= n
