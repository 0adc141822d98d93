"""The garbage collector's pauses, measured and kept short. While it runs, nothing else in
the process does, and a full collection walks every object: a gateway holding 10,000
sockets paused 125-520 ms every 5-20 s under load, freeing nothing (`make bench`), which
was the whole tail above p99 and the `busy` refusals at 200-1,000 msg/s.

- Each collection is timed into `parley_gc_pause_seconds{generation}`, and one over
  LONG_PAUSE is logged, so a latency tail can be matched to its cause.
- `keep_old_objects_frozen` (in a service's own process: `frozen_while_running`): what
  is alive goes to the permanent generation (`gc.freeze`), which collections skip: the
  sockets, caches and settings a server keeps for minutes are not walked again and
  again. It freezes every FREEZE_EVERY seconds, and within CHECK_EVERY of each full
  collection: what survived one has proved it lives on. Freezing only on the clock left
  a gateway taking on sockets fast (the bench's 1,000 operators connecting) with a full
  collection every second over everything since the last freeze, 100-300 ms each; after
  each full one is frozen, the next walks only what came since. Reference counting
  still frees frozen objects; only garbage cycles among them wait, until every
  THAW_EVERY seconds they are thawed and collected once."""
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
FREEZE_EVERY = 30.0
CHECK_EVERY = 1.0
THAW_EVERY = 600.0

_started = [0.0]
# Set by a full collection (from whichever thread it ran on), cleared by the next freeze.
_full_since_freeze = [False]


def _on_collection(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    took = time.perf_counter() - _started[0]
    if info["generation"] == 2:
        _full_since_freeze[0] = True
    PAUSES.labels(str(info["generation"])).observe(took)
    if took >= LONG_PAUSE:
        log.warning("long garbage collection pause", extra={"generation": info["generation"],
                                                            "ms": round(took * 1000, 1),
                                                            "collected": info.get("collected")})


def watch() -> None:
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)


async def keep_old_objects_frozen(stop: asyncio.Event) -> None:
    thawed = frozen = time.monotonic()
    while True:
        try:
            await asyncio.wait_for(stop.wait(), CHECK_EVERY)
            return
        except asyncio.TimeoutError:
            pass
        now = time.monotonic()
        if now - thawed >= THAW_EVERY:
            gc.unfreeze()
            gc.collect()
            thawed = now
        if _full_since_freeze[0] or now - frozen >= FREEZE_EVERY:
            _full_since_freeze[0] = False
            gc.freeze()
            frozen = now


async def frozen_while_running(_app) -> AsyncIterator[None]:
    """A service process's cleanup context: keep_old_objects_frozen while it runs."""
    stop = asyncio.Event()
    task = asyncio.create_task(keep_old_objects_frozen(stop), name="gc:freeze")
    yield
    stop.set()
    await task
