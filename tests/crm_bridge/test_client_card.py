"""The returning client's card and a conversation's own leads, through the real stack
(gateway, conversation service, crm-bridge; Kafka, PostgreSQL) with the Bitrix24
stand-in over HTTP behind the real adapter:

- a client who comes back from a new browser with the same phone is recognised: the
  card shows the earlier conversation, the lead Parley made in it, and that lead's
  current status in the CRM (changed there by a manager);
- with the CRM down the card still answers, marked out of date, and the chat goes on;
- a conversation's handoff outcome and an operator's retry of a failed one."""
from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from crm_bridge import client_cards, standin
from tests.visitor import ScriptedVisitor
from tests.crm_bridge.test_handoff import OWNER_EMAIL, OWNER_PASSWORD, configure, request_lead, wait_settled
from tests.crm_bridge.test_standin import SECRET, crm, standin_leads, webhook_url  # noqa: F401  (crm: a fixture)

PHONE = "+79991234567"


async def bitrix(crm, method: str, params: dict) -> dict:
    r = await crm.post(f"/rest/1/{SECRET}/{method}.json", json=params)
    assert r.status == 200, await r.text()
    return await r.json()


async def visit(stack, owner: str, text: str, **contacts) -> str:
    """A new browser (a new visitor token) writes, leaves contacts; the owner takes it."""
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait(text, page_url="https://shop.example/")
    if contacts:
        await visitor.ws.send_json({"type": "contacts", **contacts})
        await visitor.send_and_wait("there you go", page_url="https://shop.example/")
    await visitor.ws.close()
    cid = (await stack.conversation_client.checked("GET", "/internal/visitor/conversation", params={
        "project_id": "demo", "visitor_id": visitor.visitor_id}))["conversation_id"]
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", owner)).status == 200
    return cid


