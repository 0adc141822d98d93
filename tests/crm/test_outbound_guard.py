"""The outbound guard: CRM URLs on loopback/private/link-local/... addresses, or plain
http, are refused unless PARLEY_CRM_ALLOW_PRIVATE=1; names are resolved and every
address checked, before each call and again at connect time."""
from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from crm_bridge import outbound
from crm_bridge.adapters import adapter_for
from crm_bridge.crm import CrmError

REFUSED = [
    "https://127.0.0.1/rest/1/abc/",
    "https://10.0.0.5/rest/1/abc/",
    "https://192.168.1.10/rest/1/abc/",
    "https://172.16.0.1/rest/1/abc/",
    "https://169.254.169.254/rest/1/abc/",
    "https://100.64.0.1/rest/1/abc/",
    "https://[::1]/rest/1/abc/",
    "https://[fd12:3456::1]/rest/1/abc/",
    "https://[fe80::1]/rest/1/abc/",
    "https://[::ffff:10.0.0.1]/rest/1/abc/",
    "https://0.0.0.0/rest/1/abc/",
    "https://224.0.0.1/rest/1/abc/",
    "https://localhost/rest/1/abc/",
    "https://api.localhost/rest/1/abc/",
    # Issue 23: IPv6 forms of private IPv4 addresses, and site-local
    "https://[2002:7f00:1::]/rest/1/abc/",          # 6to4 of 127.0.0.1
    "https://[2002:a00:5::1]/rest/1/abc/",          # 6to4 of 10.0.0.5
    "https://[2002:a9fe:a9fe::]/rest/1/abc/",       # 6to4 of 169.254.169.254
    "https://[64:ff9b::a00:5]/rest/1/abc/",         # NAT64 of 10.0.0.5
    "https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/rest/1/abc/",   # Teredo, client 10.0.0.1
    "https://[fec0::1]/rest/1/abc/",
]


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.delenv(outbound.FLAG, raising=False)


@pytest.fixture
def fake_dns(monkeypatch):
    """Names resolve from this table (no real DNS in tests)."""
    table = {"crm.example.com": ["93.184.216.34"], "rebind.example.com": ["93.184.216.34", "127.0.0.1"],
             "internal.example.com": ["10.1.2.3"]}

    async def getaddrinfo(host, port):
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]
    monkeypatch.setattr(outbound, "_getaddrinfo", getaddrinfo)
    return table


@pytest.mark.parametrize("url", REFUSED)
async def test_private_addresses_refused_without_the_flag(strict, url):
    with pytest.raises(outbound.OutboundRefused) as err:
        outbound.check_url(url)
    assert outbound.FLAG in str(err.value)
    assert isinstance(err.value, CrmError) and isinstance(err.value, ValueError)
    assert not err.value.retryable
    with pytest.raises(ValueError):
        adapter_for("bitrix24", {}, {"webhook_url": url}, session=None)


@pytest.mark.parametrize("url", REFUSED + ["http://crm.example.com/rest/1/abc/"])
async def test_allowed_with_the_flag(monkeypatch, fake_dns, url):
    monkeypatch.setenv(outbound.FLAG, "1")
    outbound.check_url(url)
    await outbound.guard_url(url)
    adapter_for("bitrix24", {}, {"webhook_url": url}, session=None)


async def test_http_refused_without_the_flag(strict):
    for url in ("http://crm.example.com/rest/1/abc/", "ftp://crm.example.com/"):
        with pytest.raises(outbound.OutboundRefused):
            outbound.check_url(url)
    with pytest.raises(ValueError):
        adapter_for("webhook", {"url": "http://crm.example.com/hook"}, {"secret": "s"}, session=None)
    with pytest.raises(ValueError):
        adapter_for("amocrm", {"base_url": "http://x.amocrm.ru"}, {"token": "t"}, session=None)


async def test_names_are_resolved_and_every_address_checked(strict, fake_dns):
    await outbound.guard_url("https://crm.example.com/rest/1/abc/")
    for host in ("internal.example.com", "rebind.example.com"):
        with pytest.raises(outbound.OutboundRefused, match=host):
            await outbound.guard_url(f"https://{host}/rest/1/abc/")


async def test_a_real_name_resolving_to_loopback_is_refused(strict):
    """The machine's own name (Debian puts it in /etc/hosts as 127.0.1.1 or 127.0.0.1)
    goes through real resolution, not a static rule."""
    host = socket.gethostname()
    addresses = await outbound._getaddrinfo(host, 443)
    if any(outbound.address_refused(a) for a in addresses):
        with pytest.raises(outbound.OutboundRefused, match="resolves to a refused address"):
            await outbound.guard_url(f"https://{host}/x")
    else:   # a host whose own name is public: then it must pass
        await outbound.guard_url(f"https://{host}/x")


async def test_unresolvable_name_is_retryable(strict, fake_dns):
    with pytest.raises(CrmError) as err:
        await outbound.guard_url("https://nowhere.example.com/")
    assert err.value.retryable and not isinstance(err.value, outbound.OutboundRefused)


async def test_connect_time_resolver_refuses_rebinding(strict):
    """The check before the call saw a public address; the connection resolves again and
    gets loopback: the session's resolver refuses it."""
    async def users(request):
        return web.json_response({"result": []})

    app = web.Application()
    app.router.add_post("/rest/1/abc/user.get.json", users)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()

    class Rebinding(aiohttp.abc.AbstractResolver):
        async def resolve(self, host, port=0, family=0):
            return [{"hostname": host, "host": "127.0.0.1", "port": server.port, "family": 2, "proto": 0, "flags": 0}]

        async def close(self):
            pass

    connector = aiohttp.TCPConnector(resolver=outbound.GuardedResolver(Rebinding()))
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(outbound.OutboundRefused):
            await session.post(f"http://crm.example.com:{server.port}/rest/1/abc/user.get.json")
    await server.close()


async def test_adapter_call_is_guarded_before_sending(strict, fake_dns):
    async with outbound.create_session() as session:
        adapter = adapter_for("bitrix24", {}, {"webhook_url": "https://internal.example.com/rest/1/abc/"}, session)
        with pytest.raises(outbound.OutboundRefused):
            await adapter.managers()
