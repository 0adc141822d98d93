"""Presence and auto-assignment tests: a short grace period (PARLEY_PRESENCE_GRACE_SECONDS)
set before the stack starts, a second gateway on the same services, and a project of
the test's own (every stack seeds `demo`; presence is per project)."""
from __future__ import annotations

import asyncio
import dataclasses
import uuid

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from parley.service import POOL, create_app

import gateway.__main__ as gateway_main
from tests.stack import settings

GRACE_SECONDS = 1.5


@pytest.fixture
def short_grace(monkeypatch):
    monkeypatch.setenv("PARLEY_PRESENCE_GRACE_SECONDS", str(GRACE_SECONDS))


@pytest.fixture
async def gateway_b(short_grace, stack, platform):
    """A second gateway beside the stack's (its own process state, the same schemas)."""
    schema = await stack.gateway.app[POOL].fetchval("select current_schema()")
    client = TestClient(TestServer(create_app(dataclasses.replace(gateway_main.SPEC, schema=schema),
                                              settings(platform, "gateway"))))
    await client.start_server()
    yield client
    await client.close()


async def own_project(stack) -> tuple[str, str]:
    """A project of this test's own: (project id, the owner's token)."""
    project = f"p{uuid.uuid4().hex[:10]}"
    email, password = f"owner-{project}@example.com", "owner-pass-123"
    await stack.create_project(project, email, password)
    return project, await stack.login(email, password, project)


async def add_operator(stack, project: str, owner_token: str, name: str) -> tuple[str, str]:
    """(operator id, token) of a new operator of `project`."""
    email = f"{name.lower()}.{uuid.uuid4().hex[:6]}@example.com"
    r = await stack.call("POST", "/api/operators", owner_token,
                         json={"name": name, "email": email, "password": "operator-pass-1", "is_admin": False})
    assert r.status == 201, await r.text()
    return (await r.json())["id"], await stack.login(email, "operator-pass-1", project)


class AppSocket:
    """An operator app's /ws/operator, its frames collected."""

    def __init__(self, ws, task, frames):
        self.ws, self.task, self.frames = ws, task, frames

    @classmethod
    async def open(cls, gateway: TestClient, token: str) -> "AppSocket":
        gateway.session.cookie_jar.clear()   # the token, not the last login's cookie, says who this is
        ws = await gateway.ws_connect(f"/ws/operator?token={token}")
        assert (await ws.receive_json(timeout=10))["type"] == "hello"
        frames: list[dict] = []

        async def read():
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    frames.append(msg.json())
        return cls(ws, asyncio.create_task(read()), frames)

    def of_type(self, kind: str) -> list[dict]:
        return [f for f in self.frames if f.get("type") == kind]

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()


# The scheduler's fixtures (its offer timers), for the auto-assignment tests.
from tests.scheduler.conftest import sched_stack, scheduler  # noqa: E402,F401
