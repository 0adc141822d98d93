"""Garbage-collection pauses are measured and kept short (parley/gc_pauses.py): a full
collection shows in parley_gc_pause_seconds for generation 2 and one over the threshold
is logged; a service process freezes what lives a second and thaws it now and then."""
from __future__ import annotations

import asyncio
import gc
import logging

from prometheus_client import REGISTRY

from parley import gc_pauses


def collections(generation: int) -> float:
    return REGISTRY.get_sample_value("parley_gc_pause_seconds_count", {"generation": str(generation)}) or 0.0


def test_a_full_collection_is_timed_and_a_long_one_logged(monkeypatch, caplog):
    gc_pauses.watch()
    gc_pauses.watch()   # twice is once
    assert gc.callbacks.count(gc_pauses._on_collection) == 1
    before = collections(2)
    gc.collect(2)
    assert collections(2) == before + 1
    monkeypatch.setattr(gc_pauses, "LONG_PAUSE", 0.0)
    with caplog.at_level(logging.WARNING, logger="parley.gc_pauses"):
        gc.collect(2)
    assert any(r.getMessage() == "long garbage collection pause" and r.generation == 2 for r in caplog.records)


async def test_what_lives_on_is_frozen_out_of_collections_and_thawed_now_and_then(monkeypatch):
    monkeypatch.setattr(gc_pauses, "FREEZE_EVERY", 0.02)
    monkeypatch.setattr(gc_pauses, "THAW_EVERY", 3600.0)
    gc.unfreeze()
    stop = asyncio.Event()
    try:
        task = asyncio.create_task(gc_pauses.keep_old_objects_frozen(stop))
        await asyncio.sleep(0.2)
        assert gc.get_freeze_count() > 1000        # the process's long-lived objects: skipped by collections
        thaws = collections(2)
        monkeypatch.setattr(gc_pauses, "THAW_EVERY", 0.0)
        await asyncio.sleep(0.2)
        assert collections(2) > thaws              # thawed and collected in full, then frozen again
        stop.set()
        await asyncio.wait_for(task, 1)            # stops when told
    finally:
        gc.unfreeze()                              # the test process goes on as it was


async def test_what_lives_a_second_is_frozen_so_a_full_collection_walks_only_what_came_since(monkeypatch):
    # A full collection walks the oldest generation. Frozen every 30 s, a burst of objects
    # that live on (a gateway taking on sockets, say) stayed there to be walked by every
    # full collection until then: 103-215 ms pauses, each enough to set a ladder step's p99.
    monkeypatch.setattr(gc_pauses, "THAW_EVERY", 3600.0)
    gc.unfreeze()
    stop = asyncio.Event()
    try:
        task = asyncio.create_task(gc_pauses.keep_old_objects_frozen(stop))
        await asyncio.sleep(1.5)                   # a round has run: a burst comes later
        kept = [[i] for i in range(20_000)]
        gc.collect(1)                              # moved to the oldest generation, as they would be in time
        assert len(gc.get_objects(generation=2)) >= len(kept)
        frozen = gc.get_freeze_count()
        await asyncio.sleep(1.5)                   # a second and a half later
        assert gc.get_freeze_count() >= frozen + len(kept)   # out of every collection from now on
        assert len(gc.get_objects(generation=2)) < len(kept) / 10
        stop.set()
        await asyncio.wait_for(task, 2)
    finally:
        gc.unfreeze()
