"""The CRM handoff through the real stack (Kafka, PostgreSQL, the gateway, the
conversation service and crm-bridge in-process) with a test double of the CRM port:
lead.requested -> exactly one lead -> lead.created / lead.failed on lead.events."""
from __future__ import annotations

import asyncio
import logging

import orjson

from parley import kafka
from parley.config import env
from parley.envelope import Event
from parley.service import POOL, STORE

from crm_bridge import deliveries
from crm_bridge.crm import Manager
from tests.visitor import ScriptedVisitor

OWNER_EMAIL, OWNER_PASSWORD = env("PARLEY_OWNER_EMAIL"), env("PARLEY_OWNER_PASSWORD")
SECRET = "s3cr3tHookKey42"
WEBHOOK_URL = f"https://example.bitrix24.ru/rest/1/{SECRET}/"
PAGE = "https://shop.example/p/1?utm_source=yandex&utm_medium=cpc&utm_campaign=winter"


async def configure(stack, owner: str, **overrides) -> dict:
    body = {"kind": "bitrix24", "webhook_url": WEBHOOK_URL, "default_responsible": "9",
            "source_name": "Parley chat", **overrides}
    body = {k: v for k, v in body.items() if v is not None or k in ("default_responsible", "source_name")}
    r = await stack.call("PUT", "/api/project/crm", owner, json=body)
    assert r.status == 200, await r.text()
    return await r.json()


async def conversation_with_operator(stack, owner: str, name: str = "Anna Lead"):
    """A visitor with params, contacts and a UTM page; an operator who took it, replied
    and wrote a note. Returns (conversation id, operator token, operator email)."""
    _, operator, email = await stack.add_operator(owner, name)
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.ws.send_json({"type": "params", "params": {"product": "Windows", "office": "Moscow"}})
    await visitor.send_and_wait("I want to buy 10 licenses", page_url=PAGE)
    cid = visitor.conversation_id or (await (await stack.call("GET", "/api/inbox?view=new", operator)).json())[
        "conversations"][0]["id"]
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", operator)).status == 200
    await stack.call("POST", f"/api/conversations/{cid}/messages", operator, json={"text": "Great, your phone?"})
    await stack.call("POST", f"/api/conversations/{cid}/notes", operator, json={"text": "internal: big deal"})
    await visitor.ws.send_json({"type": "contacts", "name": "Ivan", "phone": "+79991234567",
                                "email": "ivan@example.com"})
    await visitor.send_and_wait("+7 999 123-45-67", page_url=PAGE)
    await visitor.ws.close()
    return cid, operator, email


async def request_lead(stack, cid: str, operator: str) -> str:
    """A lead for the conversation, a further one too (`again`: these tests are about delivery)."""
    r = await stack.call("POST", f"/api/conversations/{cid}/lead", operator, json={"again": True})
    assert r.status == 200, await r.text()
    events = (await r.json())["events"]
    return next(e for e in events if e["event"] == "lead.requested")["id"] if "id" in events[-1] else None


async def wait_settled(bridge, count: int, timeout: float = 30) -> list:
    """Until `count` deliveries exist and none is pending; returns them."""
    pool = bridge.app[POOL]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await pool.fetch("select * from deliveries order by created_at")
        if len(rows) >= count and all(r["status"] != "pending" for r in rows):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"deliveries not settled: {[(r['status'], r['attempts'], r['last_error']) for r in rows]}")
        await asyncio.sleep(0.05)


async def outcome_events(bridge, catalog) -> list[Event]:
    """The lead outcomes crm-bridge stored, each valid (its audit entries - the CRM
    settings saved - aside)."""
    stored = [s for s in await bridge.app[STORE].read_all() if s.topic != "audit.events"]
    for s in stored:
        catalog.validate(s.event)
        assert s.topic == "lead.events"
    return [s.event for s in stored]


