"""The services running in-process - operator-registry, conversation and the gateway -
on real PostgreSQL and Kafka, each test on fresh schemas. The registry seeds the demo
project (chat enabled, owner from PARLEY_OWNER_EMAIL / PARLEY_OWNER_PASSWORD)."""
from __future__ import annotations

import asyncio
import dataclasses
import socket
import uuid
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from parley import internal_auth
from parley.config import REPO_ROOT, Settings, env
from parley.service import POOL, STORE, ServiceSpec, create_app
from parley.service_client import ServiceClient, new_session

import conversation.__main__ as conversation_main
import gateway.__main__ as gateway_main
import operator_registry.__main__ as registry_main
from operator_registry import commands
from operator_registry.domain import Actor
from tests.support import consumers_at_the_end

OWNER_EMAIL, OWNER_PASSWORD = env("PARLEY_OWNER_EMAIL"), env("PARLEY_OWNER_PASSWORD")


def settings(platform, service: str) -> Settings:
    return Settings(service=service, http_port=0, database_url=platform.database_url,
                    kafka_bootstrap=platform.bootstrap, log_level="INFO",
                    schemas_dir=REPO_ROOT / "schemas", shutdown_timeout=5)


def by_host_name(client: TestClient) -> str:
    """The service's base URL with the host name `localhost`, as compose and k8s reach
    services by name: behaviour that differs between an IP and a name (cookie jars keep
    cookies only for names) must show up in the tests."""
    return f"http://localhost:{client.port}"


@dataclass
class Stack:
    registry: TestClient
    conversation: TestClient
    gateway: TestClient
    # Signed clients, as another Parley service calls them (for tests that go behind the gateway).
    registry_client: ServiceClient
    conversation_client: ServiceClient

    async def login(self, email: str, password: str, project: str = "demo") -> str:
        r = await self.gateway.post("/api/session", json={"project": project, "email": email, "password": password})
        assert r.status == 201, await r.text()
        return (await r.json())["token"]

    async def call(self, method: str, path: str, token: str | None = None, **kwargs):
        """A request authenticated by `token` alone (the client's cookie jar is emptied)."""
        self.gateway.session.cookie_jar.clear()
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return await self.gateway.request(method, path, headers=headers, **kwargs)

    async def add_operator(self, token: str, name: str, *, admin: bool = False, password: str = "operator-pass-1"):
        email = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:6]}@example.com"
        r = await self.call("POST", "/api/operators", token,
                            json={"name": name, "email": email, "password": password, "is_admin": admin})
        assert r.status == 201, await r.text()
        body = await r.json()
        return body["id"], await self.login(email, password), email

    async def elapse_sessions(self, seconds: float) -> None:
        """As if `seconds` had passed for every session, without waiting: rotation is due
        once rotated_at is older than the rotation period, and a rotated-out token dies at
        previous_until, both compared with now() in the registry."""
        await self.registry.app[POOL].execute(
            "update sessions set rotated_at = rotated_at - make_interval(secs => $1),"
            " previous_until = previous_until - make_interval(secs => $1)", seconds)

    async def create_project(self, project_id: str, owner_email: str, owner_password: str) -> str:
        store = self.registry.app[STORE]
        owner_id = str(uuid.uuid4())
        await commands.create_project(store, str(uuid.uuid4()), project_id, name=project_id.title(),
                                      owner_name="Other Owner", owner_email=owner_email,
                                      owner_password=owner_password, language="ru", owner_operator_id=owner_id)
        await commands.enable_chat(store, str(uuid.uuid4()), Actor(owner_id, project_id, True, True))
        return owner_id


async def _demo_owner_online(registry: TestClient, client: ServiceClient) -> None:
    """The demo owner counts as online (presence), as if their app were open on some
    gateway: the widget offers the chat only when someone is online, and the tests of the
    chat itself are not about presence (tests/presence is)."""
    owner = await registry.app[POOL].fetchval(
        "select id::text from operators where project_id = 'demo' and is_owner")
    while owner:
        try:
            await client.call("POST", "/internal/presence/heartbeats", json={"operators": [owner]})
        except Exception:   # the registry stopping at the end of the test
            return
        await asyncio.sleep(10)


async def gateway_spec_for(platform, schema: str) -> ServiceSpec:
    """The gateway on `schema`, its erasure consumer (gateway/erasures.py) a group of that
    schema's own, starting at the end of conversation.events."""
    return await consumers_at_the_end(platform, gateway_main.SPEC, schema)


# Ports reserved for a stack's conversation service: bound from the moment they are chosen
# until its server listens on that very socket, so no connection of the meantime (the
# Kafka clients the stack opens first) can be given the port.
_RESERVED: dict[int, socket.socket] = {}


def _reserved_socket(host: str, port: int, family: socket.AddressFamily) -> socket.socket:
    return _RESERVED.pop(port)


@pytest.fixture
def conversation_port(monkeypatch):
    """The stack's conversation service port, chosen before anything starts: a service
    started before the stack (a crm-bridge process, which opens sealed lead requests with
    the conversation service's keys) is told where it will answer."""
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("127.0.0.1", 0))
    port = held.getsockname()[1]
    _RESERVED[port] = held
    monkeypatch.setenv("PARLEY_CONVERSATION_URL", f"http://localhost:{port}")
    yield port
    if _RESERVED.pop(port, None) is not None:   # no stack used it
        held.close()


@pytest.fixture
async def stack(platform, monkeypatch, conversation_port):
    suffix = uuid.uuid4().hex[:8]
    registry_spec = await consumers_at_the_end(platform, registry_main.SPEC, f"reg_{suffix}")
    registry = TestClient(TestServer(create_app(registry_spec, settings(platform, "operator-registry"))))
    await registry.start_server()
    conversation = TestClient(TestServer(create_app(
        dataclasses.replace(conversation_main.SPEC, schema=f"conv_{suffix}"), settings(platform, "conversation")),
        port=conversation_port, socket_factory=_reserved_socket))
    await conversation.start_server()
    monkeypatch.setenv("PARLEY_OPERATOR_REGISTRY_URL", by_host_name(registry))
    monkeypatch.setenv("PARLEY_CONVERSATION_URL", by_host_name(conversation))
    monkeypatch.setenv("PARLEY_VISITOR_SECRET", "test-visitor-secret-" + "x" * 32)
    gateway_spec = await gateway_spec_for(platform, f"gw_{suffix}")
    gateway = TestClient(TestServer(create_app(gateway_spec, settings(platform, "gateway"))))
    await gateway.start_server()
    http = new_session()
    key = internal_auth.secret()
    registry_client = ServiceClient("operator-registry", by_host_name(registry), http, key)
    online = asyncio.create_task(_demo_owner_online(registry, registry_client))
    yield Stack(registry, conversation, gateway, registry_client,
                ServiceClient("conversation", by_host_name(conversation), http, key))
    online.cancel()
    await http.close()
    await gateway.close()
    await conversation.close()
    await registry.close()


@pytest.fixture
async def gateway_b(stack, platform):
    """A second gateway replica beside the stack's: its own process state, the same
    services and schemas, as two replicas behind one ingress."""
    schema = await stack.gateway.app[POOL].fetchval("select current_schema()")
    client = TestClient(TestServer(create_app(await gateway_spec_for(platform, schema), settings(platform, "gateway"))))
    await client.start_server()
    yield client
    await client.close()
