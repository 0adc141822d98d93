"""Overload degrades gracefully (issue 12, item 5): a service process runs a bounded
number of commands at once; beyond that, and a short bounded wait, a command is answered
at once with `busy` (503 + Retry-After over HTTP, an error frame with retry_after on the
visitor socket), nothing of it is stored, and the message sent again is stored once.

The bounds are tightened on the running conversation service (its Admission object), so
that a flood a test can make in-process is beyond them."""
from __future__ import annotations

import asyncio

from gateway.upstreams import CONVERSATION
from parley.admission import ADMISSION, Admission
from parley.service_client import MAX_IN_FLIGHT, path
from devstack.visitor_protocol import RETRYABLE
from tests.visitor import ScriptedVisitor, send_reliably
from tests.overload.conftest import started_visitor


async def conversation_of(stack, visitor: ScriptedVisitor) -> str | None:
    body = await stack.conversation_client.checked("GET", path("internal", "visitor", "conversation"),
                                                   params={"project_id": "demo", "visitor_id": visitor.visitor_id})
    return body.get("conversation_id")


async def stored_message_ids(stack, conversation_id: str) -> list[str]:
    body = await stack.conversation_client.checked("GET", path("internal", "conversations", conversation_id, "events"))
    return [e["data"]["message_id"] for e in body["events"]
            if e["type"] in ("chat.visitor_message_posted", "chat.operator_replied")]


def answer_to(visitor: ScriptedVisitor, message_id: str) -> dict | None:
    if message_id in visitor.acks:
        return {"type": "ack", "seq": visitor.acks[message_id]}
    return next((e for e in visitor.errors if e.get("id") == message_id), None)


async def test_a_full_service_says_busy_at_once_over_http_and_the_socket_and_stores_nothing(stack, owner_token):
    admission: Admission = stack.conversation.app[ADMISSION]
    visitor = await started_visitor(stack)
    await visitor.send_and_wait("Hello, is anyone there?")
    cid = await conversation_of(stack, visitor)
    r = await stack.call("POST", f"/api/conversations/{cid}/take", owner_token)
    assert r.status == 200, await r.text()

    admission.limit, admission.queue = 0, 0   # full: every command is beyond the bound
    refused_id = await visitor.send("Sent while Parley is busy")
    await visitor.wait_for(lambda: answer_to(visitor, refused_id) is not None, "an answer to the refused message")
    frame = answer_to(visitor, refused_id)
    assert frame["type"] == "error" and frame["code"] == "busy", frame
    assert frame["retry_after"] >= 1 and frame["message"]

    r = await stack.call("POST", f"/api/conversations/{cid}/messages", owner_token,
                         json={"text": "An answer while busy"}, headers={"Idempotency-Key": "reply-while-busy-1"})
    assert r.status == 503, await r.text()
    assert (await r.json())["error"]["code"] == "busy"
    assert int(r.headers["Retry-After"]) >= 1
    assert refused_id not in await stored_message_ids(stack, cid)   # refused: never stored
    assert admission.refused >= 2

    admission.limit, admission.queue = Admission().limit, Admission().queue
    seq = await send_reliably(visitor, "Sent while Parley is busy", refused_id)
    r = await stack.call("POST", f"/api/conversations/{cid}/messages", owner_token,
                         json={"text": "An answer while busy"}, headers={"Idempotency-Key": "reply-while-busy-1"})
    assert r.status == 200, await r.text()
    stored = await stored_message_ids(stack, cid)
    assert stored.count(refused_id) == 1 and seq > 0
    assert admission.in_flight == 0


async def test_a_flood_beyond_the_bound_gets_fast_busy_answers_never_timeouts_and_nothing_doubles(
        stack, no_rate_limits):
    visitors = [await started_visitor(stack) for _ in range(40)]
    for visitor in visitors:   # each has its conversation: the flood is messages, not starts
        await visitor.send_and_wait("Hello")
    admission: Admission = stack.conversation.app[ADMISSION]
    admission.limit, admission.queue, admission.wait = 2, 4, 0.05

    sent: dict[str, tuple[ScriptedVisitor, str]] = {}
    for round_ in range(3):
        ids = await asyncio.gather(*(v.send(f"Flood {round_} from {i}") for i, v in enumerate(visitors)))
        for i, (visitor, message_id) in enumerate(zip(visitors, ids)):
            sent[message_id] = (visitor, f"Flood {round_} from {i}")
        for message_id, (visitor, _) in sent.items():   # every send answered: an ack or busy, never silence
            await visitor.wait_for(lambda: answer_to(visitor, message_id) is not None, f"an answer to {message_id}")

    answers = {message_id: answer_to(visitor, message_id) for message_id, (visitor, _) in sent.items()}
    busy = [m for m, a in answers.items() if a["type"] == "error"]
    acked = [m for m, a in answers.items() if a["type"] == "ack"]
    codes = {answers[m]["code"] for m in busy}
    assert codes <= {"busy"}, f"only busy, never a timeout or another refusal: {codes}"
    assert busy, "a flood of 40 at once beyond 2 in flight and 4 waiting gets busy answers"
    assert acked, "and what was admitted was stored and acknowledged"
    assert all(answers[m]["retry_after"] >= 1 for m in busy)

    # Nothing refused was stored; everything acknowledged was stored once.
    for visitor in visitors:
        cid = await conversation_of(stack, visitor)
        stored = await stored_message_ids(stack, cid)
        mine = [m for m, (v, _) in sent.items() if v is visitor]
        for message_id in mine:
            assert stored.count(message_id) == (1 if message_id in acked else 0), (message_id, answers[message_id])

    # The widget sends the refused ones again (same id) until acknowledged: all stored, once.
    admission.limit, admission.queue, admission.wait = 4, 8, 0.05
    for visitor in visitors:   # one at a time per visitor, in order, as the widget does
        for message_id in [m for m in busy if sent[m][0] is visitor]:
            await send_reliably(visitor, sent[message_id][1], message_id)
    for visitor in visitors:
        stored = await stored_message_ids(stack, await conversation_of(stack, visitor))
        assert all(stored.count(m) == 1 for m, (v, _) in sent.items() if v is visitor)
        assert not [e for e in visitor.errors if e["code"] not in RETRYABLE]
    assert admission.in_flight == 0


async def test_the_gateway_refuses_busy_itself_when_its_calls_to_the_conversation_service_are_at_the_bound(stack):
    """The gateway's bulkhead (parley.service_client): beyond its bound a message is
    refused by the gateway itself - the conversation service never sees it - and the
    resend after the bound frees up is stored once."""
    client = stack.gateway.app[CONVERSATION]
    visitor = await started_visitor(stack)
    await visitor.send_and_wait("Hello")
    cid = await conversation_of(stack, visitor)
    seen_by_service = stack.conversation.app[ADMISSION].refused

    client.max_in_flight = 0   # every place taken
    try:
        refused_id = await visitor.send("Sent while the gateway's calls are at the bound")
        await visitor.wait_for(lambda: answer_to(visitor, refused_id) is not None, "an answer to the refused message")
    finally:
        client.max_in_flight = MAX_IN_FLIGHT
    frame = answer_to(visitor, refused_id)
    assert frame["type"] == "error" and frame["code"] == "busy" and frame["retry_after"] >= 1, frame
    assert refused_id not in await stored_message_ids(stack, cid)
    assert stack.conversation.app[ADMISSION].refused == seen_by_service   # refused before the hop

    await send_reliably(visitor, "Sent while the gateway's calls are at the bound", refused_id)
    assert (await stored_message_ids(stack, cid)).count(refused_id) == 1
    assert client.in_flight == 0
