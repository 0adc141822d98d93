"""The garbage collector's pauses, measured: while it runs, nothing else in the process
does (a gateway holding 10,000 sockets has millions of objects for a full collection to
walk). Each collection is timed into `parley_gc_pause_seconds{generation}` and one over
LONG_PAUSE is logged, so a latency tail can be matched to its cause."""
from __future__ import annotations

import gc
import logging
import time

from prometheus_client import Histogram

log = logging.getLogger(__name__)

PAUSES = Histogram("parley_gc_pause_seconds", "Garbage collections, by generation", ["generation"],
                   buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
LONG_PAUSE = 0.1

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
