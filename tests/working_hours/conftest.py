"""The in-process stack with the scheduler added: the gateway learns the scheduler's
address before it starts (PARLEY_SCHEDULER_URL on a port chosen here), and the
scheduler starts once the other services are up (it calls the conversation service)."""
from __future__ import annotations

import dataclasses
import socket
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from parley.service import create_app

from tests.stack import settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler_port(monkeypatch) -> int:
    port = _free_port()
    monkeypatch.setenv("PARLEY_SCHEDULER_URL", f"http://localhost:{port}")
    return port


@pytest.fixture
async def stack(scheduler_port, stack, platform):
    import scheduler.__main__ as scheduler_main
    spec = dataclasses.replace(scheduler_main.SPEC, schema=f"sched_{uuid.uuid4().hex[:8]}")
    client = TestClient(TestServer(create_app(spec, settings(platform, "scheduler")), port=scheduler_port))
    await client.start_server()
    stack.scheduler = client
    yield stack
    await client.close()


from tests.browser.conftest import browser  # noqa: E402,F401  (a real Chromium, for the journey)
