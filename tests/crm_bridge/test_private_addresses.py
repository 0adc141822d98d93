"""An admin cannot point Parley's CRM handoff at an internal address unless the
operator of the installation allows it (PARLEY_CRM_ALLOW_PRIVATE=1), end to end
through the gateway's `PUT /api/project/crm`: loopback, private, link-local (the cloud
metadata address), IPv6 loopback and `localhost` are refused with a 422 naming the
field and the reason, and nothing is stored; with the flag the same URLs are accepted.

A name resolving to a refused address is refused when the settings are saved, and -
since a name can point elsewhere later - again before every call and at connect time:
"Test connection" says why and a lead request fails for good without a byte reaching
the address.

(tests/crm/test_outbound_guard.py checks the guard itself, address by address;
test_handoff.py's settings test the other validation of the same PUT.)"""
from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from parley.service import POOL

from crm_bridge import deliveries, outbound, standin
from tests.crm_bridge.test_handoff import (OWNER_EMAIL, OWNER_PASSWORD, conversation_with_operator, request_lead,
                                          wait_settled)

TOKEN = "amo-token-" + "t" * 20
HOOK_SECRET = "hook-secret-" + "s" * 20
STANDIN_SECRET = "standinWebhookKey"

# (kind, the URL field, the URL, a word the refusal must give as the reason)
REFUSED = [
    ("bitrix24", "webhook_url", "https://127.0.0.1/rest/1/abcdef/", "loopback"),
    ("bitrix24", "webhook_url", "https://10.20.30.40/rest/1/abcdef/", "private"),
    ("bitrix24", "webhook_url", "https://169.254.169.254/rest/1/abcdef/", "link-local"),
    ("bitrix24", "webhook_url", "https://[::1]:8443/rest/1/abcdef/", "loopback"),
    ("bitrix24", "webhook_url", "https://localhost/rest/1/abcdef/", "loopback"),
    ("webhook", "url", "https://127.0.0.1:8083/api/project/crm", "loopback"),
    ("webhook", "url", "https://10.0.0.5/hook", "private"),
    ("webhook", "url", "https://169.254.169.254/latest/meta-data/", "link-local"),
    ("webhook", "url", "https://[::1]/hook", "loopback"),
    ("webhook", "url", "https://localhost:8080/hook", "loopback"),
    ("amocrm", "base_url", "https://127.0.0.1", "loopback"),
    ("amocrm", "base_url", "https://10.1.2.3", "private"),
    ("amocrm", "base_url", "https://169.254.169.254", "link-local"),
    ("amocrm", "base_url", "https://[::1]", "loopback"),
    ("amocrm", "base_url", "https://localhost", "loopback"),
    ("amocrm", "base_url", "https://[::ffff:127.0.0.1]", "loopback"),   # IPv4-mapped IPv6
    ("webhook", "url", "http://hooks.example/plain", "https"),            # plain http to a public name
]


def body_for(kind: str, field: str, url: str) -> dict:
    extra = {"webhook": {"secret": HOOK_SECRET}, "amocrm": {"token": TOKEN}}.get(kind, {})
    return {"kind": kind, field: url, **extra}


@pytest.fixture
def strict(monkeypatch):
    """The installation has not allowed private addresses (whatever the shell running the tests says)."""
    monkeypatch.delenv(outbound.FLAG, raising=False)


