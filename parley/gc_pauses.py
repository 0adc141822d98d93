"""The garbage collector's pauses, measured and kept short. While it runs, nothing else in
the process does, and a full collection walks every object: a gateway holding 10,000
sockets paused 125-520 ms every 5-20 s under load, freeing nothing (`make bench`), which
was the whole tail above p99 and the `busy` refusals at 200-1,000 msg/s.

- Each collection is timed into `parley_gc_pause_seconds{generation}`, and one over
  LONG_PAUSE is logged, so a latency tail can be matched to its cause.
- `keep_old_objects_frozen` (in a service's own process: `frozen_while_running`): what
  is alive goes to the permanent generation (`gc.freeze`), which collections skip: the
  sockets, caches and settings a server keeps for minutes are not walked again and
  again. It freezes every FREEZE_EVERY seconds, so a full collection walks only what
  came in since. A full collection comes when the objects moved to the oldest
  generation since the last one reach a quarter of what that one kept; freezing does
  not reset that count, so what it walks is what piled up between freezes. Freezing
  every 30 s (and within a second of each full collection) still let 0-6 pauses of
  103-215 ms through a four-minute ladder on a slow evening, all in the gateway, each
  long enough to set the p99 of the step it fell in (a 150 ms pause delays 1.5 % of a
  step's messages at 1,000 msg/s). A freeze is a list splice, so it now happens every
  second.
  Reference counting still frees frozen objects; only garbage cycles alive at a freeze
  wait, until every THAW_EVERY seconds they are thawed and collected once."""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import AsyncIterator

from prometheus_client import Histogram

log = logging.getLogger(__name__)

PAUSES = Histogram("parley_gc_pause_seconds", "Garbage collections, by generation", ["generation"],
                   buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
LONG_PAUSE = 0.1
FREEZE_EVERY = 1.0
THAW_EVERY = 600.0

_started = [0.0]


def _on_collection(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    took = time.perf_counter() - _started[0]
    PAUSES.labels(str(info["generation"])).observe(took)
    if took >= LONG_PAUSE:
        log.warning("long garbage collection pause", extra={"generation": info["generation"],
                                                            "ms": round(took * 1000, 1),
                                                            "collected": info.get("collected")})


def watch() -> None:
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)


async def keep_old_objects_frozen(stop: asyncio.Event) -> None:
    thawed = time.monotonic()
    while True:
        try:
            await asyncio.wait_for(stop.wait(), FREEZE_EVERY)
            return
        except asyncio.TimeoutError:
            pass
        if time.monotonic() - thawed >= THAW_EVERY:
            gc.unfreeze()
            gc.collect()
            thawed = time.monotonic()
        gc.freeze()


async def frozen_while_running(_app) -> AsyncIterator[None]:
    """A service process's cleanup context: keep_old_objects_frozen while it runs."""
    stop = asyncio.Event()
    task = asyncio.create_task(keep_old_objects_frozen(stop), name="gc:freeze")
    yield
    stop.set()
    await task
