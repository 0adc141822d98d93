"""The scheduler in-process next to the stack (tests/stack.py): its own schema and
consumer group, reading conversation.events from where the topic ends now (earlier
tests' conversations set no timers here), fast loops and short timer minutes
(PARLEY_SCHEDULER_MINUTE_SECONDS). The stack's gateway reaches it through
PARLEY_SCHEDULER_URL, so the scheduler starts first."""
from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from parley import db, internal_auth
from parley.contract import ACTOR_HEADER
from parley.service import create_app
from parley.service_client import ServiceClient, new_session, path

import scheduler.__main__ as scheduler_main
from scheduler import timers
from tests.stack import by_host_name, settings
from tests.support import start_at_the_end

MINUTE_SECONDS = 0.5     # a timer minute in these tests


async def seed_offsets(database_url: str, schema: str, consumer: str, bootstrap: str) -> None:
    """The consumer starts at the end of conversation.events, as it is now."""
    pool = await db.create_pool(database_url, schema)
    try:
        await db.migrate(pool, schema, scheduler_main.SPEC.migrations)
        await start_at_the_end(pool, consumer, bootstrap, "conversation.events")
    finally:
        await pool.close()


def admin_headers(project: str = "demo", *, admin: bool = True) -> dict[str, str]:
    actor = {"id": str(uuid.uuid4()), "project": project, "name": "Admin", "is_admin": admin}
    return {ACTOR_HEADER: orjson.dumps(actor).decode()}


@dataclass
class Scheduler:
    clients: list[TestClient]
    schema: str
    signed: ServiceClient          # a signed client to the first instance, as the gateway calls it

    @property
    def app(self):
        return self.clients[0].app

    @property
    def pool(self):
        from parley.service import POOL
        return self.app[POOL]

    async def put(self, body: dict, project: str = "demo"):
        return await self.signed.call("PUT", path("api", "project", "schedule"), json=body,
                                      headers=admin_headers(project))

    async def events(self, type_: str | None = None) -> list:
        """The scheduler's own streams' events (audit entries are tests/privacy/test_audit_log's)."""
        rows = await self.pool.fetch("select id::text, type, stream_id, data, position from events"
                                     " where stream_id not like 'audit-%'"
                                     + (" and type = $1" if type_ else "") + " order by position",
                                     *([type_] if type_ else []))
        return [dict(r) for r in rows]


async def start_scheduler(platform, monkeypatch, replicas: int = 1) -> Scheduler:
    monkeypatch.setenv("PARLEY_SCHEDULER_MINUTE_SECONDS", str(MINUTE_SECONDS))
    suffix = uuid.uuid4().hex[:8]
    schema, consumer = f"sched_{suffix}", f"scheduler.timers.{suffix}"
    await seed_offsets(platform.database_url, schema, consumer, platform.bootstrap)
    [production] = scheduler_main.SPEC.consumers
    spec = dataclasses.replace(scheduler_main.SPEC, schema=schema, consumers=[
        dataclasses.replace(production, name=consumer)])
    clients = []
    for _ in range(replicas):
        app = create_app(spec, settings(platform, "scheduler"))
        app[timers.TUNING] = timers.Tuning(poll_interval=0.1, lease=3.0, minute=MINUTE_SECONDS)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
    monkeypatch.setenv("PARLEY_SCHEDULER_URL", by_host_name(clients[0]))
    http = new_session()
    sched = Scheduler(clients, schema, ServiceClient("scheduler", by_host_name(clients[0]), http,
                                                      internal_auth.secret()))
    sched._http = http
    return sched


async def stop_scheduler(sched: Scheduler) -> None:
    await sched._http.close()
    for client in sched.clients:
        await client.close()


@pytest.fixture
async def scheduler(platform, monkeypatch):
    sched = await start_scheduler(platform, monkeypatch)
    yield sched
    await stop_scheduler(sched)


@pytest.fixture
async def scheduler_pair(platform, monkeypatch):
    """Two replicas of the scheduler on one schema."""
    sched = await start_scheduler(platform, monkeypatch, replicas=2)
    yield sched
    await stop_scheduler(sched)


@pytest.fixture
async def sched_stack(scheduler, stack):
    """The scheduler first (its URL must be set before the stack's gateway starts); its
    idle timer calls the stack's conversation service."""
    from parley.service_client import ServiceClient as Client
    scheduler.app[timers.CONVERSATION]["client"] = Client("conversation", by_host_name(stack.conversation),
                                                scheduler._http, internal_auth.secret())
    return stack
