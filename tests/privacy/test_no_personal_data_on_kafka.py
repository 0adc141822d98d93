"""Issue 20, item 1: no personal data in readable form on any topic. A conversation
through the real stack (gateway, conversation service, crm-bridge in-process, real
Kafka and PostgreSQL) carries one marker in every personal field - the page URL, custom
params, contacts, the visitor's message and attachment name, the operator's reply and
note, the rating comment, and a lead request with all of them. Then:
- every record of every topic, read from the beginning with a plain Kafka consumer,
  holds no marker (what is personal travels sealed, parley/personal.py);
- the readers that need the data still have it: the visitor's socket shows the reply
  (the gateway opened it with the conversation service's key) and the CRM's lead has
  the transcript and contacts (crm-bridge opened the lead request);
- the owning service's own store holds it (a plain row, what erasure will scrub)."""
from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition

from parley.config import REPO_ROOT
from parley.schemas import load_topics
from parley.service import POOL

from tests.crm_bridge.conftest import bridge, crm_stack  # noqa: F401  (fixtures)
from tests.crm_bridge.test_handoff import OWNER_EMAIL, OWNER_PASSWORD, configure, wait_settled
from tests.conversations.visitor import ScriptedVisitor
from tests.support import eventually

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


async def every_record(bootstrap: str) -> list[bytes]:
    """Every record of every Parley topic, from the beginning, as bytes (a plain consumer)."""
    topics = [t.name for t in load_topics(REPO_ROOT / "schemas" / "asyncapi.yaml")]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[bytes] = []
        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])
        while await behind():
            for batch in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                records += [(r.key or b"") + b"|" + (r.value or b"") + b"|" + b"".join(v for _, v in r.headers)
                            for r in batch]
        return records
    finally:
        await consumer.stop()


async def published(pool) -> bool:
    return await pool.fetchval("""select coalesce(bool_and(exists (select 1 from relay_cursors c
                                   where c.shard = e.shard and c.position >= e.last)), true)
                                  from (select shard, max(position) as last from events group by shard) e""")


async def test_no_topic_holds_a_personal_field_in_readable_form(bridge, crm_stack, platform):  # noqa: F811
    stack = crm_stack
    mark = f"PII{uuid.uuid4().hex[:10]}"
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, default_responsible="9")

    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.ws.send_json({"type": "params", "params": {"office": f"office {mark}"}})
    await visitor.send_and_wait(f"My order {mark} is late", page_url=f"https://shop.example/p/1?utm_campaign={mark}")
    await visitor.ws.send_json({"type": "contacts", "name": f"Maria {mark}", "phone": "+79001112233",
                                "email": f"{mark.lower()}@example.com"})
    r = await stack.gateway.post(f"/api/visitor/attachments?token={visitor.token}", data=PNG,
                                 headers={"X-File-Name": f"receipt-{mark}.png", "Content-Type": "image/png"})
    assert r.status in (200, 201), await r.text()
    await visitor.send_and_wait("", attachment=(await r.json())["file_id"])
    cid = (await stack.conversation_client.checked("GET", "/internal/visitor/conversation", params={
        "project_id": "demo", "visitor_id": visitor.visitor_id}))["conversation_id"]

    assert (await stack.call("POST", f"/api/conversations/{cid}/take", owner)).status == 200
    r = await stack.call("POST", f"/api/conversations/{cid}/messages", owner, json={"text": f"Hello {mark}"})
    assert r.status == 200, await r.text()
    assert (await stack.call("POST", f"/api/conversations/{cid}/notes", owner, json={"text": f"VIP {mark}"})).status == 200
    r = await stack.call("POST", f"/api/conversations/{cid}/lead", owner)
    assert r.status == 200, await r.text()
    assert (await stack.call("POST", f"/api/conversations/{cid}/status", owner, json={"status": "closed"})).status == 200
    await visitor.wait_for(lambda: "closed" in visitor.kinds(), "the conversation closed")
    await visitor.ws.send_json({"type": "rate", "id": str(uuid.uuid4()), "conversation_id": cid, "rating": 4,
                                "comment": f"thanks {mark}"})

    # The readers that need it can read it: the visitor saw the reply, the CRM got the lead.
    assert f"Hello {mark}" in visitor.texts("operator_message")
    [delivery] = await wait_settled(bridge, 1)
    assert delivery["status"] == "delivered", delivery["last_error"]
    [(_, draft)] = bridge.crm.leads.values()
    assert mark in draft.comments and draft.phone == "+79001112233" and mark in (draft.name or "")

    # The owner's store has it (plain, until erased); everything it published has gone out.
    conversation_pool = stack.conversation.app[POOL]
    await eventually(lambda: conversation_pool.fetchval(
        "select count(*) from events where stream_id = $1 and type = 'chat.rated'", f"conversation-{cid}"),
        timeout=15, what="the rating stored")
    assert await conversation_pool.fetchval("select count(*) from events where data::text like '%' || $1 || '%'",
                                            mark) >= 8
    await eventually(lambda: published(conversation_pool), timeout=30, what="the relay to publish everything")
    await eventually(lambda: published(bridge.app[POOL]), timeout=30, what="crm-bridge's relay too")
    await asyncio.sleep(0.5)

    records = await every_record(platform.bootstrap)
    assert any(cid.encode() in r for r in records)                 # this conversation is on the bus...
    leaked = [r[:300] for r in records if mark.encode() in r or mark.lower().encode() in r]
    assert leaked == []                                           # ...and none of its personal data is
