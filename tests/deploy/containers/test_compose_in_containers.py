"""Issue 25: deploy/compose.yaml, unchanged, run by Docker Compose in real containers from
images built here, and used only through the port it publishes, as a new user would.

The tests run in order on one stack: start order, the image's promises, the journey
(setup, two operators, two visitors, the CRM stand-in, files both ways), a restart on
the same volumes, and teardown leaving nothing behind."""
from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import datetime

import aiohttp
import pytest

from devstack.procs import say
from tests.deploy.containers import images
from tests.deploy.containers.compose import PARLEY_SERVICES, Compose
from devstack.visitor_protocol import token_headers
from tests.visitor import ScriptedVisitor

pytestmark = pytest.mark.containers

PROJECT = "acme"
OWNER = {"email": "alice@acme.example", "password": "correct horse battery", "name": "Alice Owner"}
OPERATOR = {"email": "olga@acme.example", "password": "olga-operator-password-1", "name": "Olga Operator"}
STANDIN_WEBHOOK = "http://crm-standin:8086/rest/1/standin/"
DEV_TOOLS = ("pytest", "playwright", "pgserver", "schemathesis", "testcontainers", "hypothesis", "matplotlib")
# Multi-MB files, sent in the body in many packets.
OPERATOR_FILE = b"%PDF-1.4\n" + os.urandom(3 * 1024 * 1024 + 17)
VISITOR_FILE = b"%PDF-1.4\n" + os.urandom(2 * 1024 * 1024)


def _time(value: str) -> datetime:
    """podman's RFC 3339 times, with nanoseconds cut to what datetime takes."""
    head, _, tail = value.partition(".")
    digits = "".join(c for c in tail if c.isdigit())[:6]
    zone = tail[len("".join(c for c in tail if c.isdigit())):] or "+00:00"
    return datetime.fromisoformat(f"{head}.{digits or '0'}{zone.replace('Z', '+00:00')}")


def first_healthy(compose: Compose, container: dict) -> datetime:
    seen = compose.podman.ticker.first_healthy.get(container["Id"])
    assert seen, f"{container['Name']} was never found healthy"
    return seen


# ---- start order ------------------------------------------------------------------------------

def test_health_checks_and_migrate_gate_the_start_order(compose: Compose):
    kafka, postgres, migrate = (compose.container(s) for s in ("kafka", "postgres", "migrate"))
    assert migrate["State"]["Status"] == "exited" and migrate["State"]["ExitCode"] == 0, migrate["State"]
    migrate_started, migrate_done = _time(migrate["State"]["StartedAt"]), _time(migrate["State"]["FinishedAt"])
    assert migrate_started >= first_healthy(compose, kafka) and migrate_started >= first_healthy(compose, postgres), \
        "migrate started before Kafka and PostgreSQL were healthy"
    services = {s: compose.container(s) for s in PARLEY_SERVICES}
    for name, container in services.items():
        assert container["State"]["Status"] == "running", (name, container["State"])
        assert _time(container["State"]["StartedAt"]) >= migrate_done, f"{name} started before migrate finished"
    gateway_started = _time(services["gateway"]["State"]["StartedAt"])
    for name in ("conversation", "operator-registry", "crm-bridge", "scheduler"):
        assert gateway_started >= first_healthy(compose, services[name]), f"the gateway started before {name} was healthy"
    assert compose.podman.ticker.runs > 0


# ---- the image --------------------------------------------------------------------------------

def test_every_service_runs_as_10001_on_a_read_only_root_and_passes_the_images_health_check(compose: Compose):
    healthcheck = compose.podman.json("image", "inspect", "--format", "{{json .Config.Healthcheck}}", images.PARLEY)
    assert healthcheck and healthcheck["Test"][0] == "CMD", healthcheck
    for name in (*PARLEY_SERVICES, "crm-standin"):
        cid = compose.container(name)["Id"]
        assert compose.podman("exec", cid, "id", "-u").stdout.strip() == "10001", name
        assert compose.container(name)["HostConfig"]["ReadonlyRootfs"] is True, name
        denied = compose.podman("exec", cid, "sh", "-c", "touch /opt/venv/x", check=False)
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr, (name, denied)
        writable = compose.podman("exec", cid, "sh", "-c", "touch /tmp/x && touch x && pwd", check=False)
        assert writable.returncode == 0 and writable.stdout.strip() == "/tmp", (name, writable)
        if name in PARLEY_SERVICES:
            # The image's own HEALTHCHECK (compose replaces it with /readyz), run in each service.
            ran = compose.podman("exec", cid, *healthcheck["Test"][1:], check=False)
            assert ran.returncode == 0, f"the image's HEALTHCHECK fails in {name}: {ran.stderr}"


