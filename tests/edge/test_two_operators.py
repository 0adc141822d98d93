"""Issue 8, item 3: one operator's session never answers for another.

Before, the gateway's shared aiohttp session kept the default cookie jar. Reached by a
host name (as compose and k8s reach the services), the jar stored the registry's
Set-Cookie of the latest login and sent it in place of the next caller's cookie:
operator A's cookie answered as operator B. The test stack reaches every service by
the host name `localhost`, as deployments do; two operators with their own cookie
jars interleave requests through one gateway, and every answer names its own caller."""
from __future__ import annotations

import asyncio

from aiohttp import DummyCookieJar

from gateway import upstreams
from tests.edge.conftest import cookie_login, cookie_of, take_new_conversation


async def test_the_gateway_keeps_no_cookies_for_its_upstreams(stack):
    for key in (upstreams.REGISTRY, upstreams.CONVERSATION):
        client = stack.gateway.app[key]
        assert client.base_url.startswith("http://localhost:"), client.base_url  # a host name, as deployed
        assert isinstance(client.session.cookie_jar, DummyCookieJar)


async def test_two_operators_stay_themselves_through_one_gateway(stack, cast, browser_client):
    anna, boris = await browser_client(), await browser_client()
    me_a = (await cookie_login(anna, cast.a_email, cast.password))["operator"]
    me_b = (await cookie_login(boris, cast.b_email, cast.password))["operator"]
    assert (me_a["id"], me_b["id"]) == (cast.a_id, cast.b_id)
    assert cookie_of(anna) and cookie_of(boris) and cookie_of(anna) != cookie_of(boris)
    a_cid, a_visitor = await take_new_conversation(stack, cast.a, "A question for Anna")
    try:
        async def whoami(client) -> str:
            r = await client.get("/api/session")
            assert r.status == 200, await r.text()
            return (await r.json())["id"]

        async def mine(client) -> set[str]:
            r = await client.get("/api/inbox", params={"view": "mine"})
            assert r.status == 200, await r.text()
            return {c["id"] for c in (await r.json())["conversations"]}

        async def reply(client, cid: str, text: str) -> dict:
            r = await client.post(f"/api/conversations/{cid}/messages", json={"text": text})
            assert r.status == 200, await r.text()
            data = (await r.json())["events"][0]["data"]
            return {"id": data["operator_id"], "name": data["operator_name"]}

        for round_ in range(6):
            # one after the other, alternating...
            assert await whoami(anna) == cast.a_id
            assert await whoami(boris) == cast.b_id
            assert await mine(anna) == {a_cid}
            assert await mine(boris) == {cast.cid}
            assert (await reply(anna, a_cid, f"Anna {round_}"))["id"] == cast.a_id
            assert (await reply(boris, cast.cid, f"Boris {round_}"))["id"] == cast.b_id
            # ...and at the same time
            a_id, b_id, a_mine, b_mine, by_a, by_b = await asyncio.gather(
                whoami(anna), whoami(boris), mine(anna), mine(boris),
                reply(anna, a_cid, f"Anna again {round_}"), reply(boris, cast.cid, f"Boris again {round_}"))
            assert (a_id, b_id, a_mine, b_mine) == (cast.a_id, cast.b_id, {a_cid}, {cast.cid})
            assert (by_a["id"], by_a["name"], by_b["id"], by_b["name"]) == (
                cast.a_id, "Anna Attacker", cast.b_id, "Boris Busy")
        # Neither reached the other's conversation.
        r = await anna.get(f"/api/conversations/{cast.cid}")
        assert r.status == 404
        r = await boris.get(f"/api/conversations/{a_cid}")
        assert r.status == 404
    finally:
        await a_visitor.drop()


def test_every_service_client_is_made_without_a_cookie_jar():
    """Clients between services come from parley.service_client.new_session (DummyCookieJar);
    an aiohttp ClientSession made anywhere else would get the default jar back."""
    from parley.config import REPO_ROOT
    made = [f"{p.relative_to(REPO_ROOT)}:{n}" for folder in ("parley", "services") for p in (REPO_ROOT / folder).rglob("*.py")
            for n, line in enumerate(p.read_text().splitlines(), 1) if "ClientSession(" in line]
    # The one other place: calls to a third party's CRM (not signed, also without a jar).
    third_party = "services/crm-bridge/crm_bridge/outbound.py"
    assert all(m.startswith(("parley/service_client.py:", third_party + ":")) for m in made), made
    for m in made:
        file, line = m.rsplit(":", 1)
        assert "DummyCookieJar()" in (REPO_ROOT / file).read_text().splitlines()[int(line) - 1], m
