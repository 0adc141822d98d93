"""The one test stack: Parley's services in-process on the session's real PostgreSQL and
Kafka, each on fresh schemas, built by `start_stack` from the services a test needs.

Every service's port is chosen (and held) before anything starts, and its URL set in
the environment, so each service learns its upstreams when it is created; an upstream
the test does not start stays where tests/conftest.py points it, at a port that refuses
every connection - never at a `make run` beside the suite. Services start in the order
they call each other while starting: registry, conversation, scheduler, crm-bridge,
and the gateways last.

The fixtures below are the shapes tests ask for: `stack` (registry, conversation, the
gateway, the demo project seeded), `sched_stack` (with the scheduler on short timer
minutes), `crm_stack` (with crm-bridge on a FakeCrm), `full_stack` (both), `hours_stack`
(the scheduler at its real minute), `fresh` (no project yet, two gateways), `scheduler`
and `scheduler_pair` (the scheduler alone, one or two replicas), `gateway_b` (a second
gateway beside a stack's)."""
from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import uuid
from dataclasses import dataclass, field
from typing import Iterable

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from parley import internal_auth
from parley.config import REPO_ROOT, Settings, env
from parley.contract import ACTOR_HEADER
from parley.service import POOL, STORE, ServiceSpec, create_app
from parley.service_client import ServiceClient, new_session, path

import conversation.__main__ as conversation_main
import crm_bridge.__main__ as crm_main
import gateway.__main__ as gateway_main
import operator_registry.__main__ as registry_main
import scheduler.__main__ as scheduler_main
from crm_bridge import deliveries
from operator_registry import commands
from operator_registry.domain import Actor
from scheduler import timers
from tests.fake_crm import FakeCrm
from tests.support import consumers_at_the_end

OWNER_EMAIL, OWNER_PASSWORD = env("PARLEY_OWNER_EMAIL"), env("PARLEY_OWNER_PASSWORD")
REGISTRY, CONVERSATION, SCHEDULER, CRM_BRIDGE, GATEWAY = (
    "operator-registry", "conversation", "scheduler", "crm-bridge", "gateway")
CORE = (REGISTRY, CONVERSATION, GATEWAY)
START_ORDER = (REGISTRY, CONVERSATION, SCHEDULER, CRM_BRIDGE, GATEWAY)
URL_VARIABLE = {REGISTRY: "PARLEY_OPERATOR_REGISTRY_URL", CONVERSATION: "PARLEY_CONVERSATION_URL",
                SCHEDULER: "PARLEY_SCHEDULER_URL", CRM_BRIDGE: "PARLEY_CRM_BRIDGE_URL"}
_SPEC = {REGISTRY: registry_main.SPEC, CONVERSATION: conversation_main.SPEC, SCHEDULER: scheduler_main.SPEC,
         CRM_BRIDGE: crm_main.SPEC, GATEWAY: gateway_main.SPEC}
_SCHEMA_PREFIX = {REGISTRY: "reg", CONVERSATION: "conv", SCHEDULER: "sched", CRM_BRIDGE: "crm", GATEWAY: "gw"}
MINUTE_SECONDS = 0.5     # a timer minute with short_timers
VISITOR_SECRET = "test-visitor-secret-" + "x" * 32


def settings(platform, service: str) -> Settings:
    return Settings(service=service, http_port=0, database_url=platform.database_url,
                    kafka_bootstrap=platform.bootstrap, log_level="INFO",
                    schemas_dir=REPO_ROOT / "schemas", shutdown_timeout=5)


def by_host_name(client: TestClient) -> str:
    """The service's base URL with the host name `localhost`, as compose and k8s reach
    services by name: behaviour that differs between an IP and a name (cookie jars keep
    cookies only for names) must show up in the tests."""
    return f"http://localhost:{client.port}"


def admin_headers(project: str = "demo", *, admin: bool = True) -> dict[str, str]:
    """The actor header the gateway sends for an admin (or not) of `project`."""
    actor = {"id": str(uuid.uuid4()), "project": project, "name": "Admin", "is_admin": admin}
    return {ACTOR_HEADER: orjson.dumps(actor).decode()}


