"""A conversation with one marker in every personal field (parley/personal.py): page URL
and UTM, custom params, contacts, the visitor's message and attachment name, the
operator's reply and note, a lead request with all of them, and the rating comment -
through the real stack, as a visitor and an operator would leave them."""
from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition

from parley.config import REPO_ROOT
from parley.schemas import load_topics

from devstack.visitor_protocol import token_headers
from tests.visitor import ScriptedVisitor
from tests.support import eventually

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


async def pushes_flowing(stack, owner: str) -> None:
    """Until the gateway's live consumer pushes from Kafka: on a broker just started, it
    may take its "latest" position after the first events went out (a first test in a
    session); a reply repeated until one reaches a warm-up visitor's socket."""
    warm = ScriptedVisitor(stack.gateway)
    await warm.start()
    await warm.send_and_wait("warm-up")
    cid = (await stack.conversation_client.checked("GET", "/internal/visitor/conversation", params={
        "project_id": "demo", "visitor_id": warm.visitor_id}))["conversation_id"]
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", owner)).status == 200
    for attempt in range(20):
        r = await stack.call("POST", f"/api/conversations/{cid}/messages", owner, json={"text": f"ping {attempt}"})
        assert r.status == 200, await r.text()
        try:
            await warm.wait_for(lambda: warm.texts("operator_message"), "a pushed reply", timeout=2)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("the gateway pushed nothing from Kafka in 40 s")
    await stack.call("POST", f"/api/conversations/{cid}/status", owner, json={"status": "closed"})
    await warm.drop()


async def marked_conversation(stack, owner: str) -> tuple[str, str, ScriptedVisitor]:
    """(conversation id, marker, the visitor) once every field holds the marker and the
    conversation is closed and rated."""
    await pushes_flowing(stack, owner)
    mark = f"PII{uuid.uuid4().hex[:10]}"
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.ws.send_json({"type": "params", "params": {"office": f"office {mark}"}})
    await visitor.send_and_wait(f"My order {mark} is late", page_url=f"https://shop.example/p/1?utm_campaign={mark}")
    await visitor.ws.send_json({"type": "contacts", "name": f"Maria {mark}", "phone": "+79001112233",
                                "email": f"{mark.lower()}@example.com"})
    r = await stack.gateway.post("/api/visitor/attachments", data=PNG,
                                 headers={**token_headers(visitor.token), "X-File-Name": f"receipt-{mark}.png", "Content-Type": "image/png"})
    assert r.status in (200, 201), await r.text()
    await visitor.send_and_wait("", attachment=(await r.json())["file_id"])
    cid = (await stack.conversation_client.checked("GET", "/internal/visitor/conversation", params={
        "project_id": "demo", "visitor_id": visitor.visitor_id}))["conversation_id"]

    async def ok(method: str, path: str, body: dict | None = None) -> None:
        r = await stack.call(method, path, owner, json=body or {})
        assert r.status == 200, await r.text()
    await ok("POST", f"/api/conversations/{cid}/take")
    await ok("POST", f"/api/conversations/{cid}/messages", {"text": f"Hello {mark}"})
    await ok("POST", f"/api/conversations/{cid}/notes", {"text": f"VIP {mark}"})
    await ok("POST", f"/api/conversations/{cid}/lead")
    await ok("POST", f"/api/conversations/{cid}/status", {"status": "closed"})
    await visitor.wait_for(lambda: "closed" in visitor.kinds(), "the conversation closed")
    await visitor.ws.send_json({"type": "rate", "id": str(uuid.uuid4()), "conversation_id": cid, "rating": 4,
                                "comment": f"thanks {mark}"})
    await visitor.wait_for(lambda: "rated" in visitor.kinds(), "the rating stored")
    return cid, mark, visitor


async def published(pool) -> bool:
    """Every event of the schema is on Kafka (every shard's relay cursor at its last one)."""
    return await pool.fetchval("""select coalesce(bool_and(exists (select 1 from relay_cursors c
                                   where c.shard = e.shard and c.position >= e.last)), true)
                                  from (select shard, max(position) as last from events group by shard) e""")


async def all_published(pool) -> None:
    await eventually(lambda: published(pool), timeout=30, what="the relay to publish everything")


async def records(bootstrap: str, topics: list[str]) -> dict[TopicPartition, list]:
    """Every record of `topics`, from the beginning to the end they have now, by partition
    and in order (a plain consumer)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: dict[TopicPartition, list] = {tp: [] for tp in partitions}

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])
        while await behind():
            for tp, batch in (await consumer.getmany(timeout_ms=500, max_records=5000)).items():
                found[tp] += batch
        return found
    finally:
        await consumer.stop()


async def every_record(bootstrap: str) -> list[bytes]:
    """Every record of every Parley topic, from the beginning, as bytes."""
    topics = [t.name for t in load_topics(REPO_ROOT / "schemas" / "asyncapi.yaml")]
    return [(r.key or b"") + b"|" + (r.value or b"") + b"|" + b"".join(v for _, v in r.headers)
            for batch in (await records(bootstrap, topics)).values() for r in batch]
