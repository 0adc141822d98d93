"""The inbox rebuilt from Kafka equals the one kept live (issue 12, item 7's rebuild).

Live: realistic conversations (bench/chat_histories.py: every event type the inbox
projection handles, returning visitors) go through the conversation service's command
path (commands.run: the append, and the projection in its transaction) on real
PostgreSQL; the relay publishes them to a real Kafka topic, and publishes the later
half again (a relay that crashed before recording its progress). Rebuilt: the
ConsumerRunner in batch mode (projection.replay), its partitions' batches in concurrent
transactions, reads the topic from the beginning into a scratch schema. Every table the projection writes must be equal, row for row,
and every republished event skipped as a duplicate."""
from __future__ import annotations

import contextlib
import random
import uuid

import pytest
from aiokafka import TopicPartition

from parley import db, kafka
from parley.consumer import DUPLICATES, ConsumerRunner
from parley.eventstore import EventStore
from parley.relay import Relay
from parley.subject_keys import LocalOpener, Sealer
from tests.support import Background, eventually

import conversation.__main__ as service
from conversation import commands, projection
from bench import chat_histories

TABLES = {"conversations": "id", "visitor_conversations": "project_id, visitor_id",
          "conversation_messages": "conversation_id, side, message_id", "ratings": "conversation_id"}
HANDLED = {"chat.conversation_started", "chat.visitor_message_posted", "chat.operator_replied",
           "chat.custom_params_set", "chat.contacts_given", "chat.page_visited", "chat.read_by_operator",
           "chat.rated", "assignment.taken", "assignment.assigned", "assignment.accepted", "assignment.offered",
           "assignment.offer_expired", "status.changed", "lead.requested"}


@contextlib.asynccontextmanager
async def conversation_schemas(platform, count: int, max_size: int):
    """`count` fresh schemas migrated as the conversation service's: (name, pool) each."""
    made = []
    try:
        for _ in range(count):
            name = f"t_{uuid.uuid4().hex[:12]}"
            pool = await db.create_pool(platform.database_url, name, max_size=max_size)
            made.append((name, pool))
            await db.migrate(pool, name, service.SPEC.migrations)
        yield made
    finally:
        for name, pool in made:
            await pool.execute(f"drop schema {name} cascade")
            await pool.close()


@pytest.fixture
async def schemas(platform):
    """A live schema and a scratch one, both migrated as the conversation service's."""
    async with conversation_schemas(platform, 2, max_size=6) as pools:
        yield pools


async def live_conversations(store: EventStore, lives: int, seed: int) -> None:
    """Run the lives' steps as commands, interleaved; a returning visitor's next
    conversation after the closed one."""
    rng = random.Random(seed)
    running = [(chat_histories.life(rng), 0) for _ in range(lives)]
    while running:
        i = rng.randrange(len(running))
        life, step = running[i]
        await commands.run(store, str(uuid.uuid4()), life.conversation_id, life.steps[step])
        if step + 1 < len(life.steps):
            running[i] = (life, step + 1)
        elif life.then is not None:
            running[i] = (life.then, 0)
        else:
            running.pop(i)


async def table(pool, name: str, key: str) -> dict[str, str]:
    return {r["k"]: r["r"] for r in await pool.fetch(f"select ({key})::text as k, t::text as r from {name} t")}


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = kafka.consumer(bootstrap, None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        return await consumer.end_offsets([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    finally:
        await consumer.stop()


async def test_the_inbox_rebuilt_from_kafka_equals_the_live_one_with_duplicates_absorbed(
        platform, schemas, topic, catalog):
    (live_schema, live), (_, scratch) = schemas
    store = EventStore(live, catalog, topic_for=lambda stream_id: topic)
    await live_conversations(store, lives=24, seed=5)
    events = await live.fetchval("select count(*) from events")
    types = {r[0] for r in await live.fetch("select distinct type from events")}
    assert HANDLED <= types, f"the mix lacks {HANDLED - types}"
    assert await live.fetchval("select count(*) from events where data ? 'previous_conversation_id'") >= 1

    async def all_published() -> bool:   # every shard's cursor at its last event
        return await live.fetchval("""select bool_and(exists (select 1 from relay_cursors c where c.shard = e.shard
                                                               and c.position >= e.last))
                                      from (select shard, max(position) as last from events group by shard) e""")

    async with Background() as bg:
        bg.start(Relay(platform.database_url, live_schema, platform.bootstrap, poll_interval=0.1,
                       sealer=Sealer()).run)
        await eventually(all_published, timeout=30, what="the relay to publish every event")
    # The relay crashed after Kafka took the later half, before recording it: it sends it again.
    half = await live.fetchval("select max(position) / 2 from events")
    await live.execute("update relay_cursors set position = least(position, $1)", half)
    async with Background() as bg:
        bg.start(Relay(platform.database_url, live_schema, platform.bootstrap, poll_interval=0.1,
                       sealer=Sealer()).run)
        await eventually(all_published, timeout=30, what="the relay to publish again")
    ends = await end_offsets(platform.bootstrap, topic)
    on_the_wire = sum(ends.values())
    assert on_the_wire > events, "the rewind republished events"

    # Sealed on the wire as the service's relay seals them; opened with the live schema's keys.
    runner = ConsumerRunner(scratch, platform.bootstrap, name=f"rebuild-{topic}", topics=[topic],
                            handle_batch=projection.replay, max_records=200, concurrent_partitions=True,
                            opener=LocalOpener(live).open)
    duplicates_before = DUPLICATES.labels(runner.name)._value.get()

    async def read_to_the_end() -> bool:
        rows = await scratch.fetch("select topic, partition, next_offset from consumer_offsets where consumer = $1",
                                   runner.name)
        read = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        return all(read.get(tp, 0) >= end for tp, end in ends.items())

    async with Background() as bg:
        bg.start(runner.run)
        await eventually(read_to_the_end, timeout=60, what="the rebuild to read the topic to its end")
    assert DUPLICATES.labels(runner.name)._value.get() - duplicates_before == on_the_wire - events
    for name, key in TABLES.items():
        kept, rebuilt = await table(live, name, key), await table(scratch, name, key)
        assert kept, f"live {name} is empty: the test proves nothing"
        assert rebuilt == kept, f"{name}: {len(kept.keys() ^ rebuilt.keys())} rows missing or extra, " \
                                f"{sum(kept[k] != rebuilt[k] for k in kept.keys() & rebuilt.keys())} different"
