"""Never lost, never doubled, in order: reconnects, resends, two gateways, edges."""
import asyncio
import dataclasses

import pytest
from aiohttp.test_utils import TestClient, TestServer

from parley.service import create_app

import gateway.__main__ as gateway_main
from gateway import project_config
from gateway.rate_limits import MESSAGES_PER_MINUTE_PER_VISITOR
from devstack.visitor_protocol import socket_protocols
from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD, settings


async def started_conversation(stack, text="Hello"):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, operator, _ = await stack.add_operator(owner, "Replying Rita")
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait(text)
    cid = (await (await stack.call("GET", "/api/inbox?view=new", operator)).json())["conversations"][0]["id"]
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", operator)).status == 200
    return visitor, operator, cid


async def test_replies_sent_while_the_visitor_is_offline_arrive_once_in_order_after_reconnect(stack):
    visitor, operator, cid = await started_conversation(stack)
    await visitor.wait_for(lambda: "operator_joined" in visitor.kinds(), "operator joined")
    await visitor.drop()
    for i in range(20):
        r = await stack.call("POST", f"/api/conversations/{cid}/messages", operator, json={"text": f"reply {i}"})
        assert r.status == 200
    await visitor.connect()  # resumes after the last seq it saw
    await visitor.wait_for(lambda: len(visitor.texts("operator_message")) == 20, "20 replies")
    await asyncio.sleep(0.5)  # a late duplicate from the live push would land now
    assert visitor.texts("operator_message") == [f"reply {i}" for i in range(20)]
    seqs = [e["seq"] for e in visitor.events]
    assert seqs == sorted(set(seqs))


async def test_a_message_resent_with_the_same_id_is_stored_once(stack):
    visitor, operator, cid = await started_conversation(stack)
    message_id = await visitor.send_and_wait("only once please")
    first_seq = visitor.view.answers.pop(message_id)["seq"]
    await visitor.drop()
    await visitor.connect()
    await visitor.send("only once please", message_id=message_id)  # e.g. after a reload, from the outbox
    await visitor.wait_for(lambda: message_id in visitor.acks, "the ack of the resend")
    assert visitor.acks[message_id] == first_seq
    transcript = await (await stack.call("GET", f"/api/conversations/{cid}", operator)).json()
    texts = [e["data"]["text"] for e in transcript["events"] if e["event"] == "chat.visitor_message_posted"]
    assert texts == ["Hello", "only once please"]


async def test_a_reload_starts_from_zero_and_gets_the_whole_history_once(stack):
    visitor, operator, cid = await started_conversation(stack)
    await stack.call("POST", f"/api/conversations/{cid}/messages", operator, json={"text": "answer"})
    await visitor.wait_for(lambda: "operator_message" in visitor.kinds(), "the answer")
    reloaded = ScriptedVisitor(stack.gateway, token=visitor.token)  # same token from localStorage
    await reloaded.start()
    await reloaded.wait_for(lambda: len(reloaded.events) == len(visitor.events), "history")
    assert [(e["seq"], e["kind"]) for e in reloaded.events] == [(e["seq"], e["kind"]) for e in visitor.events]
    assert reloaded.visitor_id == visitor.visitor_id


async def test_visitor_on_one_gateway_operator_on_another(stack, platform):
    second = TestClient(TestServer(create_app(dataclasses.replace(gateway_main.SPEC, schema="gw_second"),
                                              settings(platform, "gateway"))))
    await second.start_server()
    try:
        owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
        _, operator, _ = await stack.add_operator(owner, "Remote Rosa")
        visitor = ScriptedVisitor(stack.gateway)  # gateway A
        await visitor.start()
        await visitor.send_and_wait("Hi from A")
        ws = await second.ws_connect("/ws/operator", headers={"Authorization": f"Bearer {operator}"})  # gateway B
        assert (await ws.receive_json(timeout=10))["type"] == "hello"
        await asyncio.sleep(0.3)
        headers = {"Authorization": f"Bearer {operator}"}
        second.session.cookie_jar.clear()
        cid = (await (await second.get("/api/inbox?view=new", headers=headers)).json())["conversations"][0]["id"]
        assert (await second.post(f"/api/conversations/{cid}/take", headers=headers)).status == 200
        assert (await second.post(f"/api/conversations/{cid}/messages", headers=headers,
                                  json={"text": "Hello from B"})).status == 200
        await visitor.wait_for(lambda: "Hello from B" in visitor.texts("operator_message"), "B's reply on A")
        await visitor.send_and_wait("Got it on A")
        for _ in range(200):  # the operator on B sees A's message live
            msg = await ws.receive_json(timeout=10)
            if msg.get("event") == "chat.visitor_message_posted" and msg["data"]["text"] == "Got it on A":
                break
        await ws.close()
    finally:
        await second.close()


