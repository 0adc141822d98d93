"""`python -m parley.admin privacy migrate`: topics written before personal data was
sealed (issue 20) rewritten, so that no plain-text personal data remains in Kafka.

For each event topic holding a record whose personal fields are readable
(personal.is_plain), in stages recorded in `topic_sealing` (in the schema that keeps the
subject keys), so a run stopped anywhere - a SIGKILL included - goes on from where it was:

1. copying     every record copied to `<topic>.sealing`, partition to partition, in
               order, its personal fields sealed under its conversation's key (made if
               it has none; the erased form if the conversation was erased). Each copy
               carries its source offset in a header; a resumed copy starts after the
               last one the staging topic really holds, so nothing is copied twice.
2. copied      the old topic deleted;
3. deleted     the topic made again as declared (asyncapi.yaml) and the staging copy
               copied back into it, resuming at its end;
4. copied_back every service's stored consumer positions on the topic moved to the new
               offsets (the same, unless the old topic had gaps), in one transaction with
               the stage;
5. offsets_moved  the staging topic deleted; then `done`.

A topic with nothing plain is left alone. Run it with the services stopped: it holds the
sealing service's relay lock throughout, and refuses to start while a relay holds it."""
from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from parley import db, kafka, personal
from parley.envelope import Event
from parley.relay import LEADER_LOCK
from parley.schemas import Topic
from parley.subject_keys import keys_for

SUFFIX = ".sealing"
SOURCE_OFFSET = "parley-source-offset"
CHUNK = 2000


class Refused(Exception):
    """The migration cannot run now (a relay is publishing); nothing was changed."""


@dataclass
class Progress:
    say: Callable[[str], None]
    every: int = 10_000

    def copied(self, topic: str, partition: int, done: int, total: int) -> None:
        if done == total or done % self.every < CHUNK:
            self.say(f"{topic}[{partition}]: {done:,} of {total:,} records")


def _offset_of(record) -> int:
    return int(next(v for k, v in record.headers if k == SOURCE_OFFSET))


class _Broker:
    """The admin client, a producer and a consumer with no group, for one run."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.producer = kafka.producer(bootstrap, linger_ms=20)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                         isolation_level="read_committed")

    async def __aenter__(self) -> "_Broker":
        await self.admin.start()
        await self.producer.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.producer.stop()          # every send was acknowledged: nothing is waiting in it
        await self.admin.close()
        # aiokafka's consumer with no group can take most of a minute to stop after reading
        # (its request timeout); it holds nothing of ours, so it is not waited for long.
        try:
            await asyncio.wait_for(self.consumer.stop(), 1)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass

    async def exists(self, name: str) -> bool:
        return name in await self.admin.list_topics()

    async def partitions(self, name: str) -> list[TopicPartition]:
        """Asked of the broker each time (the consumer's metadata covers only what it was
        assigned, and topics are made and deleted in this run)."""
        if not await self.exists(name):
            return []
        [described] = await self.admin.describe_topics([name])
        return [TopicPartition(name, p["partition"]) for p in sorted(described["partitions"],
                                                                      key=lambda p: p["partition"])]

    async def create(self, topic: Topic, name: str) -> None:
        """Made as declared; waits out a deletion of the same name still in progress."""
        brokers = len((await self.admin.describe_cluster())["brokers"])
        new = NewTopic(name, topic.partitions, min(topic.replicas, brokers),
                       topic_configs={**topic.config, "min.insync.replicas": str(min(2, brokers))})
        for _ in range(120):
            if await self.exists(name) and len(await self.partitions(name)) == topic.partitions:
                return
            try:
                await self.admin.create_topics([new])
            except TopicAlreadyExistsError:
                pass    # made by the previous run, or the old one not gone yet
            await asyncio.sleep(0.5)
        raise RuntimeError(f"topic {name} could not be made again: is a deletion stuck on the broker?")

    async def delete(self, name: str) -> None:
        if await self.exists(name):
            try:
                await self.admin.delete_topics([name])
            except UnknownTopicOrPartitionError:
                pass
        for _ in range(120):
            if not await self.exists(name):
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"topic {name} was not deleted by the broker within a minute")

    async def read(self, tp: TopicPartition, start: int, end: int):
        """Batches of the partition's records in [start, end)."""
        self.consumer.assign([tp])
        self.consumer.seek(tp, start)
        while await self.consumer.position(tp) < end:
            batch = (await self.consumer.getmany(tp, timeout_ms=1000, max_records=CHUNK)).get(tp, [])
            batch = [r for r in batch if r.offset < end]
            if batch:
                yield batch

    async def last(self, tp: TopicPartition):
        """The partition's last record, or None."""
        start, end = await self.bounds(tp)
        if end <= start:
            return None
        async for batch in self.read(tp, end - 1, end):
            return batch[-1]
        return None

    async def bounds(self, tp: TopicPartition) -> tuple[int, int]:
        return (await self.consumer.beginning_offsets([tp]))[tp], (await self.consumer.end_offsets([tp]))[tp]

    async def send(self, tp: TopicPartition, records, values: list[bytes] | None = None,
                   source_offsets: bool = False) -> None:
        """The records into `tp`, in order, with their keys, times and headers; `values`
        replace theirs; `source_offsets` adds each one's offset as a header."""
        acks = []
        for i, r in enumerate(records):
            headers = [*r.headers, (SOURCE_OFFSET, str(r.offset).encode())] if source_offsets else list(r.headers)
            acks.append(await self.producer.send(tp.topic, values[i] if values is not None else r.value, key=r.key,
                                                 partition=tp.partition, timestamp_ms=r.timestamp, headers=headers))
        await asyncio.gather(*acks)