def test_only_the_gateway_is_published(compose: Compose):
    published = {}
    for name in ("kafka", "postgres", *PARLEY_SERVICES, "crm-standin"):
        ports = compose.container(name)["NetworkSettings"]["Ports"] or {}
        published[name] = sorted({(b["HostIp"], b["HostPort"]) for bindings in ports.values() if bindings
                                  for b in bindings})
    assert published.pop("gateway") in ([("", str(compose.http_port))], [("0.0.0.0", str(compose.http_port))])
    assert published.pop("crm-standin") == [("127.0.0.1", str(compose.standin_port))]  # the demo profile only
    assert all(not p for p in published.values()), published


def test_the_image_holds_no_development_tools(compose: Compose, built):
    listed = compose.podman("run", "--rm", images.PARLEY, "pip", "list", "--format", "freeze").stdout.lower()
    assert not [tool for tool in DEV_TOOLS if f"{tool}==" in listed], listed
    for module in ("devstack", "tests", "bench", "chaos"):
        absent = compose.podman("run", "--rm", images.PARLEY, "python", "-c", f"import {module}", check=False)
        assert absent.returncode != 0 and "ModuleNotFoundError" in absent.stderr, module
    sizes = {b.name: b.size_bytes for b in built}
    say("image sizes: " + ", ".join(f"{n} {s / 1e6:.0f} MB" for n, s in sizes.items()))
    assert sizes[images.PARLEY] > 0


# ---- the journey, through the published port ---------------------------------------------------

class Journey:
    """What the first run leaves, for the restart to find again."""
    owner_cookies: object = None
    conversations: dict = {}
    transcripts: dict = {}
    visitor_tokens: list = []
    files: dict = {}


def browser(compose: Compose, jar: aiohttp.CookieJar | None = None) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=compose.url, headers={"Origin": compose.url},
                                 cookie_jar=jar or aiohttp.CookieJar(unsafe=True),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def ok(response: aiohttp.ClientResponse, status: int = 200):
    body = await response.read()
    assert response.status == status, f"{response.method} {response.url.path}: {response.status} {body[:500]!r}"
    return await response.json() if response.content_type == "application/json" else body


async def eventually(check, what: str, timeout: float = 60):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)


async def test_setup_two_operators_two_visitors_crm_and_files(compose: Compose):
    token = compose.setup_token()
    owner, operator = browser(compose), browser(compose)
    visitor_http = [aiohttp.ClientSession(base_url=compose.url, timeout=aiohttp.ClientTimeout(total=60))
                    for _ in range(2)]
    try:
        assert (await owner.get("/setup?token=wrong")).status == 403
        await ok(await owner.get(f"/setup?token={token}"))
        await ok(await owner.post("/setup", json={
            "token": token, "project_id": PROJECT, "project_name": "ACME Shop", "owner_name": OWNER["name"],
            "owner_email": OWNER["email"], "password": OWNER["password"], "language": "en"}), 201)
        assert (await owner.get(f"/setup?token={token}")).status == 404, "setup stays open after a project exists"
        await ok(await owner.post("/api/operators", json={**OPERATOR, "is_admin": False}), 201)
        await ok(await operator.post("/api/session", json={"project": PROJECT, "email": OPERATOR["email"],
                                                           "password": OPERATOR["password"]}), 201)

        visitors = [ScriptedVisitor(http, project=PROJECT) for http in visitor_http]
        for v in visitors:
            await v.start()
        await visitors[0].send_and_wait("Hello, a quote for 10 licenses please")
        await visitors[0].ws.send_json({"type": "contacts", "name": "Maria Ivanova", "phone": "+7 900 123-45-67"})
        upload = await ok(await visitor_http[1].post("/api/visitor/attachments", data=VISITOR_FILE, headers={
            **token_headers(visitors[1].token), "X-File-Name": "contract.pdf"}), 201)
        await visitors[1].send_and_wait("Here is the contract", attachment=upload["file_id"])

        async def new_conversations():
            found = (await ok(await owner.get("/api/inbox?view=new")))["conversations"]
            return found if len(found) >= 2 else None
        by_visitor = {c["visitor_id"]: c["id"] for c in await eventually(new_conversations, "both conversations")}
        cids = [by_visitor[v.visitor_id] for v in visitors]
        await ok(await owner.post(f"/api/conversations/{cids[0]}/take", json={}))
        await ok(await operator.post(f"/api/conversations/{cids[1]}/take", json={}))

        await ok(await owner.post(f"/api/conversations/{cids[0]}/messages", json={"text": "Hello Maria, 10 it is"}))
        sent = await ok(await operator.post(f"/api/conversations/{cids[1]}/attachments", data=OPERATOR_FILE,
                                            headers={"Content-Type": "application/pdf", "X-File-Name": "signed.pdf"}), 201)
        await ok(await operator.post(f"/api/conversations/{cids[1]}/messages",
                                     json={"text": "Signed copy attached", "attachment": sent["file_id"]}))
        for v, text in zip(visitors, ("Hello Maria, 10 it is", "Signed copy attached")):
            await v.wait_for(lambda v=v: text in v.texts("operator_message"), f"the answer {text!r}", timeout=30)
            assert v.errors == []

        # files both ways, byte for byte, and nobody else's
        got = await ok(await visitor_http[1].get(f"/files/{sent['file_id']}", headers=token_headers(visitors[1].token)))
        assert hashlib.sha256(got).digest() == hashlib.sha256(OPERATOR_FILE).digest()
        got = await ok(await operator.get(f"/files/{upload['file_id']}"))
        assert got == VISITOR_FILE
        stranger = await visitor_http[0].get(f"/files/{sent['file_id']}", headers=token_headers(visitors[0].token))
        assert stranger.status in (403, 404)

        # "Send to CRM" reaches the demo profile's stand-in, by its compose host name
        await ok(await owner.put("/api/project/crm", json={"kind": "bitrix24", "webhook_url": STANDIN_WEBHOOK}))
        await ok(await owner.post(f"/api/conversations/{cids[0]}/lead", json={}))

        async def leads():
            async with aiohttp.ClientSession() as standin:
                return (await ok(await standin.get(f"{compose.standin_url}/_leads")))["bitrix24"]
        [lead] = await eventually(leads, "the lead in the CRM stand-in")
        assert lead["TITLE"] == "Chat: Maria Ivanova", lead

        for v in visitors:
            await v.drop()
        Journey.owner_cookies = owner.cookie_jar
        Journey.conversations = dict(zip(("owner", "operator"), cids))
        Journey.visitor_tokens = [v.token for v in visitors]
        Journey.files = {"operator": sent["file_id"], "visitor": upload["file_id"]}
        for c in cids:
            Journey.transcripts[c] = [(e["event"], e["data"].get("text"))
                                      for e in (await ok(await owner.get(f"/api/conversations/{c}")))["events"]]
    finally:
        for session in (owner, operator, *visitor_http):
            await session.close()


