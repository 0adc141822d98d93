"""Small helpers shared by the tests."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from parley.envelope import new_event


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