def _event_of(record) -> Event | None:
    """The record's event, or None when it is not a Parley event (it carries no event's
    fields: copied as it is)."""
    try:
        return Event.from_bytes(record.value)
    except Exception:
        return None


async def _sealed_values(conn: asyncpg.Connection, records) -> list[bytes]:
    """The records' values with their personal fields sealed under the keys in `conn`'s schema."""
    events = [_event_of(r) for r in records]
    plain = [e for e in events if e is not None and personal.is_plain(e)]
    keys = await keys_for(conn, {personal.subject_of(e) for e in plain}, make=True)
    out = []
    for r, e in zip(records, events):
        if e is None or not personal.is_plain(e):
            out.append(r.value)
            continue
        key = keys[personal.subject_of(e)]
        out.append((personal.seal_event(e, key) if key is not None else personal.erase_event(e)).to_bytes())
    return out


async def _has_plain(broker: _Broker, name: str) -> bool:
    for tp in await broker.partitions(name):
        start, end = await broker.bounds(tp)
        async for batch in broker.read(tp, start, end):
            if any(e is not None and personal.is_plain(e) for e in map(_event_of, batch)):
                return True
    return False


async def _stage(conn: asyncpg.Connection, topic: str) -> str | None:
    return await conn.fetchval("select stage from topic_sealing where topic = $1", topic)


async def _set_stage(conn: asyncpg.Connection, topic: str, stage: str, records: int | None = None) -> None:
    await conn.execute(
        """insert into topic_sealing (topic, stage, records) values ($1, $2, coalesce($3, 0))
           on conflict (topic) do update set stage = excluded.stage, updated_at = now(),
               records = coalesce($3, topic_sealing.records)""", topic, stage, records)


async def _copy_sealing(broker: _Broker, conn: asyncpg.Connection, name: str, progress: Progress) -> int:
    """Copies what the staging topic does not hold yet; returns how many records it holds."""
    staging, held = name + SUFFIX, 0
    for tp, to in zip(await broker.partitions(name), await broker.partitions(staging)):
        start, end = await broker.bounds(tp)
        last = await broker.last(to)
        resume = _offset_of(last) + 1 if last is not None else start
        total = end - start
        async for batch in broker.read(tp, resume, end):
            await broker.send(to, batch, await _sealed_values(conn, batch), source_offsets=True)
            progress.copied(staging, tp.partition, batch[-1].offset + 1 - start, total)
        copy_start, copy_end = await broker.bounds(to)
        held += copy_end - copy_start
    return held


async def _check_whole(broker: _Broker, name: str, staging: str) -> None:
    """The staging copy holds every record of the topic, partition by partition: the one
    check between the copy and deleting the original."""
    sources, copies = await broker.partitions(name), await broker.partitions(staging)
    if len(sources) != len(copies) or not sources:
        raise RuntimeError(f"{staging} has {len(copies)} partitions, {name} {len(sources)}: not deleting {name}")
    for tp, to in zip(sources, copies):
        start, end = await broker.bounds(tp)
        last = await broker.last(to)
        if end > start and (last is None or _offset_of(last) != end - 1):
            raise RuntimeError(f"{staging}[{to.partition}] stops before {name}'s end ({end}): not deleting {name}")