# ---- restart on the same volumes ---------------------------------------------------------------

def test_down_and_up_again_keeps_everything(compose: Compose):
    assert Journey.conversations, "the journey did not run"
    compose("down", "--timeout", "30")          # containers gone, volumes kept
    assert compose.leftovers()["containers"] == []
    assert compose.leftovers()["volumes"], "down without --volumes must keep the data"
    compose.up()
    assert compose.container("migrate")["State"]["ExitCode"] == 0, "migrations must be idempotent"
    asyncio.run(_everything_is_still_there(compose))


async def _everything_is_still_there(compose: Compose) -> None:
    owner = browser(compose, Journey.owner_cookies)
    visitor_http = aiohttp.ClientSession(base_url=compose.url, timeout=aiohttp.ClientTimeout(total=60))
    try:
        me = await ok(await owner.get("/api/session"))
        assert me["email"] == OWNER["email"], "the owner's session did not survive the restart"
        for c, transcript in Journey.transcripts.items():
            events = (await ok(await owner.get(f"/api/conversations/{c}")))["events"]
            assert [(e["event"], e["data"].get("text")) for e in events][:len(transcript)] == transcript
        got = await ok(await owner.get(f"/files/{Journey.files['operator']}"))
        assert got == OPERATOR_FILE
        deliveries = (await ok(await owner.get("/api/project/crm/deliveries")))
        assert any(d.get("status") == "delivered" for d in deliveries.get("deliveries", [])), deliveries

        # the first visitor comes back with their token: the same conversation goes on
        visitor = ScriptedVisitor(visitor_http, project=PROJECT, token=Journey.visitor_tokens[0])
        await visitor.start()
        assert visitor.conversation_id == Journey.conversations["owner"]
        await visitor.send_and_wait("Back again after your restart")
        await visitor.drop()

        async def arrived():
            events = (await ok(await owner.get(f"/api/conversations/{Journey.conversations['owner']}")))["events"]
            return [e for e in events if e["data"].get("text") == "Back again after your restart"]
        await eventually(arrived, "the returning visitor's message")
    finally:
        await owner.close()
        await visitor_http.close()


# ---- teardown ----------------------------------------------------------------------------------

def test_down_with_volumes_leaves_nothing_behind(compose: Compose):
    compose.down()
    left = compose.leftovers()
    assert left == {"containers": [], "volumes": [], "networks": []}, left
