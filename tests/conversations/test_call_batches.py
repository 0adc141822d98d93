"""The batched hop (parley.call_batches, issue 21): commands sent to the conversation
service meanwhile travel in one signed request, and each is answered as it would be
alone - its own refusal, its own place in admission, its own 500 - while what the
others carry is stored once. Hostile calls inside a batch (not an object, a NUL, a path
that is not a command, `../`) fail only themselves."""
from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY

from parley import call_batches, internal_auth
from parley.admission import ADMISSION, Admission
from parley.http import Rejected, errors_middleware, ok, read_json
from parley.service_client import ServiceClient, new_session, path

from tests.conversations.test_hostile_input import PROJECT, call
from tests.conversations.test_kept_state import visitor_call

MESSAGES = path("internal", "visitor", "messages")


def message(visitor_id: str, message_id: str = "m1", **more) -> dict:
    return {"project_id": PROJECT, "visitor_id": visitor_id, "message_id": message_id, "text": f"hi from {visitor_id}",
            "after": 0, **more}


def batch_requests() -> float:
    return REGISTRY.get_sample_value("parley_http_requests_total", {"route": call_batches.BATCH_PATH, "status": "200"}) or 0


async def stored_texts(stack, visitor_id: str) -> list[str]:
    found = await call(stack, "GET", path("internal", "visitor", "conversation"),
                       params={"project_id": PROJECT, "visitor_id": visitor_id})
    cid = found.body["conversation_id"]
    if cid is None:
        return []
    events = await call(stack, "GET", path("internal", "conversations", cid, "events"))
    return [e["data"]["text"] for e in events.body["events"] if e["type"] == "chat.visitor_message_posted"]


async def raw_batch(stack, calls) -> list[dict]:
    answer = await call(stack, "POST", path("internal", "batch"), json={"calls": calls})
    assert answer.status == 200, answer.raw
    return answer.body["answers"]


async def test_commands_sent_meanwhile_go_in_one_request_and_each_gets_its_own_answer(stack):
    client = stack.conversation_client
    visitors = [f"batched-{uuid.uuid4().hex[:8]}" for _ in range(40)]
    before = batch_requests()
    outcomes = await asyncio.gather(*(client.command(MESSAGES, message(v)) for v in visitors),
                                    client.command(MESSAGES, message("no-id", message_id=None)),
                                    client.command(MESSAGES, message("too-long", text="x" * 5000)),
                                    return_exceptions=True)
    # All 42 were queued before the first went: one request carried them.
    assert batch_requests() - before == 1
    *answers, no_id, too_long = outcomes
    assert isinstance(no_id, Rejected) and (no_id.status, no_id.code) == (422, "message_id_required")
    assert isinstance(too_long, Rejected) and (too_long.status, too_long.code) == (413, "text_too_long")
    for visitor_id, answer in zip(visitors, answers):
        assert not isinstance(answer, Exception), answer
        # seq 1 started the conversation; the answer carries both events for the socket
        assert answer["seq"] == 2 and [e["type"] for e in answer["events"]] == [
            "chat.conversation_started", "chat.visitor_message_posted"]
        assert await stored_texts(stack, visitor_id) == [f"hi from {visitor_id}"]
    assert await stored_texts(stack, "too-long") == []
    assert client.in_flight == 0

    # The same commands again (a resend after a lost answer): first outcomes, nothing doubled.
    again = await asyncio.gather(*(client.command(MESSAGES, message(v)) for v in visitors[:10]))
    assert [a["seq"] for a in again] == [2] * 10
    for v in visitors[:10]:
        assert await stored_texts(stack, v) == [f"hi from {v}"]


