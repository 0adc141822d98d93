"""Inbox projection rebuild: the conversation service's inbox (conversation/projection.py)
rebuilt from `conversation.events` by the ConsumerRunner (exactly-once effect: claims and
offsets in the same transactions), into a scratch schema - events per second against a
raw aiokafka consume of the same topic from the beginning. Goal: >= 30 %.

The topic is `conversation.events` with what the rest of `make bench` wrote (every
ladder and fan-out message) when that is at least `fill` events (size rebuild_events);
else - the section run alone, or a ladder that wrote little - a fresh topic of as many
partitions, filled with `fill` events of realistic conversations
(bench/chat_histories.py), so that both rates are measured over enough events to mean
something.

The projection applies each partition batch set-based (ConsumerRunner's handle_batch,
projection.replay): the batch's claims, effects and offset in one transaction."""
from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import TopicPartition

from parley import db, kafka
from parley.consumer import ConsumerRunner
from parley.envelope import Event
from parley.schemas import Topic
from parley.subject_keys import LocalOpener

from bench import chat_histories
from bench.common import Ticker, progress

TOPIC = "conversation.events"


async def _end_offsets(bootstrap: str, topic: str) -> tuple[list[TopicPartition], int]:
    consumer = kafka.consumer(bootstrap, None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
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


async def fill_topic(bootstrap: str, partitions: int, events: int) -> str:
    """A fresh topic with about `events` events of realistic conversations, keyed by
    stream as the relay keys them."""
    topic = f"bench.inbox-rebuild.{uuid.uuid4().hex[:8]}"
    await kafka.create_topics(bootstrap, [Topic(topic, "bench", ("conversation",), partitions, 1, {})])
    producer = kafka.producer(bootstrap, linger_ms=20)
    await producer.start()
    tick = Ticker()
    try:
        sent = []
        for i, event in enumerate(chat_histories.events(events)):
            sent.append(await producer.send(topic, event.to_bytes(), key=event.stream_id.encode()))
            tick(lambda: f"rebuild: filling {topic}, {i + 1}/~{events} events")
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return topic


async def rebuild(database_url: str, bootstrap: str, topic: str, total: int, timeout: float) -> dict:
    from conversation import projection
    import conversation.__main__ as conversation_main

    schema = f"bench_inbox_{uuid.uuid4().hex[:8]}"
    pool = await db.create_pool(database_url, schema, max_size=8)   # a connection per partition
    await db.migrate(pool, schema, conversation_main.SPEC.migrations)
    applied = 0
    read = 0
    first_applied: float | None = None

    async def handle_batch(conn, events: list[Event]) -> None:
        nonlocal applied, first_applied
        if first_applied is None:
            first_applied = time.perf_counter()
        await projection.replay(conn, events)
        applied += len(events)

    async def reset(conn) -> None:
        await conn.execute("truncate conversations, visitor_conversations, conversation_messages, ratings")

    # Large batches: a conversation's row is written once per batch, whatever its events in it;
    # a poll's partitions in concurrent transactions: the database works while this process parses.
    # What the services wrote is sealed (parley/personal.py): opened with the conversation
    # service's keys, as its own rebuild would (a filled topic of its own is plain).
    keys = await db.create_pool(database_url, conversation_main.SPEC.schema, max_size=2)
    runner = ConsumerRunner(pool, bootstrap, name=f"bench-inbox-{schema}", topics=[topic], handle_batch=handle_batch,
                            reset=reset, max_records=20_000, fetch_bytes=4 << 20, concurrent_partitions=True,
                            opener=LocalOpener(keys).open)
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
        await keys.close()
    # Offsets start at 0 (topics keep every event), so the stored offsets add up to the events read.
    # events_per_s counts from the first event applied: the group join before it (a few
    # seconds of waiting, not work) is reported apart, as startup_s.
    steady = elapsed - ((first_applied - started) if first_applied else 0.0)
    return {"events": read, "applied": applied, "seconds": round(elapsed, 2),
            "startup_s": round((first_applied - started) if first_applied else elapsed, 2),
            "events_per_s": round(read / steady, 1) if steady > 0 else 0.0,
            "events_per_s_with_startup": round(read / elapsed, 1), "inbox_rows": rows, "finished": read >= total}


async def run(comps, *, timeout: float, fill: int = 0) -> dict:
    topic = TOPIC
    partitions, total = await _end_offsets(comps.bootstrap, topic)
    if total < fill:
        progress(f"rebuild: {topic} holds {total} events, fewer than {fill}: filling a topic of its own...")
        topic = await fill_topic(comps.bootstrap, len(partitions) or 6, fill)
        partitions, total = await _end_offsets(comps.bootstrap, topic)
    progress(f"rebuild floor: raw aiokafka consume of {topic}, {total} events from the beginning...")
    floor = await raw_consume(comps.bootstrap, partitions, total, timeout)
    progress(f"rebuild floor: {floor['events_per_s']:.0f} events/s; now the inbox projection rebuild...")
    ours = await rebuild(comps.database_url, comps.bootstrap, topic, total, timeout)
    ratio = ours["events_per_s"] / floor["events_per_s"] if floor["events_per_s"] else None
    progress(f"rebuild: {ours['events_per_s']:.0f} events/s, {ratio:.0%} of the raw consume" if ratio else "rebuild: no events")
    return {"topic": topic, "events_in_topic": total, "raw": floor, "rebuild": ours,
            "ratio": round(ratio, 3) if ratio else None, "goal_ratio": 0.30}
