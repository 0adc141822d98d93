"""Small helpers shared by the tests."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from parley import db
from parley.consumer import ConsumerRunner
from parley.config import REPO_ROOT
from parley.envelope import new_event
from devstack.procs import free_port, spawn


def item_added(stream_id: str, n: int, note: str | None = None):
    return new_event("test.item_added", stream_id, {"n": n} if note is None else {"n": n, "note": note})


async def eventually(check: Callable[[], Awaitable[bool] | bool], *, timeout: float = 60,
                     what: str = "condition") -> None:
    """Wait until `check()` (plain or async) is true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (await result if asyncio.iscoroutine(result := check()) else result):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


async def rebuilt_until(platform, migrations: Path, handle_batch, opener, done: Callable[[asyncpg.Pool], Awaitable[bool]],
                        *, what: str, types: frozenset[str] | None = None, timeout: float = 60) -> None:
    """A rebuild: `conversation.events` from its start through `handle_batch` into a
    scratch schema migrated with `migrations`, the events opened by `opener`, until
    `done(scratch pool)` holds; the schema is dropped after."""
    schema = f"rebuild_{uuid.uuid4().hex[:8]}"
    scratch = await db.create_pool(platform.database_url, schema, max_size=4)
    try:
        await db.migrate(scratch, schema, migrations)
        runner = ConsumerRunner(scratch, platform.bootstrap, name=f"rebuild-{schema}", topics=["conversation.events"],
                                handle_batch=handle_batch, opener=opener, types=types)
        stop = asyncio.Event()
        task = asyncio.ensure_future(runner.run(stop))
        try:
            await eventually(lambda: done(scratch), timeout=timeout, what=what)
        finally:
            stop.set()
            await task
    finally:
        await scratch.execute(f'drop schema "{schema}" cascade')
        await scratch.close()


async def create_database(server_url: str, prefix: str) -> str:
    """A database of its own on the platform's server, for services run as processes:
    they use fixed schema names (`gateway`, `crm_bridge`, ...), which other tests use in
    the shared one. Returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def drop_database(server_url: str, database_url: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'drop database if exists "{urlsplit(database_url).path.lstrip("/")}" with (force)')
    finally:
        await conn.close()


class Background:
    """Run `loop(stop)` coroutines as tasks; stop them all on exit."""

    def __init__(self):
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    def start(self, loop) -> asyncio.Task:
        task = asyncio.create_task(loop(self.stop))
        self.tasks.append(task)
        return task

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.stop.set()
        results = await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 30)
        for r in results:
            if isinstance(r, Exception):
                raise r


class ServiceProcess:
    """`python -m <module>` as a real process on a free port, bound to loopback, that a
    test starts, SIGKILLs and starts again (on its own database: see create_database)."""

    def __init__(self, module: str, database_url: str, bootstrap: str, log_path: Path, **env: str):
        self.module, self.log_path = module, log_path
        self.port = free_port()
        self.env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "PARLEY_HTTP_PORT": str(self.port), "PARLEY_BIND_HOST": "127.0.0.1", **env}
        self.proc = None

    @property
    def url(self) -> str:
        """Reached by host name, as compose and k8s do."""
        return f"http://localhost:{self.port}"

    async def start(self) -> None:
        self.proc = spawn([sys.executable, "-m", self.module], log_path=self.log_path, env=self.env, cwd=REPO_ROOT)

    async def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"{self.module} died at start:\n{self.log()}"
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/readyz",
                                        timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.module} never became ready:\n{self.log()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except Exception:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


class AppSocket:
    """An operator app's /ws/operator, its frames collected."""

    def __init__(self, ws, task, frames):
        self.ws, self.task, self.frames = ws, task, frames

    @classmethod
    async def open(cls, gateway: TestClient, token: str) -> "AppSocket":
        gateway.session.cookie_jar.clear()   # the token, not the last login's cookie, says who this is
        ws = await gateway.ws_connect("/ws/operator", headers={"Authorization": f"Bearer {token}"})
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


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's end offset (the next record's) of `topic`, now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            [described] = await admin.describe_topics([topic])
        finally:
            await admin.close()
        partitions = {p["partition"] for p in described["partitions"]}
        assert partitions, f"no partitions for {topic}"
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def start_at_the_end(pool, consumer: str, bootstrap: str, topic: str) -> None:
    """A consumer (of the pool's schema, migrated) starts at the end of `topic` as it is
    now: earlier tests' events on the shared broker are not its business, and a fresh
    group would otherwise read the whole topic from the beginning."""
    for partition, offset in (await end_offsets(bootstrap, topic)).items():
        await pool.execute("insert into consumer_offsets (consumer, topic, partition, next_offset)"
                           " values ($1, $2, $3, $4) on conflict do nothing", consumer, topic, partition, offset)


async def database_at_the_end(database_url: str, spec, bootstrap: str) -> None:
    """`spec`'s schema in that database, migrated, each of its consumer groups starting
    where its topics end now: earlier tests' events are not its business."""
    pool = await db.create_pool(database_url, spec.schema)
    try:
        await db.migrate(pool, spec.schema, *([spec.migrations] if spec.migrations else []))
        for consumer in spec.consumers:
            for topic in consumer.topics:
                await start_at_the_end(pool, consumer.name, bootstrap, topic)
    finally:
        await pool.close()


async def consumers_at_the_end(platform, spec, schema: str):
    """`spec` on `schema` of the session's database, each of its consumers a group of that
    schema's own (in-process services of other tests are not its replicas), migrated and
    starting at the end (database_at_the_end)."""
    spec = dataclasses.replace(spec, schema=schema, consumers=[
        dataclasses.replace(c, name=f"{c.name}.{schema}") for c in spec.consumers])
    await database_at_the_end(platform.database_url, spec, platform.bootstrap)
    return spec
