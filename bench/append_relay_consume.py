"""Append -> relay -> consume, against the floor: raw aiokafka produce -> consume on
the same broker with the same message size and producer settings.

Latency: one message at a time, time from before the append (or send) until the
consumer's handler (or getmany) sees it. Throughput: many writers at once, time until
the consumer has applied everything."""
from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import TopicPartition

from parley import db, kafka
from parley.config import REPO_ROOT
from parley.consumer import ConsumerRunner
from parley.envelope import new_event
from parley.eventstore import EventStore
from parley.relay import Relay
from parley.schemas import Catalog, Topic

LATENCY_SAMPLES = 300
THROUGHPUT_EVENTS = 5000
WRITERS = 20
PARTITIONS = 4


from bench.common import percentile, progress  # noqa: E402  (kept importable from here)


def sample_event(stream_id: str, i: int):
    return new_event("test.item_added", stream_id, {"n": i, "note": "x" * 200})


async def raw_kafka(bootstrap: str, topic: str, payload_size: int) -> dict[str, float]:
    producer = kafka.producer(bootstrap)
    consumer = kafka.consumer(bootstrap, None)
    await producer.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        payload = b"x" * payload_size
        latencies = []
        for i in range(LATENCY_SAMPLES):
            started = time.perf_counter()
            await (await producer.send(topic, payload, key=f"item-{i % 50}".encode()))
            got = 0
            while not got:
                got = sum(len(v) for v in (await consumer.getmany(timeout_ms=1000)).values())
            latencies.append(time.perf_counter() - started)
        started = time.perf_counter()

        async def writer(w: int):
            for i in range(THROUGHPUT_EVENTS // WRITERS):
                await (await producer.send(topic, payload, key=f"item-w{w}-{i % 25}".encode()))
        receive = asyncio.create_task(_receive(consumer, THROUGHPUT_EVENTS))
        await asyncio.gather(*[writer(w) for w in range(WRITERS)])
        await receive
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()
    return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "throughput": THROUGHPUT_EVENTS / elapsed}


async def _receive(consumer, n: int) -> None:
    got = 0
    while got < n:
        got += sum(len(v) for v in (await consumer.getmany(timeout_ms=1000)).values())


async def parley_pipeline(comps, topic: str) -> dict[str, float]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    pool = await db.create_pool(comps.database_url, schema, max_size=WRITERS + 5)
    await db.migrate(pool, schema)
    catalog = Catalog(REPO_ROOT / "schemas", REPO_ROOT / "tests" / "schemas")
    store = EventStore(pool, catalog, topic_for=lambda s: topic)
    seen: dict[str, float] = {}
    applied = 0

    async def handle(conn, event):
        nonlocal applied
        applied += 1
        seen[event.id] = time.perf_counter()

    stop = asyncio.Event()
    runner = ConsumerRunner(pool, comps.bootstrap, name=f"bench-{schema}", topics=[topic], handle=handle)
    tasks = [asyncio.create_task(Relay(comps.database_url, schema, comps.bootstrap).run(stop)),
             asyncio.create_task(runner.run(stop))]
    try:
        # warm up: group join, metadata, connections
        await store.append([sample_event("item-warm", 0)], 0)
        while applied < 1:
            await asyncio.sleep(0.05)
        latencies = []
        for i in range(LATENCY_SAMPLES):
            event = sample_event(f"item-{i % 50}", i)
            started = time.perf_counter()
            await store.append([event], i // 50)
            while event.id not in seen:
                await asyncio.sleep(0.0005)
            latencies.append(seen[event.id] - started)
        target = applied + THROUGHPUT_EVENTS
        started = time.perf_counter()

        async def writer(w: int):
            versions = [0] * 25
            for i in range(THROUGHPUT_EVENTS // WRITERS):
                s = i % 25
                await store.append([sample_event(f"item-w{w}-{s}", i)], versions[s])
                versions[s] += 1
        await asyncio.gather(*[writer(w) for w in range(WRITERS)])
        while applied < target:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await pool.execute(f"drop schema {schema} cascade")
        await pool.close()
    return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "throughput": THROUGHPUT_EVENTS / elapsed}


async def run(comps) -> dict[str, dict[str, float]]:
    """Prints the backbone's figures; returns the floor and ours."""
    payload_size = len(sample_event("item-0", 0).with_version(1).to_bytes())
    raw_topic, our_topic = f"bench.raw.{uuid.uuid4().hex[:8]}", f"bench.parley.{uuid.uuid4().hex[:8]}"
    await kafka.create_topics(comps.bootstrap, [Topic(t, "bench", ("item",), PARTITIONS, 1, {})
                                                for t in (raw_topic, our_topic)])
    progress(f"floor: raw aiokafka produce -> consume, {payload_size}-byte messages...")
    floor = await raw_kafka(comps.bootstrap, raw_topic, payload_size)
    progress("parley: append -> relay -> consume (exactly-once effect)...")
    ours = await parley_pipeline(comps, our_topic)
    print(f"""
append -> relay -> consume   ({LATENCY_SAMPLES} sequential events for latency; {THROUGHPUT_EVENTS} events from {WRITERS} writers for throughput)
                      floor (raw Kafka)     parley        ratio (parley / floor)
  latency p50         {floor['p50'] * 1000:8.2f} ms       {ours['p50'] * 1000:8.2f} ms   {ours['p50'] / floor['p50']:6.1f}x
  latency p99         {floor['p99'] * 1000:8.2f} ms       {ours['p99'] * 1000:8.2f} ms   {ours['p99'] / floor['p99']:6.1f}x
  throughput          {floor['throughput']:8.0f} /s       {ours['throughput']:8.0f} /s   {ours['throughput'] / floor['throughput']:6.2f}x
""", flush=True)
    return {"floor": floor, "parley": ours, "latency_samples": LATENCY_SAMPLES, "throughput_events": THROUGHPUT_EVENTS,
            "writers": WRITERS}
