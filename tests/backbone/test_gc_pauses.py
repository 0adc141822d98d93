"""Garbage-collection pauses are measured (parley/gc_pauses.py): a full collection shows in
parley_gc_pause_seconds for generation 2, and one over the threshold is logged."""
from __future__ import annotations

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
