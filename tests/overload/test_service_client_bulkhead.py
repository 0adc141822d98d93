"""The bulkhead of parley.service_client (issue 12, item 5): a client runs at most
`max_in_flight` calls to its upstream at once, and refuses one more at once as `busy`
(503, Retry-After) instead of queueing it; a place comes back when a call ends, however
it ends. A real aiohttp server that holds its answers stands in for the upstream."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from parley.http import Rejected
from parley.service_client import ServiceClient, new_session, path


@pytest.fixture
async def held_upstream():
    release = asyncio.Event()
    arrived: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        arrived.append(request.path)
        await release.wait()
        return web.json_response({"ok": True})

    async def broken(request: web.Request) -> web.Response:
        arrived.append(request.path)
        request.transport.close()   # the connection drops: a ClientError in the caller
        await asyncio.sleep(1)
        return web.Response()

    app = web.Application()
    app.router.add_post("/slow", slow)
    app.router.add_post("/broken", broken)
    server = TestServer(app)
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}", release, arrived
    release.set()
    await server.close()


async def test_one_call_beyond_the_bound_is_refused_busy_at_once_and_never_sent(held_upstream):
    base, release, arrived = held_upstream
    async with new_session() as session:
        client = ServiceClient("conversation", base, session, b"k" * 32, max_in_flight=2)
        held = [asyncio.create_task(client.checked("POST", path("slow"), json={})) for _ in range(2)]
        while len(arrived) < 2:
            await asyncio.sleep(0.01)
        with pytest.raises(Rejected) as refused:
            await asyncio.wait_for(client.checked("POST", path("slow"), json={}), 1)
        assert (refused.value.status, refused.value.code) == (503, "busy")
        assert int(refused.value.headers["Retry-After"]) >= 1 and refused.value.message
        assert arrived == ["/slow", "/slow"]          # the refused call never reached the upstream
        release.set()
        assert await asyncio.gather(*held) == [{"ok": True}, {"ok": True}]
        assert client.in_flight == 0
        assert await client.checked("POST", path("slow"), json={}) == {"ok": True}   # the places came back


async def test_a_failed_call_gives_its_place_back(held_upstream):
    base, _, _ = held_upstream
    async with new_session() as session:
        client = ServiceClient("conversation", base, session, b"k" * 32, max_in_flight=1)
        for _ in range(3):   # each failure must free the one place, or the second would be refused busy
            with pytest.raises(Rejected) as failed:
                await client.checked("POST", path("broken"), json={})
            assert failed.value.code == "service_unavailable"
        assert client.in_flight == 0
