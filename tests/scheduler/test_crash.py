"""The scheduler (`python -m scheduler`, real processes) is SIGKILLed while an
"unanswered" timer is pending and started again after the timer's due time: the
admins' alert (schedule.unanswered_alert) is appended and published exactly once. The
same with two replicas, both killed and both restarted together, racing for the row.

The processes get a database of their own (the service's schema name and consumer
group are fixed); their consumer starts at the end of conversation.events. A timer
minute is one second here (PARLEY_SCHEDULER_MINUTE_SECONDS=1)."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone

import pytest

from parley import db, internal_auth, kafka
from parley.envelope import Event
from parley.service_client import ServiceClient, new_session, path

import scheduler.__main__ as scheduler_main
from scheduler import timers
from tests.scheduler.test_timers import visitor_writes
from tests.stack import admin_headers, by_host_name
from tests.support import ServiceProcess, create_database, database_at_the_end, drop_database, eventually

SCHEMA = scheduler_main.SPEC.schema
MINUTES = 10            # the unanswered timer, in timer minutes of one second each


def scheduler_process(database_url: str, bootstrap: str, log_path) -> ServiceProcess:
    return ServiceProcess("scheduler", database_url, bootstrap, log_path, PARLEY_SCHEDULER_MINUTE_SECONDS="1")


@pytest.fixture
async def scheduler_database(platform):
    database_url = await create_database(platform.database_url, "sched_crash")
    await database_at_the_end(database_url, scheduler_main.SPEC, platform.bootstrap)
    pool = await db.create_pool(database_url, SCHEMA)
    yield database_url, pool
    await pool.close()
    await drop_database(platform.database_url, database_url)


async def published_alerts(bootstrap: str, conversation_id: str, timeout: float = 20) -> set[str]:
    """schedule.events from the start: the ids of the alerts for this conversation (a relay
    may publish an event twice after a crash; its id is what makes it one)."""
    seen: set[str] = set()
    consumer = kafka.consumer(bootstrap, None, "schedule.events")
    await consumer.start()
    try:
        deadline, settle_until = time.monotonic() + timeout, None
        while time.monotonic() < deadline and (settle_until is None or time.monotonic() < settle_until):
            for messages in (await consumer.getmany(timeout_ms=300)).values():
                for message in messages:
                    event = Event.from_bytes(message.value)
                    if event.type == "schedule.unanswered_alert" and event.data["conversation_id"] == conversation_id:
                        seen.add(event.id)
            if settle_until is None and seen:
                settle_until = time.monotonic() + 1.5
    finally:
        await consumer.stop()
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("replicas", [1, 2])
async def test_sigkill_while_an_unanswered_timer_is_pending_alerts_once(replicas, scheduler_database, platform,
                                                                       stack, tmp_path):
    database_url, pool = scheduler_database
    processes = [scheduler_process(database_url, platform.bootstrap, tmp_path / f"scheduler-{i}.log")
                 for i in range(replicas)]
    async with new_session() as http:
        try:
            for p in processes:
                p.env["PARLEY_CONVERSATION_URL"] = by_host_name(stack.conversation)
                await p.start()
            for p in processes:
                await p.ready()
            client = ServiceClient("scheduler", processes[0].url, http, internal_auth.secret())
            r = await client.call("PUT", path("api", "project", "schedule"), headers=admin_headers(), json={
                "show_any_time": True, "time_zone": "UTC", "unanswered_alert_minutes": MINUTES,
                "idle_close_hours": None})
            assert r.status == 200, r.body

            cid = await visitor_writes(stack)
            tid = timers.timer_id(cid, "unanswered", 1)

            async def pending():
                return await pool.fetchrow("select * from timers where id = $1 and status = 'pending'", uuid.UUID(tid))
            await eventually(pending, timeout=30, what="the pending unanswered timer")
            for p in processes:
                p.kill()
            row = await pool.fetchrow("select * from timers where id = $1", uuid.UUID(tid))
            assert row["status"] == "pending" and row["due_at"] > datetime.now(timezone.utc), \
                "killed before the timer was due"
            assert await pool.fetchval("select count(*) from events where type = 'schedule.unanswered_alert'") == 0

            # Down past the due time; then every replica comes back at once.
            await asyncio.sleep((row["due_at"] - datetime.now(timezone.utc)).total_seconds() + 1)
            for p in processes:
                await p.start()

            async def alerted():
                return await pool.fetch("select id::text, data from events where type = 'schedule.unanswered_alert'")
            await eventually(alerted, timeout=60, what="the alert after the restart")
            for p in processes:
                await p.ready()
            await asyncio.sleep(2)               # every replica has scanned the due rows since
            [alert] = await alerted()
            assert alert["id"] == tid
            assert alert["data"] == {"project_id": "demo", "conversation_id": cid, "minutes": MINUTES}
            row = await pool.fetchrow("select * from timers where id = $1", uuid.UUID(tid))
            assert row["status"] == "fired" and row["outcome"] == {"outcome": "alerted"}
            assert await published_alerts(platform.bootstrap, cid) == {tid}
        finally:
            for p in processes:
                p.stop()
