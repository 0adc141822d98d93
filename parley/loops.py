"""Periodic work as a supervised loop (ServiceSpec.loops): `every(seconds, work)` runs
`work(app)` now and then every `seconds` until the service stops, waking at once on
stop rather than finishing its sleep. The supervisor (service.py) restarts a loop whose
work raised."""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from aiohttp import web

Work = Callable[[web.Application], Awaitable[Any]]


def every(seconds: float | Callable[[], float], work: Work, *, at_start: bool = True):
    """A ServiceSpec.loops factory. `seconds` may be a callable, read before each wait
    (a setting, or a module constant a test changes)."""
    def factory(app: web.Application) -> Callable[[asyncio.Event], Awaitable[None]]:
        async def run(stop: asyncio.Event) -> None:
            first = True
            while not stop.is_set():
                if at_start or not first:
                    await work(app)
                first = False
                try:
                    await asyncio.wait_for(stop.wait(), seconds() if callable(seconds) else seconds)
                except asyncio.TimeoutError:
                    pass
        return run
    return factory