async def test_hostile_calls_in_a_batch_fail_only_themselves(stack):
    visitor_id = f"hostile-{uuid.uuid4().hex[:8]}"

    async def boom(app, body):
        raise RuntimeError("a bug in one handler")

    stack.conversation.app[call_batches.COMMANDS]["/test/boom"] = boom
    answers = await raw_batch(stack, [
        {"path": "/internal/visitor/messages", "body": message(visitor_id)},
        {"path": "/internal/visitor/messages", "body": [message(visitor_id, "m2")]},
        {"path": "/internal/visitor/messages", "body": message(visitor_id, "m3", text="nul \x00 inside")},
        {"path": "/internal/visitor/conversation", "body": {}},     # a read, not a command
        {"path": "/internal/visitor/%2e%2e/messages", "body": message(visitor_id, "m4")},
        {"path": "/internal/visitor/../visitor/messages", "body": message(visitor_id, "m5")},
        {"path": 42, "body": message(visitor_id, "m6")},
        {"path": "/test/boom", "body": {}},
        {"path": "/internal/visitor/messages", "body": message(visitor_id, "m7", text="after the others")},
    ])
    codes = [(a["status"], a.get("error", {}).get("code")) for a in answers]
    assert codes == [(200, None), (400, "invalid_json"), (422, "nul_character"), (404, "not_batchable"),
                     (404, "not_batchable"), (404, "not_batchable"), (404, "not_batchable"),
                     (500, "internal_error"), (200, None)]
    assert all(a["error"]["message"] for a in answers if a["status"] != 200)
    assert sorted(await stored_texts(stack, visitor_id)) == ["after the others", f"hi from {visitor_id}"]


@pytest.mark.parametrize("body", [{"calls": "not a list"}, {"calls": []}, {"calls": [1, 2]}, {"nothing": True},
                                  {"calls": [{"path": MESSAGES, "body": {}}] * (call_batches.MAX_CALLS + 1)}])
async def test_a_malformed_batch_is_refused_whole_and_stores_nothing(stack, body):
    answer = await call(stack, "POST", path("internal", "batch"), json=body)
    assert answer.status == 400 and answer.body["error"]["code"] == "batch_invalid", answer.raw


async def test_an_unsigned_batch_is_refused(stack):
    r = await stack.conversation.post(call_batches.BATCH_PATH, json={"calls": [{"path": MESSAGES,
                                                                                "body": message("unsigned")}]})
    assert r.status == 401
    assert await stored_texts(stack, "unsigned") == []


async def test_each_call_of_a_batch_takes_its_own_place_in_admission(stack):
    client = stack.conversation_client
    admission: Admission = stack.conversation.app[ADMISSION]
    visitors = [f"admitted-{uuid.uuid4().hex[:8]}" for _ in range(10)]
    admission.limit, admission.queue, admission.wait = 3, 0, 0
    try:
        outcomes = await asyncio.gather(*(client.command(MESSAGES, message(v)) for v in visitors),
                                        return_exceptions=True)
    finally:
        admission.limit, admission.queue, admission.wait = Admission().limit, Admission().queue, Admission().wait
    refused = [v for v, o in zip(visitors, outcomes) if isinstance(o, Rejected)]
    assert len(refused) == 7, outcomes   # one batch of ten, three places
    assert all(o.code == "busy" and o.headers["Retry-After"] for o in outcomes if isinstance(o, Rejected))
    for v in refused:
        assert await stored_texts(stack, v) == []     # refused: nothing stored
    resent = await asyncio.gather(*(client.command(MESSAGES, message(v)) for v in refused))
    assert [a["seq"] for a in resent] == [2] * 7
    for v in visitors:
        assert await stored_texts(stack, v) == [f"hi from {v}"]
    assert admission.in_flight == 0


