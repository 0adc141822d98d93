"""The event store's shards against real PostgreSQL and Kafka: shard assignment, the
shard count kept by the schema, appends of different shards not waiting for each
other, a reader of one shard never skipping a late commit under concurrent writers,
the relay publishing every event once in per-stream order across shards, and the
upgrade of a schema written before sharding."""
import asyncio
import collections
import uuid

import pytest

from parley import db
from parley.eventstore import EventStore, read_shard, shard_count, shard_of
from parley.relay import Relay
from tests.backbone.test_relay_and_consumer import PROJECTION, applied_count, projection_runner
from tests.support import Background, eventually, item_added


@pytest.fixture
def store(pool, catalog):
    return EventStore(pool, catalog, topic_for=lambda stream_id: "test.topic")


def test_a_stream_always_gets_the_same_shard_and_streams_spread_over_all_shards():
    # Pinned values: the assignment must never change between versions or processes.
    assert [shard_of(s, 8) for s in ("conversation-1", "operator-2", "project-demo")] == [5, 0, 6]
    assert shard_of("conversation-1", 256) == 181
    counts = collections.Counter(shard_of(f"conversation-{uuid.uuid4()}", 8) for _ in range(8000))
    assert set(counts) == set(range(8))
    assert min(counts.values()) > 800 and max(counts.values()) < 1200, counts
    assert {shard_of("x", 1) for _ in range(3)} == {0}


async def test_the_sql_form_of_the_hash_gives_the_same_shard(pool):
    ids = [f"conversation-{uuid.uuid4()}" for _ in range(50)] + ["", "проект-ü"]
    rows = await pool.fetch("select s, (('x' || left(md5(s), 8))::bit(32)::bigint % 8)::int as shard"
                            " from unnest($1::text[]) s", ids)
    assert {r["s"]: r["shard"] for r in rows} == {s: shard_of(s, 8) for s in ids}


async def test_a_new_schema_takes_the_configured_count_and_an_existing_one_keeps_its_own(platform):
    schema = f"t_{uuid.uuid4().hex[:12]}"
    pool = await db.create_pool(platform.database_url, schema)
    try:
        await db.migrate(pool, schema, event_shards=3)
        assert await shard_count(pool) == 3
        await db.migrate(pool, schema, event_shards=16)  # a later start configured differently
        assert await shard_count(pool) == 3
    finally:
        await pool.close()


async def test_appends_to_other_shards_do_not_wait_for_an_open_transaction(store, pool):
    """The point of sharding: a transaction holding shard A's lock holds up only shard A."""
    shards = await shard_count(pool)
    slow = "item-slow"
    same = next(f"item-same{i}" for i in range(1000) if shard_of(f"item-same{i}", shards) == shard_of(slow, shards))
    other = next(f"item-other{i}" for i in range(1000) if shard_of(f"item-other{i}", shards) != shard_of(slow, shards))
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await store.append([item_added(slow, 1)], expected_version=0, conn=conn)
        await asyncio.wait_for(store.append([item_added(other, 2)], expected_version=0), 5)  # not blocked
        same_shard = asyncio.create_task(store.append([item_added(same, 3)], expected_version=0))
        await asyncio.sleep(0.5)
        assert not same_shard.done(), "an append to the locked shard must wait for its commit"
        await tx.commit()
    await asyncio.wait_for(same_shard, 5)


async def test_cursor_readers_of_each_shard_see_every_event_once_in_stream_order_under_concurrent_writers(
        store, pool):
    """What the relay relies on, without Kafka: one reader per shard moving a cursor by
    `position > cursor` while 16 writers append to 64 streams never misses an event that
    committed late and never sees one twice, and sees each stream in version order."""
    shards = await shard_count(pool)
    writers, per_writer, streams = 16, 150, 64
    done = asyncio.Event()
    seen: dict[int, list] = {s: [] for s in range(shards)}

    async def reader(shard: int):
        cursor = 0
        while True:
            finished = done.is_set()  # decided before reading: the last pass sees everything
            batch = await read_shard(pool, shard, after=cursor, limit=50)
            seen[shard].extend(batch)
            if batch:
                cursor = batch[-1].position
            elif finished:
                return
            else:
                await asyncio.sleep(0.005)

    async def writer(w: int):
        for i in range(per_writer):
            stream = f"item-c{(w * 7 + i) % streams}"
            for _ in range(50):  # writers share streams: reload on conflict, as commands do
                version = len(await store.load(stream))
                try:
                    await store.append([item_added(stream, w * 1000 + i)], expected_version=version)
                    break
                except Exception as e:
                    if type(e).__name__ != "ConcurrencyConflict":
                        raise
            else:
                raise AssertionError("a writer never got its append in")

    readers = [asyncio.create_task(reader(s)) for s in range(shards)]
    await asyncio.gather(*[writer(w) for w in range(writers)])
    done.set()
    await asyncio.gather(*readers)

    everything = [s for batch in seen.values() for s in batch]
    assert len(everything) == writers * per_writer
    assert len({s.event.id for s in everything}) == writers * per_writer
    per_stream: dict[str, list[int]] = {}
    for shard, batch in seen.items():
        assert [s.position for s in batch] == sorted(s.position for s in batch)
        for s in batch:
            assert shard_of(s.event.stream_id, shards) == shard
            per_stream.setdefault(s.event.stream_id, []).append(s.event.stream_version)
    assert sum(len(v) for v in per_stream.values()) == writers * per_writer
    for stream, versions in per_stream.items():
        assert versions == list(range(1, len(versions) + 1)), stream