async def test_private_crm_urls_are_refused_without_the_flag_and_nothing_is_stored(crm_stack, strict,
                                                                                    monkeypatch):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await stack.call("PUT", "/api/project/crm", owner,
                         json={"kind": "webhook", "url": "https://hooks.example/parley", "secret": HOOK_SECRET,
                               "source_name": "Parley chat"})
    assert r.status == 200, await r.text()
    before = await (await stack.call("GET", "/api/project/crm", owner)).json()
    stored_before = await bridge.app[POOL].fetchrow("select * from crm_settings where project_id = 'demo'")

    for kind, field, url, why in REFUSED:
        r = await stack.call("PUT", "/api/project/crm", owner, json=body_for(kind, field, url))
        body = await r.json()
        assert r.status == 422, (url, body)
        assert body["error"]["code"] == f"{field}_invalid", (url, body)
        message = body["error"]["message"]
        assert message.startswith(f"{field}:") and why in message and outbound.FLAG in message, (url, message)
        # Nothing stored: the settings are the previous ones, to the timestamp.
        assert await (await stack.call("GET", "/api/project/crm", owner)).json() == before, url
    assert await bridge.app[POOL].fetchrow("select * from crm_settings where project_id = 'demo'") == stored_before

    # The installation allows them (a CRM on the private network, the local stand-in): the same PUTs pass.
    monkeypatch.setenv(outbound.FLAG, "1")
    for kind, field, url, _ in REFUSED:
        r = await stack.call("PUT", "/api/project/crm", owner, json=body_for(kind, field, url))
        assert r.status == 200, (url, await r.text())
        shown = await (await stack.call("GET", "/api/project/crm", owner)).json()
        assert shown["kind"] == kind, url
        if kind == "bitrix24":      # shown masked, stored whole
            assert shown[field] == url.replace("abcdef", deliveries.MASK)
            secrets = await bridge.app[POOL].fetchval("select secrets from crm_settings where project_id = 'demo'")
            assert secrets == {"webhook_url": url}
        else:                       # amoCRM's base URL is kept without a trailing slash
            assert shown[field] == (url.rstrip("/") if kind == "amocrm" else url)


def loopback_name() -> tuple[str, str]:
    """This machine's host name and the address it resolves to: a name that is not
    `localhost` and is no IP literal, resolved by the system's resolver (/etc/hosts)."""
    name = socket.gethostname()
    addresses = sorted({info[4][0] for info in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)})
    assert addresses and all(outbound.address_refused(a) for a in addresses), \
        f"the test needs a host name resolving to a non-public address; {name} resolves to {addresses}"
    return name, next((a for a in addresses if ":" not in a), addresses[0])


async def test_a_name_resolving_to_loopback_is_refused_when_saved_and_at_every_call(crm_stack, strict, monkeypatch):
    bridge = crm_stack.bridge
    name, address = loopback_name()
    assert name != "localhost" and not name.endswith(".localhost")
    with pytest.raises(ValueError):
        ipaddress.ip_address(name)                                      # a name, not an address
    # A CRM stand-in listening where the name points; it must never be reached without the flag.
    crm = TestClient(TestServer(standin.create_app(secret=STANDIN_SECRET), host=address))
    await crm.start_server()
    tuning = bridge.app[deliveries.TUNING]
    tuning.adapter_factory, tuning.crm_timeout = deliveries.default_adapter_factory, 2.0
    try:
        stack = crm_stack
        owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
        url = f"https://{name}:{crm.port}/rest/1/{STANDIN_SECRET}/"
        r = await stack.call("PUT", "/api/project/crm", owner, json={"kind": "bitrix24", "webhook_url": url})
        refused = await r.json()
        assert r.status == 422 and refused["error"]["code"] == "webhook_url_invalid", refused
        assert "resolves to a refused address" in refused["error"]["message"] and STANDIN_SECRET not in str(refused)
        assert (await (await stack.call("GET", "/api/project/crm", owner)).json())["kind"] == "none"
        # A name can point elsewhere later (DNS rebinding): saved while it was allowed, then
        # every call checks it again.
        monkeypatch.setenv(outbound.FLAG, "1")
        r = await stack.call("PUT", "/api/project/crm", owner, json={"kind": "bitrix24", "webhook_url": url})
        assert r.status == 200, await r.text()
        monkeypatch.delenv(outbound.FLAG)

        r = await stack.call("POST", "/api/project/crm/test", owner)
        result = await r.json()
        assert r.status == 200 and result["ok"] is False, result
        assert f"CRM host {name.lower()} resolves to a refused address" in result["summary"], result
        assert STANDIN_SECRET not in result["summary"]

        cid, operator, _ = await conversation_with_operator(stack, owner)
        await request_lead(stack, cid, operator)
        [row] = await wait_settled(bridge, 1)
        assert row["status"] == "failed" and row["retryable"] is False and row["attempts"] == 1, dict(row)
        assert "refused address" in row["last_error"] and STANDIN_SECRET not in row["last_error"]
        leads = await (await crm.get("/_leads")).json()
        assert leads["calls"] == {} and leads["bitrix24"] == []        # not one call reached it

        # With the flag (the operator of the installation allows it), the same CRM works,
        # and an admin's retry delivers the lead that was refused.
        monkeypatch.setenv(outbound.FLAG, "1")
        r = await stack.call("PUT", "/api/project/crm", owner,
                             json={"kind": "bitrix24", "webhook_url": url.replace("https://", "http://")})
        assert r.status == 200, await r.text()
        r = await stack.call("POST", "/api/project/crm/test", owner)
        assert (await r.json())["ok"] is True, await r.text()
        r = await stack.call("POST", f"/api/project/crm/deliveries/{row['request_id']}/retry", owner)
        assert r.status == 200, await r.text()
        [row] = await wait_settled(bridge, 1)
        assert row["status"] == "delivered", row["last_error"]
        [lead] = (await (await crm.get("/_leads")).json())["bitrix24"]
        assert lead["ORIGIN_ID"] == str(row["request_id"])
    finally:
        await crm.close()


