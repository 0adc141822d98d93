"""Issue 23, finding 7: bearer tokens travelled in URLs (`?token=` on /ws/visitor,
/files/{id} and /ws/operator), and so landed in every proxy's access log. A token in a
URL now opens nothing; the header (or, for the widget's socket, the subprotocol) does."""
from __future__ import annotations

import aiohttp
import pytest

from devstack.visitor_protocol import socket_protocols, token_headers
from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

PDF = b"%PDF-1.4 the visitor's own file"


async def test_a_token_in_a_url_opens_nothing(stack, bearer_client):
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    for url in (f"/ws/visitor?token={visitor.token}", f"/ws/operator?token={owner}"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await bearer_client.ws_connect(url)   # (a client with no cookie)
        assert refused.value.status == 401, url
    r = await stack.gateway.post(f"/api/visitor/attachments?token={visitor.token}", data=PDF)
    assert r.status == 401 and (await r.json())["error"]["code"] == "visitor_token_invalid"

    r = await stack.gateway.post("/api/visitor/attachments", data=PDF, headers=token_headers(visitor.token))
    assert r.status == 201, await r.text()
    url = (await r.json())["url"]
    assert (await stack.gateway.get(f"{url}?token={visitor.token}")).status == 404
    r = await stack.gateway.get(url, headers=token_headers(visitor.token))
    assert r.status == 200 and await r.read() == PDF

    # The ways that work, and the subprotocol the widget's socket is answered with.
    ws = await stack.gateway.ws_connect("/ws/visitor", protocols=socket_protocols(visitor.token))
    assert ws.protocol == "parley.v1" and (await ws.receive_json(timeout=10))["type"] == "hello"
    await ws.close()
    ws = await bearer_client.ws_connect("/ws/operator", headers={"Authorization": f"Bearer {owner}"})
    assert (await ws.receive_json(timeout=10))["type"] == "hello"
    await ws.close()
    await visitor.drop()


async def test_the_widgets_cross_site_calls_may_send_the_token_header(stack):
    """The widget runs on the site's pages, another origin: the preflight must allow the header."""
    r = await stack.gateway.options("/api/visitor/attachments", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-parley-visitor-token, x-file-name"})
    assert r.status == 204
    assert "X-Parley-Visitor-Token" in r.headers["Access-Control-Allow-Headers"]