async def test_the_relay_publishes_every_shard_once_in_stream_order_with_concurrent_writers_and_3_shards(
        platform, catalog, topic):
    """The relay across shards on a schema with a non-default count, writers racing on
    shared streams (reload and retry, as commands do), the relay running throughout."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    pool = await db.create_pool(platform.database_url, schema, max_size=20)
    try:
        await db.migrate(pool, schema, event_shards=3)
        await pool.execute(PROJECTION)
        store = EventStore(pool, catalog, topic_for=lambda _: topic)
        writers, per_writer, streams = 12, 150, 40
        ok = collections.Counter()

        async def writer(w: int):
            for i in range(per_writer):
                stream = f"item-r{(w * 5 + i) % streams}"
                while True:
                    version = len(await store.load(stream))
                    try:
                        await store.append([item_added(stream, version + 1)], expected_version=version)
                        ok[stream] += 1
                        break
                    except Exception as e:
                        if type(e).__name__ != "ConcurrencyConflict":
                            raise

        async with Background() as bg:
            bg.start(Relay(platform.database_url, schema, platform.bootstrap, batch_size=40).run)
            bg.start(projection_runner(pool, platform, topic, catalog).run)
            await asyncio.gather(*[writer(w) for w in range(writers)])
            await eventually(lambda: _at_least(pool, writers * per_writer), timeout=120, what="every event applied")
            await asyncio.sleep(1)
        rows = await pool.fetch("select stream_id, stream_version, n from applied order by seq")
        assert len(rows) == writers * per_writer
        by_stream: dict[str, list[int]] = {}
        for r in rows:
            assert r["n"] == r["stream_version"]
            by_stream.setdefault(r["stream_id"], []).append(r["stream_version"])
        assert {s: v for s, v in by_stream.items()} == {s: list(range(1, n + 1)) for s, n in ok.items()}
        cursors = await pool.fetch("select shard, position from relay_cursors order by shard")
        assert [c["shard"] for c in cursors] == [0, 1, 2]
    finally:
        await pool.close()


async def _at_least(pool, n: int) -> bool:
    return await applied_count(pool) >= n


async def test_an_event_store_from_before_sharding_upgrades_and_publishes_each_unpublished_event_once(
        platform, catalog, topic):
    """A schema written by the previous version (one lock, one cursor), with its relay
    part-way: after the upgrade migration every event it had not published is published
    once, before the same streams' new events, and nothing it had published goes out again.
    The previous version, if still running, can neither append nor publish."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    pool = await db.create_pool(platform.database_url, schema, max_size=20)
    try:
        # The previous version's schema: only the first backbone migration.
        async with pool.acquire() as conn:
            await conn.execute(f"create schema {schema}")
            await conn.execute("create table schema_migrations (name text primary key,"
                               " applied_at timestamptz not null default now())")
            await conn.execute((db.BACKBONE_MIGRATIONS / "001_event_store.sql").read_text())
            await conn.execute("insert into schema_migrations (name) values ('backbone/001_event_store.sql')")
        old_insert = """insert into events (id, stream_id, stream_version, type, version, topic, occurred_at, data)
                        values ($1, $2, $3, $4, $5, $6, $7::text::timestamptz, $8)"""
        streams = [f"item-u{s}" for s in range(20)]
        for v in range(1, 6):  # as the previous version appended: positions in commit order
            for s in streams:
                e = item_added(s, v).with_version(v)
                await pool.execute(old_insert, e.id, s, v, e.type, e.version, topic, e.occurred_at, e.data)
        published_up_to = await pool.fetchval("select position from events order by position offset 39 limit 1")
        await pool.execute("insert into relay_progress (relay, position) values ('relay', $1)", published_up_to)

        assert (await db.migrate(pool, schema, event_shards=4))[0] == "backbone/002_event_shards.sql"   # then later ones
        await pool.execute(PROJECTION)
        # The previous version still running: its append and its relay's first query fail.
        e = item_added("item-u0", 99).with_version(6)
        with pytest.raises(Exception, match="events_shard_named"):
            await pool.execute(old_insert, e.id, "item-u0", 6, e.type, e.version, topic, e.occurred_at, e.data)
        with pytest.raises(Exception, match="relay_progress"):
            await pool.fetchval("select position from relay_progress where relay = 'relay'")

        store = EventStore(pool, catalog, topic_for=lambda _: topic)
        for v in range(6, 9):  # the new version appends to the same streams
            await asyncio.gather(*[store.append([item_added(s, v)], expected_version=v - 1) for s in streams])
        async with Background() as bg:
            bg.start(Relay(platform.database_url, schema, platform.bootstrap, batch_size=7).run)
            bg.start(projection_runner(pool, platform, topic, catalog).run)
            expected_total = 20 * 8 - 40
            await eventually(lambda: _at_least(pool, expected_total), timeout=90, what="the unpublished events")
            await asyncio.sleep(1.5)
        rows = await pool.fetch("select stream_id, stream_version from applied order by seq")
        assert len(rows) == expected_total
        first_published = {s: 1 + sum(1 for r in range(40) if streams[r % 20] == s) for s in streams}
        by_stream: dict[str, list[int]] = {}
        for r in rows:
            by_stream.setdefault(r["stream_id"], []).append(r["stream_version"])
        assert by_stream == {s: list(range(first_published[s], 9)) for s in streams}
        assert await pool.fetchval("select position from relay_cursors where shard = -1") == \
            await pool.fetchval("select max(position) from events where shard is null")
    finally:
        await pool.close()
