"""crm-bridge (`python -m crm_bridge`, a real process) is SIGKILLed while its lead
deliveries are at the CRM - some leads already created there, their outcome never
recorded; others not created - and restarted: every request ends delivered, the CRM
(the stand-in, over HTTP) holds exactly one lead per request, and exactly one
lead.created per request is published on lead.events.

The process gets a database of its own on the platform's server: the service's schema
name (`crm_bridge`) and consumer group are fixed, and other tests may use the schema in
the shared database. Its consumer starts at the end of conversation.events, so earlier
tests' lead requests (for the same demo project) are not delivered to this CRM. Its
lease (PARLEY_CRM_LEASE_SECONDS) is short, so the restarted process takes the lost
claims up in seconds rather than two minutes."""
from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from parley import db, kafka
from parley.envelope import Event
from parley.service import STORE

import crm_bridge.__main__ as crm_main
from crm_bridge import standin
from tests.crm_bridge.test_handoff import OWNER_EMAIL, OWNER_PASSWORD, configure, conversation_with_operator
from tests.support import ServiceProcess, create_database, database_at_the_end, drop_database

REQUESTS = 20
LEASE = 3            # seconds; the default is 120
HANG = 30            # the stand-in holds a faulted crm.lead.add this long (crm-bridge waits up to 15 s)
SECRET = "crashWebhookKey"
SCHEMA = crm_main.SPEC.schema


class BridgeProcess(ServiceProcess):
    """`python -m crm_bridge` on its own database, with the test's connections to it."""

    def __init__(self, database_url: str, bootstrap: str, log_path):
        super().__init__("crm_bridge", database_url, bootstrap, log_path, PARLEY_CRM_ALLOW_PRIVATE="1",
                         PARLEY_CRM_LEASE_SECONDS=str(LEASE))
        self.pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        await super().start()
        await self.ready()


@pytest.fixture
async def bridge_process(platform, tmp_path, monkeypatch, conversation_port):
    database_url = await create_database(platform.database_url, "crm_crash")
    await database_at_the_end(database_url, crm_main.SPEC, platform.bootstrap)
    pool = await db.create_pool(database_url, SCHEMA)
    try:
        process = BridgeProcess(database_url, platform.bootstrap, tmp_path / "crm-bridge.log")
        await process.start()
        monkeypatch.setenv("PARLEY_CRM_BRIDGE_URL", process.url)   # before the stack's gateway starts
        process.pool = pool
        yield process
    finally:
        if "process" in locals():
            process.stop()
        await pool.close()
        await drop_database(platform.database_url, database_url)


@pytest.fixture
async def crash_stack(bridge_process, stack):
    return stack


@pytest.fixture
async def crm():
    client = TestClient(TestServer(standin.create_app(secret=SECRET)))
    await client.start_server()
    yield client
    await client.close()


async def wait_for(what: str, check, timeout: float, process: BridgeProcess | None = None):
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if process is not None:
            assert process.proc.poll() is None, f"crm-bridge died:\n{process.log()}"
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s" + (await state_of(process) if process else ""))
        await asyncio.sleep(0.1)


async def state_of(process: BridgeProcess) -> str:
    """What a failed wait shows: the deliveries, the process's database sessions (one
    idle in transaction for long is a hang inside the process) and its log."""
    lines = []
    if process.pool is not None:
        for r in await process.pool.fetch("select request_id, status, attempts, in_flight, next_attempt_at,"
                                          " last_error from deliveries order by request_id"):
            lines.append(f"delivery {dict(r)}")
        for r in await process.pool.fetch("select pid, state, wait_event, now() - state_change as idle_for, query"
                                          " from pg_stat_activity where datname = current_database()"
                                          " and pid <> pg_backend_pid()"):
            lines.append(f"session {dict(r)}")
    return "\n" + "\n".join(lines) + "\n" + process.log()


async def leads_of(crm) -> tuple[list[dict], dict]:
    body = await (await crm.get("/_leads")).json()
    return body["bitrix24"], body["calls"]


async def published_outcomes(bootstrap: str, request_ids: set[str], timeout: float = 20) -> dict[str, set[str]]:
    """lead.events from the start: for each of our requests, the ids of its lead.* events
    (the relay may publish an event twice after a crash; its id is what makes it one)."""
    seen: dict[str, set[str]] = {}
    consumer = kafka.consumer(bootstrap, None, "lead.events")
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        settle_until = None
        while time.monotonic() < deadline and (settle_until is None or time.monotonic() < settle_until):
            for messages in (await consumer.getmany(timeout_ms=300)).values():
                for message in messages:
                    event = Event.from_bytes(message.value)
                    if event.data.get("request_id") in request_ids:
                        seen.setdefault(event.data["request_id"], set()).add(f"{event.type}:{event.id}")
            if settle_until is None and set(seen) == request_ids:
                settle_until = time.monotonic() + 1.0      # a second copy would be right behind
    finally:
        await consumer.stop()
    return seen