@dataclass
class Scheduler:
    clients: list[TestClient]      # its replicas, on one schema
    schema: str
    signed: ServiceClient          # to the first replica, as the gateway calls it

    @property
    def app(self):
        return self.clients[0].app

    @property
    def pool(self):
        return self.app[POOL]

    async def put(self, body: dict, project: str = "demo"):
        return await self.signed.call("PUT", path("api", "project", "schedule"), json=body,
                                      headers=admin_headers(project))

    async def events(self, type_: str | None = None) -> list:
        """The scheduler's own streams' events (audit entries are tests/privacy/test_audit_log's)."""
        rows = await self.pool.fetch("select id::text, type, stream_id, data, position from events"
                                     " where stream_id not like 'audit-%'"
                                     + (" and type = $1" if type_ else "") + " order by position",
                                     *([type_] if type_ else []))
        return [dict(r) for r in rows]


@dataclass
class Bridge:
    client: TestClient
    crm: FakeCrm                   # the CRM behind it, until a test switches to the real adapters
    schema: str

    @property
    def app(self):
        return self.client.app


@dataclass
class Stack:
    registry: TestClient | None
    conversation: TestClient | None
    gateways: list[TestClient]
    # Signed clients, as another Parley service calls them (for tests that go behind the gateway).
    registry_client: ServiceClient | None
    conversation_client: ServiceClient | None
    scheduler: Scheduler | None = None
    bridge: Bridge | None = None
    _http: object = None
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def gateway(self) -> TestClient:
        return self.gateways[0]

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

    async def project_ids(self) -> list[str]:
        return [r["id"] for r in await self.registry.app[POOL].fetch("select id from projects order by id")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self._http.close()
        for client in reversed(self._clients()):
            await client.close()

    def _clients(self) -> list[TestClient]:
        return [c for c in (self.registry, self.conversation, *(self.scheduler.clients if self.scheduler else []),
                            self.bridge.client if self.bridge else None, *self.gateways) if c is not None]


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


async def spec_for(platform, service: str, schema: str) -> ServiceSpec:
    """`service` on `schema`, each consumer a group of that schema's own starting where
    its topics end now (tests/support.py): earlier tests' events are not its business."""
    return await consumers_at_the_end(platform, _SPEC[service], schema)


# Ports chosen for a stack's services: bound from the moment they are chosen until the
# service's server listens on that very socket, so no connection of the meantime (the
# Kafka clients the stack opens first) can be given the port.
_RESERVED: dict[int, socket.socket] = {}


def reserve_port() -> int:
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("127.0.0.1", 0))
    port = held.getsockname()[1]
    _RESERVED[port] = held
    return port


def release_port(port: int) -> None:
    held = _RESERVED.pop(port, None)
    if held is not None:
        held.close()


def _reserved_socket(host: str, port: int, family: socket.AddressFamily) -> socket.socket:
    return _RESERVED.pop(port)


async def serve(app, port: int | None = None) -> TestClient:
    """`app` listening on `port` (held since reserve_port, or simply free), or any free one."""
    if port in _RESERVED:
        server = TestServer(app, port=port, socket_factory=_reserved_socket)
    else:
        server = TestServer(app, port=port) if port else TestServer(app)
    client = TestClient(server)
    await client.start_server()
    return client


