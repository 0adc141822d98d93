"""Issue 13, items 3-4 through the stack (gateway, conversation service, real Kafka and
PostgreSQL): read receipts both ways and the inbox's unread count; CSAT asked once,
refused while open, for another visitor and a second time, and summarised for admins."""
from __future__ import annotations

import uuid

from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD


async def _row(stack, token: str, cid: str, view: str = "all") -> dict:
    r = await stack.call("GET", f"/api/inbox?view={view}", token)
    assert r.status == 200, await r.text()
    return next(c for c in (await r.json())["conversations"] if c["id"] == cid)


async def _events(stack, token: str, cid: str) -> list[dict]:
    r = await stack.call("GET", f"/api/conversations/{cid}", token)
    assert r.status == 200, await r.text()
    return (await r.json())["events"]


async def _conversation_id(stack, visitor: ScriptedVisitor) -> str:
    await visitor.wait_for(lambda: visitor.events, "the first event")
    r = await stack.conversation_client.checked("GET", "/internal/visitor/conversation", params={
        "project_id": "demo", "visitor_id": visitor.visitor_id})
    return r["conversation_id"]


async def test_reads_both_ways_clear_unread_and_show_as_read_and_seen(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait("Hello?")
    second = await visitor.send_and_wait("Is anyone there?")
    cid = await _conversation_id(stack, visitor)
    assert (await _row(stack, owner, cid, "new"))["unread"] == 2

    # An admin only previewing it in New reads nothing: the visitor is promised nothing (issue 19).
    r = await stack.call("POST", f"/api/conversations/{cid}/read", owner, json={"seq": 10_000})
    assert r.status == 200 and (await r.json())["events"] == []
    assert (await _row(stack, owner, cid, "new"))["unread"] == 2
    # Whoever takes it opens it: unread clears, and the visitor sees "Read".
    olga_id, olga, _ = await stack.add_operator(owner, "Olga")
    petr_id, petr, _ = await stack.add_operator(owner, "Petr")
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", olga, json={})).status == 200
    r = await stack.call("POST", f"/api/conversations/{cid}/read", olga, json={"seq": 10_000})
    assert r.status == 200, await r.text()
    [read] = [e for e in (await r.json())["events"] if e["event"] == "chat.read_by_operator"]
    assert read["data"]["seq"] == visitor.acks[second]          # clamped to the visitor's last message
    assert (await _row(stack, owner, cid))["unread"] == 0
    assert not [e for e in visitor.events if e["kind"] == "read" and e["read_seq"] < visitor.acks[second]]
    await visitor.wait_for(lambda: any(e["kind"] == "read" for e in visitor.events), "Read")
    [seen_read] = [e for e in visitor.events if e["kind"] == "read"]
    assert seen_read["read_seq"] == visitor.acks[second] and "operator" not in seen_read

    # Reading again appends nothing; a new message counts as unread until it is read.
    r = await stack.call("POST", f"/api/conversations/{cid}/read", owner, json={"seq": 10_000})
    assert [e for e in (await r.json())["events"]] == []
    third = await visitor.send_and_wait("Hello??")
    assert (await _row(stack, owner, cid))["unread"] == 1
    r = await stack.call("POST", f"/api/conversations/{cid}/read", owner, json={"seq": "all"})
    assert r.status == 422 and (await r.json())["error"]["code"] == "seq_invalid"
    r = await stack.call("POST", f"/api/conversations/{cid}/read", owner, json={"seq": visitor.acks[third]})
    assert (await _row(stack, owner, cid))["unread"] == 0

    # An operator who may not see it cannot mark it read.
    r = await stack.call("POST", f"/api/conversations/{cid}/read", petr, json={"seq": 1})
    assert r.status == 404

    # The visitor's widget shows Olga's reply and says so: the operator sees "Seen".
    r = await stack.call("POST", f"/api/conversations/{cid}/messages", olga, json={"text": "Yes, Olga here."})
    reply_seq = next(e["seq"] for e in (await r.json())["events"] if e["event"] == "chat.operator_replied")
    await visitor.wait_for(lambda: visitor.last_seq >= reply_seq, "Olga's reply")
    for _ in range(3):   # the widget may repeat itself: one event
        await visitor.ws.send_json({"type": "read", "seq": visitor.last_seq})
    await visitor.ws.send_json({"type": "read", "seq": "x"})
    await visitor.wait_for(lambda: any(e["code"] == "seq_invalid" for e in visitor.errors), "seq_invalid")
    events = await _events(stack, olga, cid)
    seen = [e for e in events if e["event"] == "chat.read_by_visitor"]
    assert [e["data"]["seq"] for e in seen] == [reply_seq]
    assert not [e for e in events if e["event"] == "chat.read_by_visitor" and e["seq"] < reply_seq]
    await visitor.drop()


async def test_a_closed_conversation_is_rated_once_and_summarised_for_admins(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    olga_id, olga, _ = await stack.add_operator(owner, "Olga")
    visitor, intruder = ScriptedVisitor(stack.gateway), ScriptedVisitor(stack.gateway)
    await visitor.start()
    await intruder.start()
    await visitor.send_and_wait("Do you deliver to Kazan?")
    cid = await _conversation_id(stack, visitor)
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", olga, json={})).status == 200

    async def rate(who: ScriptedVisitor, rating, comment=None, rating_id=None) -> dict:
        rating_id = rating_id or str(uuid.uuid4())
        await who.ws.send_json({"type": "rate", "id": rating_id, "conversation_id": cid, "rating": rating,
                                "comment": comment})
        await who.wait_for(lambda: any(f.get("id") == rating_id and f["type"] in ("rated", "error")
                                       for f in who.frames), "the answer to a rating")
        return [f for f in who.frames if f.get("id") == rating_id][-1]

    assert (await rate(visitor, 5))["code"] == "not_closed"          # asked only once it is closed
    r = await stack.call("POST", f"/api/conversations/{cid}/status", olga, json={"status": "closed"})
    assert r.status == 200
    assert (await rate(visitor, 9))["code"] == "rating_invalid"
    assert (await rate(intruder, 1, "I was not there"))["code"] == "not_found"   # someone else's conversation
    first = str(uuid.uuid4())
    answer = await rate(visitor, 4, "Quick, thank you", rating_id=first)
    assert answer == {"type": "rated", "id": first, "conversation_id": cid}
    again = await rate(visitor, 1, "changed my mind")
    assert again["type"] == "error" and again["code"] == "already_rated"
    visitor.frames.clear()
    assert (await rate(visitor, 4, "Quick, thank you", rating_id=first))["type"] == "rated"   # a resend: same answer

    # The visitor's own widget learns it was rated (a reload does not ask again); operators see it.
    await visitor.wait_for(lambda: any(e["kind"] == "rated" for e in visitor.events), "rated")
    rated = [e for e in await _events(stack, owner, cid) if e["event"] == "chat.rated"]
    assert [(e["data"]["rating"], e["data"]["comment"], e["data"]["operator_id"]) for e in rated] == [
        (4, "Quick, thank you", olga_id)]

    r = await stack.call("GET", "/api/ratings?weeks=4", owner)
    assert r.status == 200, await r.text()
    summary = await r.json()
    assert [(o["operator_name"], o["ratings"], o["average"]) for o in summary["by_operator"]] == [("Olga", 1, 4.0)]
    assert [(w["operator_name"], w["ratings"]) for w in summary["by_week"]] == [("Olga", 1)]
    assert summary["recent"][0]["comment"] == "Quick, thank you"
    assert (await stack.call("GET", "/api/ratings", olga)).status == 403     # admins only
    assert (await stack.call("GET", "/api/ratings?weeks=0", owner)).status == 422
    await visitor.drop()
    await intruder.drop()