async def test_a_new_crm_address_needs_the_secret_again(crm_stack, monkeypatch):
    """Issue 23, finding 4: an admin who is not the owner changed only amoCRM's base_url
    to a host of theirs; the stored token was kept, and "Test connection" sent it there
    as a bearer token. Now the new address needs the token with it, and the host never
    hears a request."""
    bridge = crm_stack.bridge
    monkeypatch.setenv(outbound.FLAG, "1")            # both hosts are local in this test
    heard: list[str] = []

    async def record(request: web.Request) -> web.Response:
        heard.append(request.headers.get("Authorization", ""))
        return web.json_response({})
    theirs = web.Application()
    theirs.router.add_route("*", "/{tail:.*}", record)
    attacker = TestClient(TestServer(theirs))
    await attacker.start_server()
    tuning = bridge.app[deliveries.TUNING]
    tuning.adapter_factory, tuning.crm_timeout = deliveries.default_adapter_factory, 2.0
    try:
        stack = crm_stack
        owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
        r = await stack.call("PUT", "/api/project/crm", owner,
                             json={"kind": "amocrm", "base_url": "https://owners-company.amocrm.ru", "token": TOKEN})
        assert r.status == 200, await r.text()
        _, admin, _ = await stack.add_operator(owner, "Ada Admin", admin=True)
        moved = f"http://127.0.0.1:{attacker.port}"
        for body in ({"kind": "amocrm", "base_url": moved}, {"kind": "amocrm", "base_url": moved, "token_set": True}):
            r = await stack.call("PUT", "/api/project/crm", admin, json=body)
            assert r.status == 422 and (await r.json())["error"]["code"] == "token_required", await r.text()
        r = await stack.call("POST", "/api/project/crm/test", admin)
        assert r.status == 200
        shown = await (await stack.call("GET", "/api/project/crm", admin)).json()
        assert shown["base_url"] == "https://owners-company.amocrm.ru"
        assert heard == [], "the owner's token never left for the new host"
        # The same address keeps the stored token: saving other fields does not need it.
        r = await stack.call("PUT", "/api/project/crm", admin, json={
            "kind": "amocrm", "base_url": "https://owners-company.amocrm.ru", "source_name": "Site chat"})
        assert r.status == 200 and (await r.json())["token_set"] is True
        stored = await bridge.app[POOL].fetchval("select secrets from crm_settings where project_id = 'demo'")
        assert stored == {"token": TOKEN}
    finally:
        await attacker.close()