async def start_stack(platform, monkeypatch, services: Iterable[str] = CORE, *, seed_demo: bool = True,
                      short_timers: bool = True, gateways: int = 1, scheduler_replicas: int = 1,
                      ports: dict[str, int] | None = None) -> Stack:
    """`services` in-process on fresh schemas; `ports` are ports already reserved (with
    reserve_port) for some of them. short_timers: the scheduler's minute is
    MINUTE_SECONDS and it polls fast. crm-bridge delivers to a FakeCrm, retrying fast."""
    wanted = [s for s in START_ORDER if s in set(services)]
    suffix = uuid.uuid4().hex[:8]
    ports = dict(ports or {})
    ports.update({s: reserve_port() for s in wanted if s in URL_VARIABLE and s not in ports})
    for service, port in ports.items():
        monkeypatch.setenv(URL_VARIABLE[service], f"http://localhost:{port}")
    monkeypatch.setenv("PARLEY_SEED_DEMO", "1" if seed_demo else "")
    monkeypatch.setenv("PARLEY_VISITOR_SECRET", VISITOR_SECRET)
    if short_timers and SCHEDULER in wanted:
        monkeypatch.setenv(timers.MINUTE_SECONDS_VAR, str(MINUTE_SECONDS))
    http = new_session()
    key = internal_auth.secret()
    stack = Stack(None, None, [], None, None, _http=http)
    try:
        for service in wanted:
            schema = f"{_SCHEMA_PREFIX[service]}_{suffix}"
            spec = await spec_for(platform, service, schema)
            if service == GATEWAY:
                for _ in range(gateways):
                    stack.gateways.append(await serve(create_app(spec, settings(platform, service))))
                continue
            replicas = scheduler_replicas if service == SCHEDULER else 1
            clients = []
            for n in range(replicas):
                app = create_app(spec, settings(platform, service))
                if service == SCHEDULER and short_timers:
                    app[timers.TUNING] = timers.Tuning(poll_interval=0.1, lease=3.0, minute=MINUTE_SECONDS)
                if service == CRM_BRIDGE:
                    crm = FakeCrm()
                    app[deliveries.TUNING] = deliveries.Tuning(
                        backoff_base=0.02, poll_interval=0.05, rand=random.Random(7).random, crm_timeout=2,
                        adapter_factory=lambda *args, crm=crm: crm)
                clients.append(await serve(app, ports[service] if n == 0 else None))
            url = by_host_name(clients[0])
            if service == REGISTRY:
                stack.registry, stack.registry_client = clients[0], ServiceClient(service, url, http, key)
                stack._tasks.append(asyncio.create_task(_demo_owner_online(stack.registry, stack.registry_client)))
            elif service == CONVERSATION:
                stack.conversation, stack.conversation_client = clients[0], ServiceClient(service, url, http, key)
            elif service == SCHEDULER:
                stack.scheduler = Scheduler(clients, schema, ServiceClient(service, url, http, key))
            else:
                stack.bridge = Bridge(clients[0], crm, schema)
    except BaseException:
        await stack.close()
        raise
    return stack


@pytest.fixture
def conversation_port(monkeypatch):
    """The stack's conversation service port, chosen before anything starts: a service
    started before the stack (a crm-bridge process, which opens sealed lead requests with
    the conversation service's keys) is told where it will answer."""
    port = reserve_port()
    monkeypatch.setenv(URL_VARIABLE[CONVERSATION], f"http://localhost:{port}")
    yield port
    release_port(port)   # when no stack used it


@contextlib.asynccontextmanager
async def running(platform, monkeypatch, services: Iterable[str] = CORE, **options):
    """start_stack's stack for the length of a `with`."""
    built = await start_stack(platform, monkeypatch, services, **options)
    try:
        yield built
    finally:
        await built.close()


def _shape(name: str, services: Iterable[str], doc: str, **options):
    """A fixture giving a stack of `services`, its conversation service on `conversation_port`."""
    async def shaped(platform, monkeypatch, conversation_port):
        async with running(platform, monkeypatch, services, ports={CONVERSATION: conversation_port}, **options) as s:
            yield s
    shaped.__doc__ = doc
    return pytest.fixture(name=name)(shaped)


stack = _shape("stack", CORE, "registry, conversation and the gateway, the demo project seeded.")
sched_stack = _shape("sched_stack", (*CORE, SCHEDULER), "With the scheduler, on timer minutes of MINUTE_SECONDS.")
hours_stack = _shape("hours_stack", (*CORE, SCHEDULER), "With the scheduler at its real minute: working hours "
                     "open and close by the clock.", short_timers=False)
crm_stack = _shape("crm_stack", (*CORE, CRM_BRIDGE), "With crm-bridge, delivering to a FakeCrm.")
full_stack = _shape("full_stack", (*CORE, SCHEDULER, CRM_BRIDGE), "With the scheduler and crm-bridge.")


@pytest.fixture
async def fresh(platform, monkeypatch):
    """An installation with no project yet, behind two gateways (two replicas)."""
    async with running(platform, monkeypatch, CORE, seed_demo=False, gateways=2) as built:
        yield built


@pytest.fixture
async def scheduler(platform, monkeypatch):
    async with running(platform, monkeypatch, (SCHEDULER,)) as built:
        yield built.scheduler


@pytest.fixture
async def scheduler_pair(platform, monkeypatch):
    """Two replicas of the scheduler on one schema."""
    async with running(platform, monkeypatch, (SCHEDULER,), scheduler_replicas=2) as built:
        yield built.scheduler


@pytest.fixture
async def gateway_b(stack, platform):
    """A second gateway replica beside the stack's: its own process state, the same
    services and schemas, as two replicas behind one ingress."""
    schema = await stack.gateway.app[POOL].fetchval("select current_schema()")
    client = await serve(create_app(await spec_for(platform, GATEWAY, schema), settings(platform, GATEWAY)))
    yield client
    await client.close()
