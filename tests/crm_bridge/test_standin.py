"""The handoff against the local CRM stand-in over HTTP (crm_bridge.standin, Bitrix24's
incoming-webhook contract) with the real Bitrix24 adapter: the responsible manager by
email, the payload, and exactly one lead per request through 500s, 503
QUERY_LIMIT_EXCEEDED, timeouts and dropped connections after the lead was created."""
from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

from crm_bridge import deliveries, standin
from tests.crm_bridge.test_handoff import (OWNER_EMAIL, OWNER_PASSWORD, configure, conversation_with_operator,
                                          outcome_events, request_lead, wait_settled)

SECRET = "standinWebhookKey"


@pytest.fixture
async def crm(crm_stack, monkeypatch):
    """The stand-in, its owner manager's email in another case and with spaces; the
    bridge switched to the real adapters with a short timeout."""
    bridge = crm_stack.bridge
    monkeypatch.setenv("PARLEY_CRM_ALLOW_PRIVATE", "1")
    client = TestClient(TestServer(standin.create_app(secret=SECRET, owner_email=f"  {OWNER_EMAIL.upper()} ")))
    await client.start_server()
    tuning = bridge.app[deliveries.TUNING]
    tuning.adapter_factory, tuning.crm_timeout = deliveries.default_adapter_factory, 1.0
    yield client
    await client.close()


def webhook_url(crm) -> str:
    return f"http://127.0.0.1:{crm.port}/rest/1/{SECRET}/"


async def standin_leads(crm) -> list[dict]:
    return (await (await crm.get("/_leads")).json())["bitrix24"]


async def test_a_lead_in_the_standin_with_the_owners_manager(crm, crm_stack, caplog):
    bridge = crm_stack.bridge
    caplog.set_level(logging.DEBUG)
    stack = crm_stack
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, webhook_url=webhook_url(crm), default_responsible="3")
    r = await stack.call("POST", "/api/project/crm/test", owner)
    body = await r.json()
    assert body["ok"] is True and "managers" in body["summary"], body
    cid, operator, _ = await conversation_with_operator(stack, owner)
    # The owner is the one who requests the lead: the stand-in's Anna Petrova has their email.
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", owner)).status in (200, 409)
    await request_lead(stack, cid, owner)
    [row] = await wait_settled(bridge, 1)
    assert row["status"] == "delivered", row["last_error"]
    [lead] = await standin_leads(crm)
    assert lead["ORIGIN_ID"] == str(row["request_id"]) and lead["ASSIGNED_BY_ID"] in ("1", 1)
    assert row["responsible"]["id"] == "1" and "Anna" in row["responsible"]["name"]
    assert "internal: big deal" not in str(lead) and "Great, your phone?" in lead["COMMENTS"]
    assert lead["UTM_SOURCE"] == "yandex" and lead["UTM_CAMPAIGN"] == "winter"
    assert "Windows" in lead["COMMENTS"] or "Windows" in str(lead)
    # (aiohttp.access is the stand-in's own server log, the CRM's side; services run without one)
    ours = [r.getMessage() + str(r.__dict__) for r in caplog.records if r.name != "aiohttp.access"]
    assert ours and not any(SECRET in line for line in ours)


async def test_crm_trouble_then_recovery_exactly_one_lead_each(crm, crm_stack, catalog, monkeypatch):
    """The issue's case: 500s, 503 QUERY_LIMIT_EXCEEDED and timeouts while 50 leads are
    requested, then the CRM recovers: exactly 50 leads, none twice, one lead.created each."""
    bridge = crm_stack.bridge
    # 50 leads, the refused and timed-out attempts again, the look-ups and user.get are
    # more than Bitrix24's burst of 50, and past it the limiter lets 2 calls a second
    # through: the rate limit is not what this test is about, so it is lifted here.
    monkeypatch.setattr(deliveries.PortalLimits, "RATES", {**deliveries.PortalLimits.RATES, "bitrix24": (1000.0, 1000)})
    stack = crm_stack
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, webhook_url=webhook_url(crm), default_responsible="3")
    cid, operator, _ = await conversation_with_operator(stack, owner)
    faults = [500, 503, "timeout_after_create", 503, "drop_after_create", 500, "timeout_after_create",
              503, "timeout_before_create", 502, 503, "timeout_after_create", 500, 503, "drop_after_create"]
    r = await crm.post("/_faults", json={"fail_next": faults, "methods": ["crm.lead.add"], "hang_seconds": 2})
    assert r.status == 200, await r.text()
    n = 50
    for _ in range(n):
        await request_lead(stack, cid, operator)
    rows = await wait_settled(bridge, n, timeout=60)
    assert len(rows) == n and all(r["status"] == "delivered" for r in rows), [r["last_error"] for r in rows]
    leads = await standin_leads(crm)
    origins = [lead["ORIGIN_ID"] for lead in leads]
    assert len(origins) == n and len(set(origins)) == n                      # none twice
    assert sorted(origins) == sorted(str(r["request_id"]) for r in rows)     # none lost, none foreign
    assert (await (await crm.get("/_faults")).json())["pending"] == []      # every fault was met
    calls = (await (await crm.get("/_leads")).json())["calls"]
    # Errors and a hang before creating made nothing and were tried again; the attempts
    # that created a lead and then timed out or lost the connection were found, not added again.
    made_nothing = sum(1 for f in faults if isinstance(f, int) or f == "timeout_before_create")
    ambiguous = sum(1 for f in faults if isinstance(f, str))
    assert calls["crm.lead.add"] == n + made_nothing and calls.get("crm.lead.list", 0) >= ambiguous
    assert sum(r["attempts"] for r in rows) >= n + len(faults)
    events = await outcome_events(bridge, catalog)
    assert {e.type for e in events} == {"lead.created"}
    assert sorted(e.data["request_id"] for e in events) == sorted(origins)  # one lead.created each