async def audit_entries(stack, owner: str, action: str, targets: set[str], timeout: float = 15.0) -> list[dict]:
    """The project's audit log entries of one action, once it has one for each of
    `targets` (the registry projects them from the topic)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await stack.call("GET", "/api/project/audit", owner)
        assert r.status == 200, await r.text()
        found = [e for e in (await r.json())["entries"] if e["action"] == action]
        if {e["target"]["id"] for e in found} >= targets or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def card(stack, cid: str, token: str, refresh: bool = False) -> dict:
    r = await stack.call("GET", f"/api/conversations/{cid}/client" + ("?refresh=1" if refresh else ""), token)
    assert r.status == 200, await r.text()
    return await r.json()


async def test_a_returning_client_with_the_same_phone_sees_the_earlier_lead_and_its_crm_status(
        crm, crm_stack, monkeypatch):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, webhook_url=webhook_url(crm), default_responsible="3")
    first = await visit(stack, owner, "I want 10 licenses", name="Ivan Petrov", phone=PHONE)
    await request_lead(stack, first, owner)
    [row] = await wait_settled(bridge, 1)
    assert row["status"] == "delivered", row["last_error"]
    # The manager works the lead in the CRM.
    await bitrix(crm, "crm.lead.update", {"id": row["lead_id"], "fields": {"STATUS_ID": "IN_PROCESS"}})

    # Someone else, never seen before and without contacts: nothing to recognise.
    stranger = await visit(stack, owner, "just looking")
    alone = await card(stack, stranger, owner)
    assert alone["earlier_conversations"] == [] and alone["crm"]["leads"] == []

    # The same client from a new browser, recognised by the phone alone (written differently).
    calls = (await (await crm.get("/_leads")).json())["calls"]
    second = await visit(stack, owner, "it's me again", phone="8 (999) 123-45-67")
    typed = await card(stack, second, owner)
    assert typed["client"]["phone"] == PHONE and typed["client"]["confirmed"] == []
    [earlier] = typed["earlier_conversations"]
    # The visitor typed the phone (issue 23): the match is marked, the CRM is not asked.
    assert earlier["id"] == first and earlier["matched_by"] == ["phone"] and earlier["unconfirmed"] is True
    assert typed["crm"]["leads"] == [] and typed["crm"]["unconfirmed"] == ["phone"]
    assert (await (await crm.get("/_leads")).json())["calls"] == calls
    # The operator confirms it with the client ("Confirm and look up": the contacts PUT).
    r = await stack.call("PUT", f"/api/conversations/{second}/contacts", owner, json={"phone": PHONE})
    assert r.status == 200, await r.text()
    seen = await card(stack, second, owner)
    assert seen["client"]["confirmed"] == ["phone"] and seen["crm"]["unconfirmed"] == []
    [earlier] = seen["earlier_conversations"]
    assert earlier["unconfirmed"] is False
    [lead] = earlier["leads"]
    assert lead["lead_id"] == row["lead_id"] and lead["status"] == "delivered" and lead["crm_status"] == "IN_PROCESS"
    assert lead["responsible"]["name"] == "Anna Petrova"
    assert [x["lead_id"] for x in seen["crm"]["leads"]] == [row["lead_id"]]
    assert seen["crm"]["stale"] is False and seen["crm"]["fetched_at"]
    assert seen["leads"] == []          # nothing sent to the CRM from this conversation yet

    # Served from the cache while fresh: the CRM is not asked again.
    calls = (await (await crm.get("/_leads")).json())["calls"]
    assert (await card(stack, second, owner))["crm"]["leads"] == seen["crm"]["leads"]
    assert (await (await crm.get("/_leads")).json())["calls"] == calls

    # The CRM goes down: a refresh comes back with the last answer, marked out of date.
    r = await crm.post("/_faults", json={"fail_next": [500] * 20, "methods": ["crm.duplicate.findbycomm"]})
    assert r.status == 200
    down = await card(stack, second, owner, refresh=True)
    assert down["crm"]["stale"] is True and "500" in down["crm"]["error"]
    assert [x["lead_id"] for x in down["crm"]["leads"]] == [row["lead_id"]]
    assert SECRET not in str(down)
    # ... and the chat carries on unaffected.
    r = await stack.call("POST", f"/api/conversations/{second}/messages", owner, json={"text": "Welcome back!"})
    assert r.status == 200, await r.text()

    # Nothing cached for a new client and the CRM still down: out of date, empty, still 200.
    monkeypatch.setattr(client_cards, "FRESH_SECONDS", 0)
    third = await visit(stack, owner, "hello", email="New.Client@Example.com")
    r = await stack.call("PUT", f"/api/conversations/{third}/contacts", owner, json={"email": "New.Client@Example.com"})
    assert r.status == 200, await r.text()
    fresh = await card(stack, third, owner)
    assert fresh["crm"]["stale"] is True and fresh["crm"]["leads"] == []

    # Every question the CRM was asked is in the audit trail, with the conversation and
    # the kind of contact, never the contact itself.
    lookups = await audit_entries(stack, owner, "crm.client_lookup", {second, third})
    assert {e["target"]["id"] for e in lookups} >= {second, third}
    assert all(e["detail"]["by_phone"] or e["detail"]["by_email"] for e in lookups)
    assert PHONE not in str(lookups) and "new.client" not in str(lookups).lower()


async def test_the_card_when_crm_bridge_itself_is_down(crm, crm_stack):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, webhook_url=webhook_url(crm), default_responsible="3")
    cid = await visit(stack, owner, "hello", phone=PHONE)
    await bridge.client.close()
    seen = await card(stack, cid, owner)
    assert seen["client"]["phone"] == PHONE
    assert seen["crm"]["stale"] is True and "not answering" in seen["crm"]["error"]


async def test_the_card_is_for_those_who_may_see_the_conversation(crm, crm_stack):
    stack = crm_stack
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    cid = await visit(stack, owner, "hello", phone=PHONE)      # the owner took it
    _, operator, _ = await stack.add_operator(owner, "Other Operator")
    for path in (f"/api/conversations/{cid}/client", f"/api/conversations/{cid}/leads"):
        r = await stack.call("GET", path, operator)
        assert r.status == 404, (path, r.status)
        assert (await stack.call("GET", path)).status == 401


async def test_a_failed_handoff_shows_why_and_the_operators_retry_delivers_it_once(crm, crm_stack):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, webhook_url=webhook_url(crm), default_responsible="3")
    _, operator, _ = await stack.add_operator(owner, "Handling Operator")
    cid = await visit(stack, operator, "call me", name="Ivan", phone=PHONE)
    # A final refusal: the webhook's key was revoked.
    r = await crm.post("/_faults", json={"fail_next": ["invalid_credentials"], "methods": ["user.get"]})
    assert r.status == 200
    await request_lead(stack, cid, operator)
    [row] = await wait_settled(bridge, 1)
    r = await stack.call("GET", f"/api/conversations/{cid}/leads", operator)
    [failed] = (await r.json())["leads"]
    assert failed["status"] == "failed" and failed["retryable"] is False and "INVALID_CREDENTIALS" in failed["last_error"]
    assert SECRET not in str(failed)

    # Another operator of the project may not retry it; the assignee may, twice, and one lead is made.
    _, other, _ = await stack.add_operator(owner, "Other Operator")
    retry = f"/api/conversations/{cid}/leads/{failed['request_id']}/retry"
    assert (await stack.call("POST", retry, other)).status == 404
    for _ in range(2):
        r = await stack.call("POST", retry, operator)
        assert r.status == 200, await r.text()
    [row] = await wait_settled(bridge, 1)
    assert row["status"] == "delivered", row["last_error"]
    [lead] = (await (await stack.call("GET", f"/api/conversations/{cid}/leads", operator)).json())["leads"]
    assert lead["status"] == "delivered" and lead["lead_id"] == row["lead_id"] and lead["responsible"]["id"] == "3"
    assert len(await standin_leads(crm)) == 1
    # A retry of a delivered one changes nothing; an id from elsewhere is not found.
    assert (await (await stack.call("POST", retry, operator)).json())["status"] == "delivered"
    assert (await stack.call("POST", f"/api/conversations/{cid}/leads/{cid}/retry", operator)).status == 404
    assert (await stack.call("POST", f"/api/conversations/{cid}/leads/..%2F..%2Fx/retry", operator)).status == 404


async def test_a_visitor_typing_someone_elses_phone_shows_a_non_admin_nothing_of_that_person(crm, crm_stack):
    """Issue 23, finding 3: a visitor who typed someone else's phone put that person's
    conversations (last message, assignee, lead, responsible manager, CRM link) and the
    CRM's records for that phone on their own card, for any operator to see."""
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, webhook_url=webhook_url(crm), default_responsible="3")
    _, anna, _ = await stack.add_operator(owner, "Anna Own")
    _, boris, _ = await stack.add_operator(owner, "Boris Other")
    # The real Ivan, handled by Boris, with a lead in the CRM; and one earlier by Anna.
    ivan = await visit(stack, boris, "Ivan's secret order", name="Ivan Petrov", phone=PHONE)
    r = await stack.call("PUT", f"/api/conversations/{ivan}/contacts", boris, json={"name": "Ivan Petrov", "phone": PHONE})
    assert r.status == 200, await r.text()
    await request_lead(stack, ivan, boris)
    [row] = await wait_settled(bridge, 1)
    assert row["status"] == "delivered", row["last_error"]
    annas = await visit(stack, anna, "Anna's earlier chat", phone=PHONE)
    calls = (await (await crm.get("/_leads")).json())["calls"]

    # Someone else types Ivan's phone; Anna takes the conversation.
    impostor = await visit(stack, anna, "hi", phone="+7 999 123-45-67")
    seen = await card(stack, impostor, anna)
    assert [c["id"] for c in seen["earlier_conversations"]] == [annas]     # hers only
    assert seen["earlier_conversations"][0]["unconfirmed"] is True
    assert seen["hidden_conversations"] == 1                                 # Boris's: that it exists, no more
    text = str(seen)
    for secret in ("Ivan", "secret order", "Boris", "Anna Petrova"):
        assert secret not in text, secret
    assert seen["leads"] == [] and all(c["leads"] == [] for c in seen["earlier_conversations"])
    assert seen["crm"]["leads"] == [] and seen["crm"]["unconfirmed"] == ["phone"]
    assert (await (await crm.get("/_leads")).json())["calls"] == calls       # the CRM was not asked
    # The owner sees every earlier conversation, the typed-in matches marked.
    everything = await card(stack, impostor, owner)
    assert {c["id"] for c in everything["earlier_conversations"]} == {ivan, annas}
    assert all(c["unconfirmed"] for c in everything["earlier_conversations"])
    assert "Ivan" not in str(everything["client"])   # no name borrowed by a typed phone


async def test_crm_look_ups_are_limited_per_operator(crm, crm_stack, monkeypatch):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, webhook_url=webhook_url(crm), default_responsible="3")
    monkeypatch.setattr(bridge.app[client_cards.LOOKUPS], "per_window", 2)
    answers = []
    for i in range(3):
        cid = await visit(stack, owner, f"client {i}")
        r = await stack.call("PUT", f"/api/conversations/{cid}/contacts", owner, json={"phone": f"+7999000000{i}"})
        assert r.status == 200, await r.text()
        answers.append((await card(stack, cid, owner))["crm"])
    assert [a["stale"] for a in answers] == [False, False, True]
    assert "try again later" in answers[2]["error"]