async def test_the_other_calls_of_a_visitor_are_batchable_too(stack):
    """Every visitor command the gateway sends goes this way: params, contacts, read, rating."""
    visitor_id = f"other-{uuid.uuid4().hex[:8]}"
    first = await visitor_call(stack, "messages", visitor_id, message_id="m1", text="hello")
    answers = await raw_batch(stack, [
        {"path": "/internal/visitor/params", "body": {"project_id": PROJECT, "visitor_id": visitor_id,
                                                      "params": {"plan": "pro"}}},
        {"path": "/internal/visitor/contacts", "body": {"project_id": PROJECT, "visitor_id": visitor_id,
                                                        "name": "Ann", "email": "ann@example.com"}},
        {"path": "/internal/visitor/read", "body": {"project_id": PROJECT, "visitor_id": visitor_id,
                                                    "conversation_id": first["conversation_id"], "seq": 1}},
        {"path": "/internal/visitor/rating", "body": {"project_id": PROJECT, "visitor_id": visitor_id,
                                                      "conversation_id": first["conversation_id"], "rating": 5,
                                                      "rating_id": "r1"}},
    ])
    assert [a["status"] for a in answers[:3]] == [200, 200, 200], answers
    assert all(a["body"]["conversation_id"] == first["conversation_id"] for a in answers[:3])
    # A rating before the conversation is closed is the domain's refusal, as over its own route.
    alone = await call(stack, "POST", path("internal", "visitor", "rating"), json={
        "project_id": PROJECT, "visitor_id": visitor_id, "conversation_id": first["conversation_id"], "rating": 5,
        "rating_id": "r1"})
    assert answers[3]["status"] == alone.status and answers[3]["error"]["code"] == alone.body["error"]["code"]


# ---- the caller's side against callees that are not this version ------------------------

async def serving(app: web.Application):
    server = TestServer(app)
    await server.start_server()
    return server


async def test_a_callee_of_an_older_version_gets_each_call_alone(monkeypatch):
    """During a rolling update a new gateway may meet a conversation service without the
    batch route: its 404 makes the calls go one by one, each answered."""
    monkeypatch.setenv("PARLEY_INTERNAL_SECRET", "a-secret-for-this-test-only-0123456789")
    seen: list[dict] = []

    async def messages(request: web.Request) -> web.Response:
        body = await read_json(request)
        seen.append(body)
        if body.get("message_id") is None:
            raise Rejected(422, "message_id_required", "Every message carries the widget's id for it.")
        return ok({"seq": len(seen)})

    old = web.Application(middlewares=[errors_middleware, internal_auth.require_signed_calls()])
    old.router.add_post("/internal/visitor/messages", messages)
    server = await serving(old)
    client = ServiceClient("conversation", f"http://localhost:{server.port}", new_session(), internal_auth.secret())
    try:
        outcomes = await asyncio.gather(client.command(MESSAGES, {"message_id": "a"}),
                                        client.command(MESSAGES, {"message_id": None}),
                                        client.command(MESSAGES, {"message_id": "b"}), return_exceptions=True)
    finally:
        await client.session.close()
        await server.close()
    assert isinstance(outcomes[0], dict) and isinstance(outcomes[2], dict), outcomes
    assert isinstance(outcomes[1], Rejected) and outcomes[1].code == "message_id_required"
    assert sorted(b["message_id"] or "" for b in seen) == ["", "a", "b"]   # each sent once, alone


async def test_a_callee_that_does_not_answer_fails_every_call_with_try_again(monkeypatch):
    monkeypatch.setenv("PARLEY_INTERNAL_SECRET", "a-secret-for-this-test-only-0123456789")
    server = await serving(web.Application())
    port = server.port
    await server.close()          # nothing listens there now
    client = ServiceClient("conversation", f"http://localhost:{port}", new_session(), internal_auth.secret())
    try:
        outcomes = await asyncio.gather(*(client.command(MESSAGES, {"message_id": str(i)}) for i in range(5)),
                                        return_exceptions=True)
    finally:
        await client.session.close()
    assert all(isinstance(o, Rejected) and (o.status, o.code) == (503, "service_unavailable")
               and o.headers["Retry-After"] for o in outcomes), outcomes
    assert client.in_flight == 0


async def test_a_call_too_large_for_a_batch_is_refused_before_it_travels(stack):
    with pytest.raises(Rejected) as refused:
        await stack.conversation_client.command(MESSAGES, message("huge", text="x" * (1024 * 1024)))
    assert refused.value.status == 413
    assert stack.conversation_client.in_flight == 0
