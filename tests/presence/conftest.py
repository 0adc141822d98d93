"""Presence and auto-assignment tests: a short grace period (PARLEY_PRESENCE_GRACE_SECONDS)
set before the stack starts, a second gateway on the same services, and a project of
the test's own (every stack seeds `demo`; presence is per project)."""
from __future__ import annotations

import uuid

import pytest

GRACE_SECONDS = 1.5


@pytest.fixture
def short_grace(monkeypatch):
    monkeypatch.setenv("PARLEY_PRESENCE_GRACE_SECONDS", str(GRACE_SECONDS))


@pytest.fixture
async def gateway_b(short_grace, gateway_b):
    """The stack's second gateway replica (tests/stack.py), started with the short grace."""
    return gateway_b


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


# The scheduler's fixtures (its offer timers), for the auto-assignment tests.
