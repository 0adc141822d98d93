"""Small helpers shared by the tests."""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

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