async def test_a_too_long_message_is_refused_with_a_code_and_nothing_accepted_is_lost(stack):
    visitor, operator, cid = await started_conversation(stack)
    bad = await visitor.send("x" * 4001)
    await visitor.wait_for(lambda: visitor.errors, "the refusal")
    assert visitor.errors[0]["id"] == bad and visitor.errors[0]["code"] == "text_too_long"
    await visitor.send_and_wait("a normal one")
    transcript = await (await stack.call("GET", f"/api/conversations/{cid}", operator)).json()
    texts = [e["data"]["text"] for e in transcript["events"] if e["event"] == "chat.visitor_message_posted"]
    assert texts == ["Hello", "a normal one"]


async def test_a_visitor_sending_too_fast_is_rate_limited(stack):
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    for i in range(MESSAGES_PER_MINUTE_PER_VISITOR + 1):
        await visitor.send(f"spam {i}")
    await visitor.wait_for(lambda: len(visitor.acks) + len(visitor.errors) == MESSAGES_PER_MINUTE_PER_VISITOR + 1,
                           "every answer")
    assert [e["code"] for e in visitor.errors] == ["rate_limited"]
    assert len(visitor.acks) == MESSAGES_PER_MINUTE_PER_VISITOR


async def test_a_visitor_socket_from_a_foreign_origin_is_refused(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await stack.call("PUT", "/api/project/sites", owner, json={"sites": ["https://shop.example"]})
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    import aiohttp
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await stack.gateway.ws_connect("/ws/visitor", protocols=socket_protocols(visitor.token), headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    ok = await stack.gateway.ws_connect("/ws/visitor", protocols=socket_protocols(visitor.token), headers={"Origin": "https://shop.example"})
    assert (await ok.receive_json(timeout=10))["type"] == "hello"
    await ok.close()


async def test_a_forged_visitor_token_is_refused(stack):
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    payload, signature = visitor.token.split(".")
    import aiohttp
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await stack.gateway.ws_connect("/ws/visitor", protocols=socket_protocols(f"{payload}.{signature[::-1]}"))
    assert refused.value.status == 401


async def test_disabled_chat_refuses_new_visitors_with_a_clear_code(stack, monkeypatch):
    # The gateway caches project settings for project_config.TTL_SECONDS (5 s): a fifth
    # of a second here, so the test waits out the cache without waiting 5 s.
    monkeypatch.setattr(project_config, "TTL_SECONDS", 0.2)
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await stack.call("POST", "/api/project/chat/disable", owner)
    await asyncio.sleep(0.3)
    r = await stack.gateway.post("/api/visitor/session", json={"project": "demo"})
    assert r.status == 409 and (await r.json())["error"]["code"] == "chat_disabled"


async def test_the_widget_routes_answer_cross_origin_requests_from_the_site(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await stack.call("PUT", "/api/project/sites", owner, json={"sites": ["https://shop.example"]})
    site = {"Origin": "https://shop.example"}
    preflight = await stack.gateway.options("/api/visitor/session", headers={
        **site, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    config = await stack.gateway.get("/api/widget/config?project=demo", headers=site)
    assert config.status == 200 and config.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    session = await stack.gateway.post("/api/visitor/session", json={"project": "demo"}, headers=site)
    assert session.status == 201 and session.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    # an operator route is not opened to other origins
    inbox = await stack.gateway.get("/api/inbox", headers=site)
    assert "Access-Control-Allow-Origin" not in inbox.headers
