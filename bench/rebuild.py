"""Inbox projection rebuild: the conversation service's inbox (conversation/projection.py)
rebuilt from `conversation.events` by the ConsumerRunner (exactly-once effect: claims and
offsets in the same transactions), into a scratch schema - events per second against a
raw aiokafka consume of the same topic from the beginning. Goal: ≥ 30 %.

The topic holds what the rest of `make bench` wrote (every ladder and fan-out message)."""
from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import TopicPartition

from parley import db, kafka
from parley.consumer import ConsumerRunner
from parley.envelope import Event

from bench.common import Ticker, progress

TOPIC = "conversation.events"


async def _end_offsets(bootstrap: str) -> tuple[list[TopicPartition], int]:
    consumer = kafka.consumer(bootstrap, None)
    await consumer.start()
    try:
        partitions = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC) or [])]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC) or [])]
        begin = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return partitions, sum(end[tp] - begin[tp] for tp in partitions)


async def raw_consume(bootstrap: str, partitions: list[TopicPartition], total: int, timeout: float) -> dict:
    """Reads and parses every record (Event.from_bytes), as a consumer must, and nothing more."""
    consumer = kafka.consumer(bootstrap, None)
    await consumer.start()
    got = 0
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started = time.perf_counter()
        first: float | None = None
        tick = Ticker()
        while got < total and time.perf_counter() - started < timeout:
            for records in (await consumer.getmany(timeout_ms=500, max_records=500)).values():
                if first is None and records:
                    first = time.perf_counter()
                for r in records:
                    Event.from_bytes(r.value)
                got += len(records)
            tick(lambda: f"rebuild floor: raw consume {got}/{total}")
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    steady = elapsed - ((first - started) if first else 0.0)
    return {"events": got, "seconds": round(elapsed, 2), "startup_s": round((first - started) if first else elapsed, 2),
            "events_per_s": round(got / steady, 1) if steady > 0 else 0.0,
            "events_per_s_with_startup": round(got / elapsed, 1)}


async def rebuild(database_url: str, bootstrap: str, total: int, timeout: float) -> dict:
    from conversation import projection
    import conversation.__main__ as conversation_main

    schema = f"bench_inbox_{uuid.uuid4().hex[:8]}"
    pool = await db.create_pool(database_url, schema, max_size=4)
    await db.migrate(pool, schema, conversation_main.SPEC.migrations)
    applied = 0
    read = 0
    first_applied: float | None = None

    async def handle(conn, event: Event) -> None:
        nonlocal applied, first_applied
        if first_applied is None:
            first_applied = time.perf_counter()
        await projection.apply(conn, event)
        applied += 1

    async def reset(conn) -> None:
        await conn.execute("truncate conversations, visitor_conversations")

    runner = ConsumerRunner(pool, bootstrap, name=f"bench-inbox-{schema}", topics=[TOPIC], handle=handle, reset=reset)
    await runner.rebuild()
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(runner.run(stop))
    tick = Ticker()
    try:
        # Duplicates are skipped, not counted by the handler: done is "every partition read to its end".
        while time.perf_counter() - started < timeout and not task.done():
            await asyncio.sleep(0.1)
            offsets = await pool.fetch("select next_offset from consumer_offsets where consumer = $1", runner.name)
            read = sum(r["next_offset"] for r in offsets)
            tick(lambda: f"rebuild: {read}/{total} events read, {applied} applied")
            if read >= total:
                break
        elapsed = time.perf_counter() - started
        rows = await pool.fetchval("select count(*) from conversations")
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await pool.execute(f"drop schema {schema} cascade")
        await pool.close()
    # Offsets start at 0 (topics keep every event), so the stored offsets add up to the events read.
    # events_per_s counts from the first event applied: the group join before it (a few
    # seconds of waiting, not work) is reported apart, as startup_s.
    steady = elapsed - ((first_applied - started) if first_applied else 0.0)
    return {"events": read, "applied": applied, "seconds": round(elapsed, 2),
            "startup_s": round((first_applied - started) if first_applied else elapsed, 2),
            "events_per_s": round(read / steady, 1) if steady > 0 else 0.0,
            "events_per_s_with_startup": round(read / elapsed, 1), "inbox_rows": rows, "finished": read >= total}


async def run(comps, *, timeout: float) -> dict:
    partitions, total = await _end_offsets(comps.bootstrap)
    progress(f"rebuild floor: raw aiokafka consume of {TOPIC}, {total} events from the beginning...")
    floor = await raw_consume(comps.bootstrap, partitions, total, timeout)
    progress(f"rebuild floor: {floor['events_per_s']:.0f} events/s; now the inbox projection rebuild...")
    ours = await rebuild(comps.database_url, comps.bootstrap, total, timeout)
    ratio = ours["events_per_s"] / floor["events_per_s"] if floor["events_per_s"] else None
    progress(f"rebuild: {ours['events_per_s']:.0f} events/s, {ratio:.0%} of the raw consume" if ratio else "rebuild: no events")
    return {"topic": TOPIC, "events_in_topic": total, "raw": floor, "rebuild": ours,
            "ratio": round(ratio, 3) if ratio else None, "goal_ratio": 0.30}
