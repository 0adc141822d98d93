"""What sealing personal data costs (issue 20; docs/architecture.md, Personal data).

The same realistic conversations (bench/chat_histories.py) go append -> relay -> consume
twice in one run, on the same broker and database: once plain (the relay with no sealer,
the consumer with no opener: the version before issue 20) and once as the conversation
service runs now (the relay's Sealer makes keys and seals; the consumer opens with the
keys, as a rebuild does). The figure is sealed / plain; the micro costs of sealing and
opening one event, and its size on the wire, are measured beside it."""
from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

from parley import cipher, db, kafka, personal
from parley.config import REPO_ROOT
from parley.consumer import ConsumerRunner
from parley.envelope import Event
from parley.eventstore import EventStore
from parley.relay import Relay
from parley.schemas import Catalog, Topic
from parley.subject_keys import LocalOpener, Sealer

from bench import chat_histories
from bench.common import progress

PARTITIONS = 4
ROUNDS = 20_000


async def _pipeline(comps, events: list[Event], sealed: bool, timeout: float) -> dict:
    schema, topic = f"bench_seal_{uuid.uuid4().hex[:8]}", f"bench.sealing.{uuid.uuid4().hex[:8]}"
    await kafka.create_topics(comps.bootstrap, [Topic(topic, "bench", ("conversation",), PARTITIONS, 1, {})])
    pool = await db.create_pool(comps.database_url, schema, max_size=12)
    await db.migrate(pool, schema)
    store = EventStore(pool, Catalog(REPO_ROOT / "schemas"), topic_for=lambda _: topic)
    streams: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        streams[event.stream_id].append(event)
    applied = 0

    async def handle(conn, event: Event) -> None:
        nonlocal applied
        if personal.is_sealed(event):
            raise AssertionError("an event reached the handler sealed")
        applied += 1

    stop = asyncio.Event()
    runner = ConsumerRunner(pool, comps.bootstrap, name=f"bench-{schema}", topics=[topic], handle=handle,
                            opener=LocalOpener(pool).open if sealed else None)
    relay = Relay(comps.database_url, schema, comps.bootstrap, sealer=Sealer() if sealed else None)
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(runner.run(stop))]
    try:
        started = time.perf_counter()

        async def writer(ids: list[str]) -> None:
            for stream in ids:   # a conversation's events in one append each, as its commands add up
                for i, event in enumerate(streams[stream]):
                    await store.append([event], i)
        ids = list(streams)
        await asyncio.gather(*[writer(ids[w::10]) for w in range(10)])
        while applied < len(events) and time.perf_counter() - started < timeout:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pool.execute(f"drop schema {schema} cascade")
        await pool.close()
    return {"events": applied, "seconds": round(elapsed, 2), "events_per_s": round(applied / elapsed, 1)}


def _micro(events: list[Event]) -> dict:
    personal_events = [e for e in events if personal.is_plain(e)][:500]
    key = cipher.new_key()
    started = time.perf_counter()
    for i in range(ROUNDS):
        personal.seal_event(personal_events[i % len(personal_events)], key)
    seal_us = (time.perf_counter() - started) / ROUNDS * 1e6
    sealed = [personal.seal_event(e, key) for e in personal_events]
    started = time.perf_counter()
    for i in range(ROUNDS):
        personal.open_event(sealed[i % len(sealed)], key)
    open_us = (time.perf_counter() - started) / ROUNDS * 1e6
    plain_bytes = sum(len(e.to_bytes()) for e in personal_events) / len(personal_events)
    sealed_bytes = sum(len(e.to_bytes()) for e in sealed) / len(sealed)
    return {"seal_us": round(seal_us, 1), "open_us": round(open_us, 1), "plain_bytes": round(plain_bytes),
            "sealed_bytes": round(sealed_bytes), "rounds": ROUNDS}


async def run(comps, events: int = 3000, timeout: float = 120.0) -> dict:
    history = list(chat_histories.events(events))
    progress(f"sealing: {len(history)} events of realistic conversations, plain (the floor)...")
    plain = await _pipeline(comps, history, sealed=False, timeout=timeout)
    progress("sealing: the same, sealed by the relay and opened by the consumer...")
    sealed = await _pipeline(comps, history, sealed=True, timeout=timeout)
    micro = _micro(history)
    ratio = sealed["events_per_s"] / plain["events_per_s"] if plain["events_per_s"] else 0.0
    print(f"""
sealing personal data   ({len(history)} events, append -> relay -> consume; {PARTITIONS} partitions)
                      plain (floor)       sealed + opened     ratio (sealed / plain)
  throughput          {plain['events_per_s']:8.0f} /s         {sealed['events_per_s']:8.0f} /s      {ratio:6.2f}x
  one event           seal {micro['seal_us']} us, open {micro['open_us']} us; {micro['plain_bytes']} -> {micro['sealed_bytes']} bytes
""", flush=True)
    return {"plain": plain, "sealed": sealed, "throughput_ratio": round(ratio, 3), "micro": micro}
