"""What a crm-bridge restarted after a crash does with the claims its previous process
lost, when no Kafka broker answers: the delivery loop needs PostgreSQL and the CRM,
never Kafka (its consumer and relay retry on their own, beside it). Every lost claim
is looked up in the CRM first, a lead found there is recorded and not made again, the
others are made once; twenty outcomes recorded at once by a fresh process (more than
its pool's ten connections) all commit."""
from __future__ import annotations

import dataclasses
import uuid

import pytest
from aiohttp.test_utils import TestServer

from parley import db
from devstack.procs import free_port
from parley.service import ConsumerSpec, create_app

import crm_bridge.__main__ as crm_main
from crm_bridge import deliveries, domain
from tests.fake_crm import FakeCrm
from tests.stack import settings
from tests.support import eventually

LOST = 20          # claims lost by the previous process: more than the pool's connections
MADE_BEFORE = 10   # of them, leads the CRM made before the crash (their outcome never recorded)
PROJECT = "p-restart"


@pytest.fixture
async def schema(platform):
    schema = f"crm_{uuid.uuid4().hex[:8]}"
    pool = await db.create_pool(platform.database_url, schema)
    try:
        await db.migrate(pool, schema, crm_main.SPEC.migrations)
        yield schema, pool
    finally:
        await pool.close()


async def lose_claims(pool) -> list[str]:
    """Deliveries as a SIGKILL leaves them: claimed, in flight, their lease just over."""
    await pool.execute("insert into crm_settings (project_id, kind, secrets, default_responsible)"
                       " values ($1, 'bitrix24', $2, '9')", PROJECT,
                       {"webhook_url": "https://crm.example/rest/1/restartKey/"})
    ids = [str(uuid.uuid4()) for _ in range(LOST)]
    for request_id in ids:
        conversation_id = str(uuid.uuid4())
        await pool.execute(
            """insert into deliveries (request_id, project_id, conversation_id, requested, status, attempts,
                                       max_attempts, in_flight, claim_token, next_attempt_at)
               values ($1, $2, $3, $4, 'pending', 1, 8, true, $5, now())""",
            request_id, PROJECT, conversation_id,
            {"conversation_id": conversation_id, "transcript": []}, str(uuid.uuid4()))
    return ids


async def test_a_restart_with_no_broker_delivers_every_lost_claim_once(platform, schema):
    schema_name, pool = schema
    ids = await lose_claims(pool)
    crm = FakeCrm()
    for request_id in ids[:MADE_BEFORE]:
        requested = await pool.fetchval("select requested from deliveries where request_id = $1", request_id)
        draft = domain.draft_for(request_id, requested, responsible_id="9", source_name=None, app_url="http://x")
        crm.leads[request_id] = (f"before-{request_id[:8]}", draft)
    no_broker = dataclasses.replace(settings(platform, "crm-bridge"), kafka_bootstrap=f"127.0.0.1:{free_port()}")
    spec = dataclasses.replace(crm_main.SPEC, schema=schema_name, consumers=[
        ConsumerSpec(f"crm-bridge.leads.{schema_name}", ["conversation.events"], deliveries.on_conversation_event)])
    app = create_app(spec, no_broker)
    app[deliveries.TUNING] = deliveries.Tuning(lease=6, poll_interval=0.05, crm_timeout=2,
                                               adapter_factory=lambda *args: crm)
    server = TestServer(app)
    await server.start_server()
    try:
        async def all_delivered():
            return await pool.fetchval("select count(*) from deliveries where status = 'delivered'") == LOST
        await eventually(all_delivered, timeout=30, what="every lost claim delivered with no broker")
    finally:
        await server.close()

    rows = {str(r["request_id"]): r for r in await pool.fetch("select * from deliveries")}
    assert all(r["attempts"] == 2 and not r["in_flight"] for r in rows.values())
    for request_id in ids[:MADE_BEFORE]:                 # found in the CRM, not made again
        assert rows[request_id]["lead_id"] == f"before-{request_id[:8]}"
    assert sorted(crm.created) == sorted(ids[MADE_BEFORE:])               # the others made once each
    assert crm.calls.count("find_lead") == LOST                           # every lost claim looked up first
    recorded = await pool.fetch("select type, data from events where type like 'lead.%'")
    assert sorted(e["data"]["request_id"] for e in recorded) == sorted(ids)
    assert {e["type"] for e in recorded} == {"lead.created"}