async def test_the_operators_manager_is_responsible_and_the_lead_carries_no_notes(crm_stack, catalog,
                                                                                 caplog):
    bridge = crm_stack.bridge
    caplog.set_level(logging.DEBUG)
    stack = crm_stack
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    shown = await configure(stack, owner)
    assert SECRET not in orjson.dumps(shown).decode()
    assert shown["webhook_url"] == "https://example.bitrix24.ru/rest/1/•••/"
    cid, operator, email = await conversation_with_operator(stack, owner)
    # The CRM knows the operator with another case and spaces around the address.
    bridge.crm.managers_list = [Manager("5", "Anna Petrova", f"  {email.upper()} "), *bridge.crm.managers_list[1:]]
    await request_lead(stack, cid, operator)

    [row] = await wait_settled(bridge, 1)
    assert row["status"] == "delivered" and row["attempts"] == 1
    [(lead_id, draft)] = bridge.crm.leads.values()
    assert draft.responsible_id == "5" and draft.source_name == "Parley chat"
    assert "internal: big deal" not in draft.comments and "Great, your phone?" in draft.comments
    assert "I want to buy 10 licenses" in draft.comments
    assert draft.custom_params == {"product": "Windows", "office": "Moscow"}
    assert draft.utm == {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "winter"}
    assert (draft.name, draft.phone, draft.email) == ("Ivan", "+79991234567", "ivan@example.com")
    assert draft.title == "Chat: Ivan" and draft.page_url == PAGE
    assert draft.conversation_url.endswith(f"/app/#/conversations/{cid}")

    [event] = await outcome_events(bridge, catalog)
    assert event.type == "lead.created" and event.stream_id == f"lead-{row['request_id']}"
    assert event.causation_id == str(row["request_id"]) and event.project_id == "demo"
    assert event.data == {"conversation_id": cid, "request_id": str(row["request_id"]), "lead_id": lead_id,
                          "url": f"https://crm.example/lead/{lead_id}",
                          "responsible": {"id": "5", "name": "Anna Petrova"}}

    r = await stack.call("GET", "/api/project/crm/deliveries", owner)
    [listed] = (await r.json())["deliveries"]
    assert listed["status"] == "delivered" and listed["lead_id"] == lead_id and listed["conversation_id"] == cid
    assert listed["delivered_at"] and listed["lead_url"].endswith(lead_id)
    # The secret is in crm-bridge's settings table and nowhere else.
    assert SECRET not in caplog.text
    assert SECRET not in str([s.event.to_dict() for s in await bridge.app[STORE].read_all()])   # audit entries too


async def test_no_matching_manager_makes_the_default_responsible(crm_stack, catalog):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner)
    cid, operator, _ = await conversation_with_operator(stack, owner, "Nobody Known")
    await request_lead(stack, cid, operator)
    [row] = await wait_settled(bridge, 1)
    assert row["status"] == "delivered", row["last_error"]
    [(_, draft)] = bridge.crm.leads.values()
    assert draft.responsible_id == "9"
    [event] = await outcome_events(bridge, catalog)
    assert event.data["responsible"] == {"id": "9", "name": "Oleg Default"}


async def test_a_redelivered_request_makes_no_second_lead(crm_stack, platform):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner)
    cid, operator, _ = await conversation_with_operator(stack, owner)
    await request_lead(stack, cid, operator)
    [row] = await wait_settled(bridge, 1)
    # The relay republishes the event (a crash before it recorded its progress) ...
    conversation_store = stack.conversation.app[STORE]
    [requested] = [e for e in await conversation_store.load(f"conversation-{cid}") if e.type == "lead.requested"]
    assert requested.id == str(row["request_id"])
    producer = kafka.producer(platform.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("conversation.events", requested.to_bytes(), key=requested.stream_id.encode())
    finally:
        await producer.stop()
    # ... and the outbox insert itself is keyed by the event id, whatever the consumer's claim says.
    async with bridge.app[POOL].acquire() as conn, conn.transaction():
        await deliveries.on_conversation_event(conn, requested)
    await asyncio.sleep(0.5)  # time for a wrongly accepted duplicate to be delivered (not a timing assert)
    rows = await wait_settled(bridge, 1)
    assert len(rows) == 1 and bridge.crm.created == [requested.id]


async def test_crm_trouble_then_recovery_gives_exactly_one_lead_per_request(crm_stack, catalog):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner)
    cid, operator, _ = await conversation_with_operator(stack, owner)
    n = 15
    bridge.crm.faults = ["500", "limit", "timeout_after_create", "timeout_before_create", "limit", "500"] * 3
    for _ in range(n):
        await request_lead(stack, cid, operator)
    rows = await wait_settled(bridge, n)
    assert len(rows) == n and all(r["status"] == "delivered" for r in rows)
    assert sorted(bridge.crm.created) == sorted(str(r["request_id"]) for r in rows)  # none twice, none lost
    assert bridge.crm.faults == [] and "find_lead" in bridge.crm.calls
    events = await outcome_events(bridge, catalog)
    assert sorted(e.data["request_id"] for e in events) == sorted(bridge.crm.created)
    assert {e.type for e in events} == {"lead.created"}


async def test_a_timeout_after_the_crm_created_the_lead_makes_no_second_lead(crm_stack, catalog):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner)
    cid, operator, _ = await conversation_with_operator(stack, owner)
    bridge.crm.faults = ["timeout_after_create"]
    await request_lead(stack, cid, operator)
    [row] = await wait_settled(bridge, 1)
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert len(bridge.crm.created) == 1 and bridge.crm.calls.count("create_lead") == 1
    assert "find_lead" in bridge.crm.calls
    [event] = await outcome_events(bridge, catalog)
    assert event.data["lead_id"] == bridge.crm.leads[str(row["request_id"])][0]


