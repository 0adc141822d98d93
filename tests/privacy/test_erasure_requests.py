"""Issue 20, item 3 as an owner meets it, through the gateway on the real stack
(conversation service, crm-bridge, real Kafka and PostgreSQL): erasure by phone.

- `POST /api/project/privacy/erasures {"phone"}` answers 202 {id, status: pending};
  the status turns `done` by itself once the conversation service, the gateway (files)
  and crm-bridge (its copies of the lead request, its client cards) have each done
  their part, and it says what was erased and which CRM leads exist (outside Parley);
- after it, a `pg_dump` of the whole database and every topic are free of the marker
  the conversation put in every personal field, its file answers 404, the delivery log
  and the inbox hold nothing of it;
- the same visitor's conversation from another browser (same phone) is erased too,
  another project's conversation with the same phone is not;
- before it, the export holds all of it (notes marked, files, the lead); after it, the
  export of the erased conversation holds nothing of the person;
- a retry with the same Idempotency-Key is the same erasure; non-admins get 403."""
from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pgserver

from parley.service import POOL

from gateway import verified_visitors

from devstack.visitor_protocol import token_headers
from tests.visitor import ScriptedVisitor
from tests.crm_bridge.test_handoff import OWNER_EMAIL, OWNER_PASSWORD, configure, wait_settled
from tests.privacy.marked import all_published, every_record, marked_conversation
from tests.support import eventually

PHONE = "+79001112233"
PG_DUMP = str(Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump")   # the suite's PostgreSQL's own


def pg_dump(database_url: str) -> bytes:
    return subprocess.run([PG_DUMP, "--no-owner", database_url], check=True, capture_output=True, timeout=120).stdout


async def test_an_erasure_by_phone_leaves_nothing_of_the_person_anywhere(crm_stack, platform):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, default_responsible="9")
    cid, mark, visitor = await marked_conversation(stack, owner)
    await wait_settled(bridge, 1)
    file_url = next(e["attachment"]["url"] for e in visitor.events if e.get("attachment"))
    assert (await stack.gateway.get(file_url, headers=token_headers(visitor.token))).status == 200

    # The same person from another browser, logged in on the site (a verified visitor whose
    # name and email Parley keeps), and someone with the same phone in another project.
    secret = (await (await stack.call("GET", "/api/project/identity-secret", owner)).json())["secret"]
    r = await stack.gateway.post("/api/visitor/session", json={"project": "demo", "identity": {
        "id": "maria-1", "name": f"Maria {mark}", "email": f"maria.{mark.lower()}@example.com",
        "hash": verified_visitors.expected_hash(secret, "maria-1")}})
    assert r.status == 201 and (await r.json())["verified"] is True
    again = ScriptedVisitor(stack.gateway, token=(await r.json())["visitor_token"],
                            visitor_id=(await r.json())["visitor_id"])
    await again.connect()   # with the token the page's vouching got (a session without it is someone new)
    await again.ws.send_json({"type": "contacts", "name": "Maria", "phone": PHONE})
    await again.send_and_wait(f"It is me again {mark}")
    await stack.create_project("elsewhere", "owner@elsewhere.test", "elsewhere-pass-1")
    other = ScriptedVisitor(stack.gateway, project="elsewhere")
    await other.start()
    await other.ws.send_json({"type": "contacts", "name": "Not Maria", "phone": PHONE})
    await other.send_and_wait(f"Another project {mark}")

    # The export first (item 2): both of her conversations, notes marked, files, the lead.
    r = await stack.call("GET", "/api/project/privacy/export?phone=8%20900%20111-22-33", owner)
    assert r.status == 200, await r.text()
    exported = await r.json()
    assert len(exported["conversations"]) == 2 and "Another project" not in str(exported)
    [first_one] = [c for c in exported["conversations"] if c["id"] == cid]
    assert [m["from"] for m in first_one["transcript"]] == ["visitor", "visitor", "operator", "operator_note"]
    assert first_one["files"][0]["name"] == f"receipt-{mark}.png" and first_one["rating"]["comment"] == f"thanks {mark}"
    assert first_one["custom_params"] == {"office": f"office {mark}"} and mark in first_one["pages"][0]
    assert [lead["lead_id"] for lead in first_one["leads"]] == ["100"]
    assert any((c["verified_identity"] or {}).get("name") == f"Maria {mark}" for c in exported["conversations"])

    _, operator, _ = await stack.add_operator(owner, "Plain Operator")
    for method, path in (("POST", "/api/project/privacy/erasures"),
                         ("GET", f"/api/project/privacy/export?phone={PHONE}")):
        r = await stack.call(method, path, operator, json={"phone": PHONE} if method == "POST" else None)
        assert r.status == 403 and (await r.json())["error"]["code"] == "admin_only", path
    r = await stack.call("POST", "/api/project/privacy/erasures", owner, json={"phone": "8 900 111-22-33"},
                         headers={"Idempotency-Key": "erase-maria-1"})
    assert r.status == 202, await r.text()
    first = await r.json()
    assert first["status"] == "pending" and first["conversations"] == 2
    r = await stack.call("POST", "/api/project/privacy/erasures", owner, json={"phone": PHONE},
                         headers={"Idempotency-Key": "erase-maria-1"})
    assert (await r.json())["id"] == first["id"]                      # a retry is the same erasure

    async def status() -> dict:
        r = await stack.call("GET", f"/api/project/privacy/erasures/{first['id']}", owner)
        assert r.status == 200, await r.text()
        return await r.json()

    async def done() -> bool:
        return (await status())["status"] == "done"
    await eventually(done, timeout=60, what="the erasure done")
    result = await status()
    assert result["erased"]["conversations"] == 2 and result["erased"]["files"] == 1
    assert result["erased"]["messages"] >= 3
    assert [lead["lead_id"] for lead in result["crm_leads"]] == ["100"]   # in the CRM: the owner's to erase there
    assert mark not in str(result)

    # Nothing left: files, answers, the database, the topics.
    assert (await stack.gateway.get(file_url, headers=token_headers(visitor.token))).status == 404
    for path in ("/api/inbox?view=all", f"/api/conversations/{cid}", "/api/project/crm/deliveries",
                 f"/api/conversations/{cid}/client", f"/api/project/privacy/export?conversation_id={cid}"):
        r = await stack.call("GET", path, owner)
        assert r.status == 200 and mark not in await r.text() and PHONE not in await r.text(), path
    await all_published(stack.conversation.app[POOL])
    await asyncio.sleep(0.5)
    assert [r for r in await every_record(platform.bootstrap) if mark.encode() in r] == []
    dump = pg_dump(platform.database_url)
    assert b"Another project " + mark.encode() in dump                  # the other project keeps its own
    assert dump.count(mark.encode()) == dump.count(b"Another project " + mark.encode())