@pytest.mark.slow
async def test_sigkill_of_crm_bridge_mid_delivery_loses_and_doubles_no_lead(bridge_process, crash_stack, crm,
                                                                           platform):
    stack, process, pool = crash_stack, bridge_process, bridge_process.pool
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, webhook_url=f"http://127.0.0.1:{crm.port}/rest/1/{SECRET}/", default_responsible="3")
    cid, operator, _ = await conversation_with_operator(stack, owner)

    # The leads are requested while crm-bridge is down (they wait in Kafka), so that the
    # process coming back finds them all at once and claims them in one batch.
    process.stop()
    faults = ["timeout_after_create", "timeout_before_create"] * (REQUESTS // 2)
    r = await crm.post("/_faults", json={"fail_next": faults, "methods": ["crm.lead.add"], "hang_seconds": HANG})
    assert r.status == 200, await r.text()
    for _ in range(REQUESTS):
        r = await stack.call("POST", f"/api/conversations/{cid}/lead", operator, json={"again": True})
        assert r.status == 200, await r.text()
    conversation = await stack.conversation.app[STORE].load(f"conversation-{cid}")
    request_ids = {e.id for e in conversation if e.type == "lead.requested"}
    assert len(request_ids) == REQUESTS

    await process.start()

    async def claimed_and_hanging_at_the_crm():
        rows = await pool.fetch("select * from deliveries")
        in_flight = [r for r in rows if r["status"] == "pending" and r["in_flight"]]
        _, calls = await leads_of(crm)
        return len(rows) == REQUESTS and len(in_flight) >= 2 and calls.get("crm.lead.add", 0) >= 2
    await wait_for("deliveries claimed and hanging at the CRM", claimed_and_hanging_at_the_crm, 30, process)
    await asyncio.sleep(0.5)     # the rest of the batch reaches the CRM (8 connections at a time) and hangs too
    process.kill()

    # What the crash left: claimed deliveries with no outcome, some of their leads made.
    rows = await pool.fetch("select * from deliveries")
    in_flight = {str(r["request_id"]): r for r in rows if r["status"] == "pending" and r["in_flight"]}
    assert {str(r["request_id"]) for r in rows} == request_ids
    assert len(in_flight) >= 2 and not any(r["status"] == "delivered" for r in rows), \
        [(r["status"], r["in_flight"]) for r in rows]
    assert all(r["attempts"] == 1 and r["claim_token"] is not None for r in in_flight.values())
    for r in in_flight.values():  # the lease came from PARLEY_CRM_LEASE_SECONDS
        assert LEASE - 1 <= (r["next_attempt_at"] - r["updated_at"]).total_seconds() <= LEASE + 1
    made_before, calls = await leads_of(crm)
    made_before = {lead["ORIGIN_ID"]: lead["ID"] for lead in made_before}
    hung = calls["crm.lead.add"]
    assert 2 <= hung <= len(in_flight)
    assert made_before and set(made_before) < set(in_flight), "some leads were created, some not, all unrecorded"
    assert (await pool.fetchval("select count(*) from events where type like 'lead.%'")) == 0   # no outcome yet

    # The CRM is well again; crm-bridge comes back and takes the lost claims up when their lease ends.
    await crm.delete("/_faults")
    await process.start()

    async def all_delivered():
        rows = await pool.fetch("select * from deliveries")
        return rows if rows and all(r["status"] == "delivered" for r in rows) else None
    rows = await wait_for("every delivery delivered after the restart", all_delivered, 90, process)

    leads, calls = await leads_of(crm)
    origins = [lead["ORIGIN_ID"] for lead in leads]
    assert sorted(origins) == sorted(request_ids)                              # one each: none lost, none twice
    by_origin = {lead["ORIGIN_ID"]: lead["ID"] for lead in leads}
    for row in rows:
        assert row["lead_id"] == by_origin[str(row["request_id"])]
    for request_id, lead_id in made_before.items():                            # found again, not made again
        assert by_origin[request_id] == lead_id
        assert in_flight[request_id]["attempts"] < [r for r in rows if str(r["request_id"]) == request_id][0]["attempts"]
    # crm.lead.add: the hung ones, and once for every request that had no lead at the kill
    assert calls["crm.lead.add"] == hung + REQUESTS - len(made_before)
    assert calls.get("crm.lead.list", 0) >= len(in_flight)                     # the lost claims looked first

    recorded = await pool.fetch("select stream_id, type, data from events where type like 'lead.%'")
    assert sorted(e["data"]["request_id"] for e in recorded) == sorted(request_ids)
    assert {e["type"] for e in recorded} == {"lead.created"}
    published = await published_outcomes(platform.bootstrap, request_ids)
    assert set(published) == request_ids
    assert all(len(ids) == 1 and next(iter(ids)).startswith("lead.created:") for ids in published.values()), published

    r = await stack.call("GET", "/api/project/crm/deliveries", owner)
    listed = (await r.json())["deliveries"]
    assert sorted(d["request_id"] for d in listed) == sorted(request_ids)
    assert all(d["status"] == "delivered" for d in listed)
