"""`python -m parley.admin create-project` / `list-projects`, run as a self-hoster runs
them (a process with DATABASE_URL, no Kafka), on a database of their own; then the
registry and a gateway start on it: the owner logs in, and the registry's relay
publishes the events the command stored."""
from __future__ import annotations

import asyncio
import dataclasses
import getpass
import os
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from parley.admin import main as admin_main
from parley.config import REPO_ROOT
from parley.service import POOL, create_app

import gateway.__main__ as gateway_main
import operator_registry.__main__ as registry_main
from tests.stack import by_host_name, serve, settings


@pytest.fixture
async def database_url(platform):
    """A database of its own: the CLI works on the registry's real schema name."""
    name = f"cli_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(platform.database_url)
    await admin.execute(f"create database {name}")
    yield urlunsplit(urlsplit(platform.database_url)._replace(path=f"/{name}"))
    await admin.execute(f"drop database {name} with (force)")
    await admin.close()


def admin(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    # A new session has no controlling terminal: getpass reads the piped stdin.
    return subprocess.run([sys.executable, "-m", "parley.admin", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=60, start_new_session=True,
                          env={**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": ""})


async def in_process(*args: str) -> int:
    """parley.admin.main in a thread (it runs its own event loop): quicker than a process."""
    return await asyncio.to_thread(admin_main, list(args))


async def test_create_list_and_log_in(platform, database_url, monkeypatch, capsys):
    pid = f"acme-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert await in_process("list-projects") == 0 and "no project yet" in capsys.readouterr().out

    made = admin(database_url, "create-project", "--id", pid, "--name", "ACME", "--owner-email", "boss@acme.example",
                 "--owner-password", "acme-owner-password")
    assert made.returncode == 0, made.stderr
    assert f"created project {pid}" in made.stdout
    prompted = admin(database_url, "create-project", "--id", "beta", "--name", "Beta", "--owner-email",
                     "b@beta.example", stdin="beta-owner-password\nbeta-owner-password\n")
    assert prompted.returncode == 0, prompted.stderr

    taken = admin(database_url, "create-project", "--id", pid, "--name", "Again", "--owner-email", "x@y.example",
                  "--owner-password", "another-password")
    assert taken.returncode == 1 and f"(project_exists): Project {pid!r} already exists" in taken.stderr
    capsys.readouterr()
    assert await in_process("create-project", "--id", "no spaces", "--name", "X", "--owner-email", "nope",
                            "--database-url", database_url, "--owner-password", "another-password") == 1
    assert "(project_id_invalid)" in capsys.readouterr().err
    answers = iter(["first-password-1", "second-password-2"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(answers))
    assert await in_process("create-project", "--id", "gamma", "--name", "G", "--owner-email", "g@g.example",
                            "--database-url", database_url) == 1
    assert "the two passwords differ; nothing was created" in capsys.readouterr().err

    listed = admin(database_url, "list-projects")
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "OWNER", "EMAIL", "CREATED"]
    assert [line.split()[:3] for line in lines[1:]] == [[pid, "ACME", "boss@acme.example"],
                                                        ["beta", "Beta", "b@beta.example"]]
    assert all(line.split()[3].startswith("20") for line in lines[1:])  # an ISO date

    # The registry and a gateway on that database: the owner logs in, the stored events reach Kafka.
    monkeypatch.setenv("PARLEY_SEED_DEMO", "")
    registry = await serve(create_app(registry_main.SPEC, dataclasses.replace(
        settings(platform, "operator-registry"), database_url=database_url)))
    monkeypatch.setenv("PARLEY_OPERATOR_REGISTRY_URL", by_host_name(registry))
    gateway = await serve(create_app(gateway_main.SPEC, dataclasses.replace(
        settings(platform, "gateway"), database_url=database_url)))
    try:
        r = await gateway.post("/api/session", json={"project": pid, "email": "boss@acme.example",
                                                     "password": "acme-owner-password"})
        assert r.status == 201, await r.text()
        assert (await (await gateway.get("/api/project")).json())["chat_enabled"] is True
        stored = {r["id"] for r in await registry.app[POOL].fetch(
            "select id::text from events where stream_id = $1", f"project-{pid}")}
        assert len(stored) == 2   # created, chat enabled
        assert stored <= await published_ids(platform.bootstrap, "project.events", stored)
    finally:
        await gateway.close()
        await registry.close()


async def published_ids(bootstrap: str, topic: str, wanted: set[str]) -> set[str]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    seen: set[str] = set()
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while not wanted <= seen and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen |= {orjson.loads(r.value)["id"] for r in records}
    finally:
        await consumer.stop()
    return seen