async def test_no_crm_fails_at_once_and_an_admins_retry_delivers_once(crm_stack, catalog):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    cid, operator, _ = await conversation_with_operator(stack, owner)
    await request_lead(stack, cid, operator)
    [row] = await wait_settled(bridge, 1)
    assert row["status"] == "failed" and bridge.crm.created == []
    [failed] = await outcome_events(bridge, catalog)
    assert failed.type == "lead.failed"
    assert failed.data == {"conversation_id": cid, "request_id": str(row["request_id"]),
                           "reason": "No CRM is configured", "retryable": False}

    await configure(stack, owner)
    retry = f"/api/project/crm/deliveries/{row['request_id']}/retry"
    assert (await stack.call("POST", retry, operator)).status == 403      # admins only
    r = await stack.call("POST", retry, owner)
    assert r.status == 200 and (await r.json())["status"] in ("pending", "delivered")
    [row] = await wait_settled(bridge, 1)
    assert row["status"] == "delivered"
    again = await stack.call("POST", retry, owner)                          # idempotent: stays delivered
    assert again.status == 200 and (await again.json())["lead_id"] == row["lead_id"]
    await asyncio.sleep(0.3)
    assert len(bridge.crm.created) == 1
    assert [e.type for e in await outcome_events(bridge, catalog)] == ["lead.failed", "lead.created"]
    assert (await stack.call("POST", f"/api/project/crm/deliveries/{cid}/retry", owner)).status == 404


async def test_settings_are_for_admins_validated_and_never_show_secrets(crm_stack, monkeypatch):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, operator, _ = await stack.add_operator(owner, "Not Admin")
    for method, route in (("GET", "/api/project/crm"), ("PUT", "/api/project/crm"),
                          ("POST", "/api/project/crm/test"), ("GET", "/api/project/crm/deliveries")):
        r = await stack.call(method, route, operator, json={"kind": "none"} if method == "PUT" else None)
        assert r.status == 403, (route, await r.text())
    r = await stack.call("GET", "/api/project/crm", owner)
    assert (await r.json()) == {"kind": "none", "default_responsible": None, "source_name": None, "updated_at": None}
    r = await stack.call("POST", "/api/project/crm/test", owner)
    assert await r.json() == {"ok": False, "summary": "No CRM is configured"}

    for body, code in (({"kind": "salesforce"}, "kind_invalid"),
                       ({"kind": "bitrix24", "webhook_url": "ftp://x.example/rest/1/abcd/"}, "webhook_url_invalid"),
                       ({"kind": "bitrix24", "webhook_url": "https://x.example/api/"}, "webhook_url_invalid"),
                       ({"kind": "bitrix24", "webhook_url": "http://127.0.0.1:9/rest/1/abcdef/"}, "webhook_url_invalid"),
                       ({"kind": "webhook", "url": "https://10.0.0.5/hook", "secret": "x" * 20}, "url_invalid"),
                       ({"kind": "webhook", "url": "https://hooks.example/p"}, "secret_invalid"),
                       ({"kind": "amocrm", "base_url": "https://a.amocrm.ru", "token": "short"}, "token_invalid"),
                       ({"kind": "none", "token": "x" * 20}, "field_unknown"),
                       ({"kind": "none", "default_responsible": 12}, "default_responsible_invalid")):
        r = await stack.call("PUT", "/api/project/crm", owner, json=body)
        assert r.status == 422 and (await r.json())["error"]["code"] == code, (body, await r.text())

    shown = await configure(stack, owner, kind="webhook", url="https://hooks.example/parley", secret=SECRET,
                            webhook_url=None)
    assert shown == {"kind": "webhook", "url": "https://hooks.example/parley", "secret_set": True,
                     "default_responsible": "9", "source_name": "Parley chat", "updated_at": shown["updated_at"]}
    # The secret may be left out to keep it, for the same address only (issue 23: a secret
    # kept across a new URL went to the new host with "Test connection").
    r = await stack.call("PUT", "/api/project/crm", owner, json={"kind": "webhook", "url": "https://hooks.example/v2"})
    assert r.status == 422 and (await r.json())["error"]["code"] == "secret_required", await r.text()
    kept = await configure(stack, owner, kind="webhook", url="https://hooks.example/parley", webhook_url=None,
                           source_name="Parley chat v2")
    assert kept["secret_set"] is True and kept["source_name"] == "Parley chat v2"
    kept = await configure(stack, owner, kind="webhook", url="https://hooks.example/v2", secret=SECRET,
                           webhook_url=None)
    stored = await bridge.app[POOL].fetchval("select secrets from crm_settings where project_id = 'demo'")
    assert stored == {"secret": SECRET}
    r = await stack.call("POST", "/api/project/crm/test", owner)
    assert await r.json() == {"ok": True, "summary": "2 managers, lead creation allowed"}
    monkeypatch.setenv("PARLEY_CRM_ALLOW_PRIVATE", "1")
    r = await stack.call("PUT", "/api/project/crm", owner,
                         json={"kind": "bitrix24", "webhook_url": "http://127.0.0.1:9/rest/1/abcdef/"})
    assert r.status == 200, await r.text()
