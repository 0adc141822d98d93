"""The conversation service is SIGKILLed while a visitor sends 200 messages with
retries: the operator sees exactly 200, in order."""
import asyncio
import dataclasses
import uuid

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from parley.service import create_app

import gateway.__main__ as gateway_main
from tests.visitor import ScriptedVisitor, send_reliably
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD, settings
from tests.support import ServiceProcess

TOTAL = 200
KILL_AFTER = 60


@pytest.mark.slow
async def test_sigkill_of_the_conversation_service_loses_and_doubles_nothing(stack, platform, monkeypatch, tmp_path):
    from gateway import rate_limits
    monkeypatch.setattr(rate_limits, "MESSAGES_PER_MINUTE_PER_VISITOR", 10_000)  # 200 in a minute is the point here
    monkeypatch.setattr(rate_limits, "MESSAGES_PER_MINUTE_PER_ADDRESS", 10_000)
    service = ServiceProcess("conversation", platform.database_url, platform.bootstrap, tmp_path / "conversation.log")
    await service.start()
    await service.ready()
    monkeypatch.setenv("PARLEY_CONVERSATION_URL", service.url)
    gateway = TestClient(TestServer(create_app(dataclasses.replace(gateway_main.SPEC, schema="gw_crash"),
                                               settings(platform, "gateway"))))
    await gateway.start_server()
    try:
        owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
        ws = await gateway.ws_connect("/ws/operator", headers={"Authorization": f"Bearer {owner}"})
        assert (await ws.receive_json(timeout=10))["type"] == "hello"
        pushed: list[str] = []

        async def watch():
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    data = msg.json()
                    if data.get("event") == "chat.visitor_message_posted":
                        pushed.append(data["data"]["text"])
        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.5)

        visitor = ScriptedVisitor(gateway)
        await visitor.start()
        for i in range(TOTAL):
            await send_reliably(visitor, f"message {i:03d}", str(uuid.uuid4()))
            if i == KILL_AFTER:
                service.kill()
                # keep sending while it is down: these are refused and retried
                send_during_outage = asyncio.create_task(send_reliably(visitor, f"message {i + 1:03d}", str(uuid.uuid4())))
                await asyncio.sleep(1.0)
                await service.start()
                await service.ready()
                await send_during_outage
                break
        for j in range(KILL_AFTER + 2, TOTAL):
            await send_reliably(visitor, f"message {j:03d}", str(uuid.uuid4()))

        assert any(e["code"] == "service_unavailable" for e in visitor.errors), "the outage was felt and retried"
        expected = [f"message {i:03d}" for i in range(TOTAL)]
        for _ in range(300):
            if len(pushed) >= TOTAL:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # a duplicate from the relay's restart would land now
        assert pushed == expected  # live, exactly once each, in order

        cid = visitor.conversation_id or (await (await gateway.get(
            "/api/inbox?view=new", headers={"Authorization": f"Bearer {owner}"})).json())["conversations"][0]["id"]
        transcript = await (await gateway.get(f"/api/conversations/{cid}",
                                              headers={"Authorization": f"Bearer {owner}"})).json()
        stored = [e["data"]["text"] for e in transcript["events"] if e["event"] == "chat.visitor_message_posted"]
        assert stored == expected
        await ws.close()
        watcher.cancel()
    finally:
        await gateway.close()
        service.stop()
