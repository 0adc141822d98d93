"""Garbage-collection pauses are measured and kept short (parley/gc_pauses.py): a full
collection shows in parley_gc_pause_seconds for generation 2 and one over the threshold
is logged; a service process freezes what lives on and thaws it now and then."""
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
    monkeypatch.setattr(gc_pauses, "CHECK_EVERY", 0.02)
    monkeypatch.setattr(gc_pauses, "FREEZE_EVERY", 0.05)
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


async def test_what_survives_a_full_collection_is_frozen_without_waiting_for_the_clock(monkeypatch):
    monkeypatch.setattr(gc_pauses, "CHECK_EVERY", 0.02)
    monkeypatch.setattr(gc_pauses, "FREEZE_EVERY", 3600.0)
    monkeypatch.setattr(gc_pauses, "THAW_EVERY", 3600.0)
    monkeypatch.setattr(gc_pauses, "_full_since_freeze", [False])   # whatever ran before this test
    gc_pauses.watch()
    gc.unfreeze()
    stop = asyncio.Event()
    try:
        task = asyncio.create_task(gc_pauses.keep_old_objects_frozen(stop))
        await asyncio.sleep(0.1)
        assert gc.get_freeze_count() == 0          # the clock alone would not freeze for an hour
        kept = [[i] for i in range(20_000)]        # a burst of objects that live on (sockets, say)
        gc.collect(2)
        await asyncio.sleep(0.1)
        assert gc.get_freeze_count() >= len(kept)  # the full collection's survivors: out of the next one
        stop.set()
        await asyncio.wait_for(task, 1)
    finally:
        gc.unfreeze()
