"""Relay and consumer runner against a real Kafka broker and PostgreSQL: every event
appended reaches the consumer's effect exactly once, in per-stream order, through
concurrency, a SIGKILLed relay, replayed duplicates and a rebuild."""
import asyncio
import os
import signal
import subprocess
import sys

import pytest
from aiokafka import TopicPartition

from parley import consumer as consumer_module
from parley import kafka
from parley.consumer import DUPLICATES, GAPS, ConsumerRunner
from parley.envelope import Event, new_event
from parley.eventstore import EventStore
from parley.relay import Relay
from tests.conftest import TEST_PARTITIONS
from tests.support import Background, eventually, item_added

PROJECTION = """
create table if not exists applied (
    seq bigserial primary key,          -- the order in which the consumer applied events
    stream_id text not null,
    stream_version integer not null,    -- deliberately not unique: a double effect must show
    n integer not null
)"""


@pytest.fixture
async def store(pool, catalog, topic):
    await pool.execute(PROJECTION)
    return EventStore(pool, catalog, topic_for=lambda stream_id: topic)


def projection_runner(pool, platform, topic, catalog, name="projection"):
    async def handle(conn, event: Event):
        catalog.validate(event)  # what went over the wire still honours its schema
        await conn.execute("insert into applied (stream_id, stream_version, n) values ($1, $2, $3)",
                           event.stream_id, event.stream_version, event.data["n"])

    async def reset(conn):
        await conn.execute("truncate applied restart identity")

    return ConsumerRunner(pool, platform.bootstrap, name=f"{name}-{topic}", topics=[topic], handle=handle, reset=reset)


async def applied_count(pool) -> int:
    return await pool.fetchval("select count(*) from applied")


async def assert_exactly_once_in_order(pool, expected: dict[str, int]) -> None:
    """Each stream's versions applied once each, 1..n, in order."""
    rows = await pool.fetch("select stream_id, stream_version from applied order by seq")
    seen: dict[str, list[int]] = {}
    for r in rows:
        seen.setdefault(r["stream_id"], []).append(r["stream_version"])
    assert seen.keys() == expected.keys()
    for stream, versions in seen.items():
        assert versions == list(range(1, expected[stream] + 1)), f"{stream}: {versions[:30]}"


async def test_20_concurrent_writers_500_events_each_reach_the_consumer_once_in_order(
        platform, pool, store, topic, catalog, schema_name):
    writers, per_writer, streams_per_writer = 20, 500, 25

    async def writer(w: int):
        versions = [0] * streams_per_writer
        for i in range(per_writer):
            s = i % streams_per_writer
            await store.append([item_added(f"item-w{w}s{s}", i)], expected_version=versions[s])
            versions[s] += 1

    async with Background() as bg:
        bg.start(Relay(platform.database_url, schema_name, platform.bootstrap).run)
        bg.start(projection_runner(pool, platform, topic, catalog).run)
        await asyncio.gather(*[writer(w) for w in range(writers)])
        await eventually(lambda: _at_least(pool, writers * per_writer), timeout=120, what="10,000 events applied")
        await asyncio.sleep(1)  # a late duplicate would land now
    assert await applied_count(pool) == writers * per_writer
    await assert_exactly_once_in_order(pool, {f"item-w{w}s{s}": per_writer // streams_per_writer
                                              for w in range(writers) for s in range(streams_per_writer)})


async def _at_least(pool, n: int) -> bool:
    return await applied_count(pool) >= n


