"""Nothing a visitor can trigger grows without bound (issue 8, item 9): new visitor
sessions per address, sockets per visitor, params before the first message, files
uploaded and never sent."""
from __future__ import annotations


import aiohttp
import pytest

from gateway import files
from gateway.rate_limits import NEW_VISITORS_PER_MINUTE_PER_ADDRESS
from gateway.live.visitor_socket import MAX_SOCKETS_PER_VISITOR
from gateway.live.visitor_sockets import MAX_PENDING_PARAMS, VISITOR_SOCKETS
from parley.service import POOL
from devstack.visitor_protocol import socket_protocols, token_headers
from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually


async def new_session(stack, address: str, token: str | None = None):
    return await stack.gateway.post("/api/visitor/session", json={"project": "demo", "visitor_token": token},
                                    headers={"X-Forwarded-For": address})


async def test_new_visitor_sessions_are_limited_per_address(stack, monkeypatch):
    monkeypatch.setenv("PARLEY_TRUSTED_PROXY_HOPS", "1")  # the test client stands in for one proxy
    tokens = []
    for _ in range(NEW_VISITORS_PER_MINUTE_PER_ADDRESS):
        r = await new_session(stack, "203.0.113.5")
        assert r.status == 201
        tokens.append((await r.json())["visitor_token"])
    refused = await new_session(stack, "203.0.113.5")
    assert refused.status == 429 and (await refused.json())["error"]["code"] == "rate_limited"
    assert "Retry-After" in refused.headers
    # a visitor who already has a token keeps it; another address is not affected
    assert (await new_session(stack, "203.0.113.5", tokens[0])).status == 201
    assert (await new_session(stack, "198.51.100.7")).status == 201


async def test_open_sockets_per_visitor_are_capped(stack):
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    extra = []
    for _ in range(MAX_SOCKETS_PER_VISITOR - 1):
        extra.append(await stack.gateway.ws_connect("/ws/visitor", protocols=socket_protocols(visitor.token)))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await stack.gateway.ws_connect("/ws/visitor", protocols=socket_protocols(visitor.token))
    assert refused.value.status == 429
    await extra.pop().close()
    await eventually(lambda: len(stack.gateway.app[VISITOR_SOCKETS].by_visitor[visitor.visitor_id])
                     < MAX_SOCKETS_PER_VISITOR, what="the closed socket to be forgotten")
    again = await stack.gateway.ws_connect("/ws/visitor", protocols=socket_protocols(visitor.token))
    assert (await again.receive_json(timeout=10))["type"] == "hello"
    # another visitor is not affected
    other = ScriptedVisitor(stack.gateway)
    await other.start()


async def test_params_before_the_first_message_are_merged_not_queued(stack):
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    for i in range(2000):  # the same few names again and again: merged
        await visitor.ws.send_json({"type": "params", "params": {"product": f"v{i}", "office": "Moscow"}})
    for i in range(200):  # ever new names: refused beyond the bound
        await visitor.ws.send_json({"type": "params", "params": {f"k{i}": "x" * 200}})
    await visitor.ws.send_json({"type": "params", "params": {"huge": "x" * 60_000}})
    await eventually(lambda: sum(e["code"] == "params_too_many" for e in visitor.errors) >= 200 - (MAX_PENDING_PARAMS - 2),
                     what="refusals of the extra params", timeout=30)
    socket = next(iter(stack.gateway.app[VISITOR_SOCKETS].by_visitor[visitor.visitor_id]))
    assert len(socket.params) == MAX_PENDING_PARAMS
    assert socket.params["product"] == "v1999"
    await visitor.send_and_wait("Hello")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    inbox = await (await stack.call("GET", "/api/inbox?view=new", owner)).json()
    stored = inbox["conversations"][0]["custom_params"]
    assert stored["product"] == "v1999" and stored["office"] == "Moscow" and len(stored) == MAX_PENDING_PARAMS


async def test_unsent_uploads_have_a_quota_per_visitor_and_expire(stack):
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()

    async def upload(data: bytes):
        return await stack.gateway.post("/api/visitor/attachments", data=data,
                                        headers={**token_headers(visitor.token), "Content-Type": "application/octet-stream"})

    ids = []
    for i in range(files.UNATTACHED_PER_UPLOADER):
        r = await upload(f"note {i}\n".encode())
        assert r.status == 201, await r.text()
        ids.append((await r.json())["file_id"])
    over = await upload(b"one too many")
    assert over.status == 429 and (await over.json())["error"]["code"] == "upload_quota"

    # sending one frees a place
    await visitor.send_and_wait("", attachment=ids[0])
    assert (await upload(b"now it fits")).status == 201

    # a day later the unsent ones are gone, rows and bytes; the sent one stays
    pool = stack.gateway.app[POOL]
    await pool.execute("update files set created_at = now() - interval '25 hours'")
    deleted = await files.delete_expired(pool)
    assert deleted == files.UNATTACHED_PER_UPLOADER  # 19 old unsent + the one uploaded after sending
    left = await pool.fetch("select id, length(content) as size from files")
    assert [(r["id"], r["size"]) for r in left] == [(ids[0], len(b"note 0\n"))]