async def _copy_back(broker: _Broker, name: str, progress: Progress) -> None:
    staging = name + SUFFIX
    for tp, to in zip(await broker.partitions(staging), await broker.partitions(name)):
        start, end = await broker.bounds(tp)
        resume = start + (await broker.bounds(to))[1]     # the staging copy has no gaps: written by us, in order
        async for batch in broker.read(tp, resume, end):
            await broker.send(to, batch)
            progress.copied(name, tp.partition, batch[-1].offset + 1 - start, end - start)


async def _move_offsets(broker: _Broker, conn: asyncpg.Connection, name: str, schemas: list[str]) -> int:
    """Every schema's stored consumer positions on `name` from old offsets to new, with
    the stage, in one transaction; how many positions moved."""
    old_offsets: dict[int, list[int]] = {}
    for tp in await broker.partitions(name):
        start, end = await broker.bounds(tp)
        offsets = old_offsets.setdefault(tp.partition, [])
        async for batch in broker.read(tp, start, end):
            offsets += [_offset_of(r) for r in batch]
    moved = 0
    async with conn.transaction():
        for schema in schemas:
            if not await conn.fetchval("select to_regclass($1) is not null", f'"{schema}".consumer_offsets'):
                continue
            rows = await conn.fetch(f'select consumer, partition, next_offset from "{schema}".consumer_offsets '
                                    "where topic = $1", name)
            for r in rows:
                new = bisect.bisect_left(old_offsets.get(r["partition"], []), r["next_offset"])
                if new != r["next_offset"]:
                    await conn.execute(f'update "{schema}".consumer_offsets set next_offset = $4 '
                                       "where consumer = $1 and topic = $2 and partition = $3",
                                       r["consumer"], name, r["partition"], new)
                    moved += 1
        await _set_stage(conn, name, "offsets_moved")
    return moved


async def migrate(database_url: str, keys_schema: str, bootstrap: str, topics: list[Topic], schemas: list[str],
                  say: Callable[[str], None] = print) -> dict[str, str]:
    """Rewrite every topic of `topics` that holds plain personal data; returns topic ->
    what happened ("already sealed", "rewritten sealed: N records", "done before")."""
    progress = Progress(say)
    conn = await db.connect(database_url, keys_schema)
    outcome: dict[str, str] = {}
    try:
        if not await conn.fetchval(LEADER_LOCK, keys_schema):
            raise Refused(f"the {keys_schema} service's relay is running: stop the Parley services first, "
                          "then run this again.")
        async with _Broker(bootstrap) as broker:
            for topic in topics:
                name, stage = topic.name, await _stage(conn, topic.name)
                if stage == "done":
                    outcome[name] = "done before"
                    continue
                if stage is None:
                    say(f"{name}: looking for plain personal data")
                    if not await broker.exists(name) or not await _has_plain(broker, name):
                        outcome[name] = "already sealed"
                        continue
                    say(f"{name}: plain personal data found; copying it sealed into {name}{SUFFIX}")
                    await broker.create(topic, name + SUFFIX)
                    await _set_stage(conn, name, "copying")
                    stage = "copying"
                if stage == "copying":
                    await _set_stage(conn, name, "copied", await _copy_sealing(broker, conn, name, progress))
                    stage = "copied"
                if stage == "copied":
                    await _check_whole(broker, name, name + SUFFIX)
                    say(f"{name}: deleting the old topic")
                    await broker.delete(name)
                    await _set_stage(conn, name, "deleted")
                    stage = "deleted"
                if stage == "deleted":
                    say(f"{name}: making it again and copying the sealed records back")
                    await broker.create(topic, name)
                    await _copy_back(broker, name, progress)
                    await _set_stage(conn, name, "copied_back")
                    stage = "copied_back"
                if stage == "copied_back":
                    moved = await _move_offsets(broker, conn, name, schemas)
                    say(f"{name}: consumers' stored positions moved: {moved}")
                    stage = "offsets_moved"
                if stage == "offsets_moved":
                    say(f"{name}: deleting the staging copy {name}{SUFFIX}")
                    await broker.delete(name + SUFFIX)
                    await _set_stage(conn, name, "done")
                records = await conn.fetchval("select records from topic_sealing where topic = $1", name)
                outcome[name] = f"rewritten sealed: {records:,} records"
    finally:
        await conn.close()
    return outcome