async def test_relay_killed_with_sigkill_mid_stream_loses_nothing_and_duplicates_are_absorbed(
        platform, pool, store, topic, catalog, schema_name):
    streams, per_stream = 50, 60
    total = streams * per_stream

    async def write():
        for v in range(per_stream):  # interleaved, so every batch spans many streams
            for s in range(streams):
                await store.append([item_added(f"item-k{s}", v)], expected_version=v)

    def start_relay() -> subprocess.Popen:
        env = {**os.environ, "DATABASE_URL": platform.database_url, "KAFKA_BOOTSTRAP_SERVERS": platform.bootstrap}
        return subprocess.Popen([sys.executable, "-m", "parley.relay", "--schema", schema_name, "--batch-size", "50"],
                                env=env, stderr=subprocess.DEVNULL)

    async def progress() -> int:
        return await pool.fetchval("select coalesce(max(position), 0) from relay_cursors")

    relay = start_relay()
    writing = asyncio.create_task(write())
    try:
        await eventually(lambda: _above(progress, 200), timeout=60, what="the relay to publish some batches")
        relay.send_signal(signal.SIGKILL)
        relay.wait()
        killed_at = await progress()
        await writing
        assert 0 < killed_at < total, "the relay must die mid-stream for this test to mean anything"
        # A crash after Kafka acknowledged a batch but before progress was recorded: the next
        # relay republishes from the recorded position. Rewind every shard's cursor to make
        # that certain.
        await pool.execute("update relay_cursors set position = least(position, $1)", killed_at // 2)
        relay = start_relay()
        async with Background() as bg:
            bg.start(projection_runner(pool, platform, topic, catalog).run)
            await eventually(lambda: _at_least(pool, total), timeout=120, what=f"{total} events applied")
            await eventually(lambda: _above(progress, total - 1), timeout=60, what="the relay to finish")
            await asyncio.sleep(1)
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(15)
    assert relay.returncode == 0, "the relay stops cleanly on SIGTERM"
    on_the_wire = await _count_messages(platform.bootstrap, topic)
    assert on_the_wire > total, "the rewind republished events"
    assert await applied_count(pool) == total
    await assert_exactly_once_in_order(pool, {f"item-k{s}": per_stream for s in range(streams)})


async def _above(probe, n: int) -> bool:
    return await probe() > n


async def _count_messages(bootstrap: str, topic: str) -> int:
    consumer = kafka.consumer(bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(TEST_PARTITIONS)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await consumer.stop()


async def test_a_rebuilt_projection_equals_the_incremental_one(platform, pool, store, topic, catalog, schema_name):
    runner = projection_runner(pool, platform, topic, catalog)

    async def append_round(r: int):
        for s in range(30):
            await store.append([item_added(f"item-r{s}", r * 100 + s)], expected_version=r)

    async with Background() as bg:
        bg.start(Relay(platform.database_url, schema_name, platform.bootstrap).run)
        consumer = bg.start(runner.run)
        for r in range(10):  # the consumer applies while writes are still arriving
            await append_round(r)
        await eventually(lambda: _at_least(pool, 300), what="300 events applied incrementally")
        bg.stop.set()
        await consumer
        incremental = await pool.fetch("select stream_id, stream_version, n from applied order by stream_id, stream_version")

        await runner.rebuild()
        assert await applied_count(pool) == 0
        bg.stop.clear()
        bg.start(runner.run)
        await eventually(lambda: _at_least(pool, 300), what="300 events re-applied")
        await asyncio.sleep(1)
    rebuilt = await pool.fetch("select stream_id, stream_version, n from applied order by stream_id, stream_version")
    assert len(incremental) == 300
    assert rebuilt == incremental


async def test_a_consumer_stopped_mid_stream_resumes_without_loss_or_double_effect(
        platform, pool, store, topic, catalog, schema_name):
    for v in range(40):
        for s in range(25):
            await store.append([item_added(f"item-g{s}", v)], expected_version=v)
    duplicates_before = DUPLICATES.labels(f"projection-{topic}")._value.get()
    async with Background() as bg:
        bg.start(Relay(platform.database_url, schema_name, platform.bootstrap).run)
        for _ in range(3):  # stop and restart the consumer three times while it works
            stop = asyncio.Event()
            task = asyncio.create_task(projection_runner(pool, platform, topic, catalog).run(stop))
            await eventually(lambda: _above(lambda: applied_count(pool), 0), what="some progress")
            stop.set()
            await task
        stop = asyncio.Event()
        task = asyncio.create_task(projection_runner(pool, platform, topic, catalog).run(stop))
        await eventually(lambda: _at_least(pool, 1000), what="1000 events applied")
        await asyncio.sleep(1)
        stop.set()
        await task
    await assert_exactly_once_in_order(pool, {f"item-g{s}": 40 for s in range(25)})
    # offsets are stored with the effect, so a graceful restart replays nothing: every
    # duplicate skipped must be one the relay put on the wire twice (it may, on a retry)
    republished = await _count_messages(platform.bootstrap, topic) - 1000
    assert DUPLICATES.labels(f"projection-{topic}")._value.get() - duplicates_before == republished


def _item_added_consumer(pool, platform, name: str, topic: str):
    """A consumer of test.item_added only: what it handled, a runner maker, and the sum of
    its stored offsets."""
    handled: list[tuple[str, int]] = []

    async def handle(conn, event: Event):
        handled.append((event.stream_id, event.stream_version))

    def runner():
        return ConsumerRunner(pool, platform.bootstrap, name=name, topics=[topic], handle=handle,
                              types=frozenset({"test.item_added"}))

    async def stored() -> int:
        return await pool.fetchval("select coalesce(sum(next_offset), 0) from consumer_offsets where consumer = $1",
                                   name)
    return handled, runner, stored


async def test_a_consumer_of_some_types_claims_only_their_streams_and_still_applies_them_once_in_order(
        platform, pool, store, topic, catalog, schema_name):
    """ConsumerSpec.types (issue 21): events of other types only move the offset - no
    claim of their streams, no handler - and the ones it acts on are still applied once
    each, in order, through a republished stretch, with no gap counted for the skipped."""
    for v in range(20):
        for s in range(10):
            stream = f"item-f{s}"
            seen = new_event("test.item_seen", stream, {"n": v})
            await store.append([item_added(stream, v) if v % 4 == 0 or s == 0 else seen], expected_version=v)
    name = f"filtered-{topic}"
    handled, runner, offsets = _item_added_consumer(pool, platform, name, topic)   # offsets: past every event

    gaps_before = GAPS.labels(name)._value.get()
    async with Background() as bg:
        bg.start(Relay(platform.database_url, schema_name, platform.bootstrap).run)
        bg.start(runner().run)
        await eventually(lambda: len(handled) >= 10 * 5 + 15, what="the wanted events applied")
        # The relay puts everything on the wire again; nothing is applied twice.
        await pool.execute("update relay_cursors set position = 0")
        await eventually(lambda: _above(offsets, 399), what="the republished stretch consumed")
        await asyncio.sleep(1)
    expected = {f"item-f{s}": [v + 1 for v in range(20) if v % 4 == 0 or s == 0] for s in range(10)}
    by_stream: dict[str, list[int]] = {}
    for stream, version in handled:
        by_stream.setdefault(stream, []).append(version)
    assert by_stream == expected
    claimed = dict(await pool.fetch("select stream_id, stream_version from consumer_streams where consumer = $1", name))
    assert claimed == {stream: versions[-1] for stream, versions in expected.items()}
    assert await offsets() == await _count_messages(platform.bootstrap, topic) == 400
    assert GAPS.labels(name)._value.get() == gaps_before


async def test_a_run_of_skipped_events_stores_its_offset_later_and_a_restart_applies_nothing_twice(
        platform, pool, store, topic, catalog, schema_name, monkeypatch):
    """Batches with nothing for the handler commit no transaction of their own (issue 21):
    the offset past them waits (here until the runner stops), and is stored then; a runner
    that never stored it (a crash) replays only events it skips again."""
    monkeypatch.setattr(consumer_module, "OFFSET_DEFER_SECONDS", 3600.0)
    name = f"deferring-{topic}"
    handled, runner, stored = _item_added_consumer(pool, platform, name, topic)

    for s in range(TEST_PARTITIONS * 4):   # one wanted event per stream: every partition stores an offset
        await store.append([item_added(f"item-d{s}", 0)], expected_version=0)
    streams = TEST_PARTITIONS * 4
    async with Background() as bg:
        bg.start(Relay(platform.database_url, schema_name, platform.bootstrap).run)
        first = runner()
        bg.start(first.run)
        await eventually(lambda: len(handled) == streams, what="the wanted events applied")
        await eventually(lambda: _above(stored, streams - 1), what="their offsets stored")
        for v in range(1, 11):
            for s in range(streams):
                await store.append([new_event("test.item_seen", f"item-d{s}", {"n": v})], expected_version=v)
        await eventually(lambda: sum(first.positions.values()) >= streams * 11, what="the skipped events read")
        await asyncio.sleep(0.5)
        assert await stored() == streams, "a batch with nothing to apply wrote no offset of its own"
        assert first.skipped, "the offsets past them wait"
    assert await stored() == await _count_messages(platform.bootstrap, topic), "the runner stopping stored them"

    # A runner that dies before storing them (its successor starts from the last stored
    # offsets) reads the skipped events again and applies only what is new.
    await pool.execute("update consumer_offsets set next_offset = next_offset - 10 where consumer = $1", name)
    for s in range(streams):
        await store.append([item_added(f"item-d{s}", 11)], expected_version=11)
    async with Background() as bg:
        bg.start(Relay(platform.database_url, schema_name, platform.bootstrap).run)
        bg.start(runner().run)
        await eventually(lambda: len(handled) == 2 * streams, what="the new wanted events applied")
        await asyncio.sleep(1)
    assert sorted(handled) == sorted((f"item-d{s}", v) for s in range(streams) for v in (1, 12))


async def test_an_idempotent_consumer_keeps_only_its_offset_and_resumes_from_it(
        platform, pool, store, topic, catalog, schema_name):
    """ConsumerSpec.idempotent (the search entries): no claims by stream version are
    written, the offset is, and a consumer stopped and started again goes on from it -
    every event applied, none of the earlier ones again."""
    for v in range(10):
        for s in range(10):
            await store.append([item_added(f"item-i{s}", v)], expected_version=v)
    name = f"idempotent-{topic}"
    handled: list[tuple[str, int]] = []

    async def handle(conn, events: list[Event]):
        handled.extend((e.stream_id, e.stream_version) for e in events)

    def runner():
        return ConsumerRunner(pool, platform.bootstrap, name=name, topics=[topic], handle_batch=handle, idempotent=True)

    async with Background() as bg:
        bg.start(Relay(platform.database_url, schema_name, platform.bootstrap).run)
        first = bg.start(runner().run)
        await eventually(lambda: len(handled) >= 100, what="100 events applied")
        bg.stop.set()
        await first
        for s in range(10):
            await store.append([item_added(f"item-i{s}", 10)], expected_version=10)
        bg.stop.clear()
        bg.start(Relay(platform.database_url, schema_name, platform.bootstrap).run)
        bg.start(runner().run)
        await eventually(lambda: len(handled) >= 110, what="the next 10 applied")
        await asyncio.sleep(1)
    assert sorted(handled) == sorted((f"item-i{s}", v + 1) for s in range(10) for v in range(11))   # each once
    assert await pool.fetchval("select count(*) from consumer_streams where consumer = $1", name) == 0
    assert await pool.fetchval("select sum(next_offset) from consumer_offsets where consumer = $1", name) == 110
