"""Consumer runner: at-least-once delivery from Kafka, exactly-once effect in PostgreSQL.

For each batch of one partition, one transaction holds: the handler's effects, the
last applied version of each stream (an event at or below it is a duplicate - e.g. a
relay republishing after a crash - and is skipped), and the Kafka offset to resume
from. The claim is made for the whole batch at once (one statement locks and reads the
stored version of every stream in it, one more stores the new versions with the
offset), so a batch costs a constant number of round trips besides its handler's.
A handler takes one event (`handle`) or the batch's new events at once
(`handle_batch`, for a projection that writes them set-based). On partition assignment
the runner seeks to the offsets stored with the state (the pattern of aiokafka's
local_state_consumer example), so a crash anywhere replays only what was not
committed, and the replay is absorbed.

A handler whose effect is the same when a run of events is applied again in order (an
upsert by key, a delete: the search entries) may say so (`idempotent`): then the batch
stores its offset alone, without the two statements over every stream in it - at 1,000
messages a second those were a row written and a row updated per message.

A batch with nothing for the handler (a consumer of lead requests reading a run of
visitor messages) commits no transaction of its own: its partition's offset is stored
with the next batch that has work, or after OFFSET_DEFER_SECONDS by itself. A crash in
between replays only events the consumer skips again. At 1,000 messages a second the
five consumers that act on one event in a hundred made 0.8 SQL statements a message
this way, as many as the whole command path (issue 21).

A projection is rebuilt by `rebuild()`: its reset and the tracking rows are cleared in
one transaction, and the next `run()` reads its topics from the beginning."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Sequence

import asyncpg
from aiokafka import ConsumerRebalanceListener, TopicPartition
from prometheus_client import Counter, Gauge

from parley import kafka, logs
from parley.envelope import Event

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Event], Awaitable[None]]
BatchHandler = Callable[[asyncpg.Connection, list[Event]], Awaitable[None]]
Reset = Callable[[asyncpg.Connection], Awaitable[None]]
# Makes sealed events readable before they are handled (parley/personal.py: a KeyRing,
# the owner's own included); a failure is the batch's, retried like any other.
Opener = Callable[[list[Event]], Awaitable[list[Event]]]

APPLIED = Counter("parley_consumer_applied_total", "Events applied by a consumer", ["consumer"])
DUPLICATES = Counter("parley_consumer_duplicates_total", "Redelivered events skipped", ["consumer"])
GAPS = Counter("parley_consumer_gaps_total", "Events that skipped stream versions (should stay 0)", ["consumer"])
INVALID = Counter("parley_consumer_invalid_total", "Messages that are not Parley events, skipped", ["consumer"])
FAILURES = Counter("parley_consumer_failures_total", "Batches rolled back by a handler error and retried", ["consumer"])
LAG = Gauge("parley_consumer_lag", "Messages in the partition not yet applied", ["consumer", "topic", "partition"])

GATHER_MS = 250              # for consumers that can wait that long (ConsumerSpec.gather_ms)
GATHER_BYTES = 64 * 1024     # ... or until this much has arrived
OFFSET_DEFER_SECONDS = 2.0   # how long a partition's offset past skipped events may stay unstored

# The claim locks the batch's streams (in one order, so two claimers cannot deadlock)
# and returns the version each had applied, the latest committed one: a concurrent
# duplicate (another member still applying a batch during a rebalance) waits on these
# rows and then finds its versions taken. A stream new to the consumer gets its row at 0.
_CLAIM = """
insert into consumer_streams (consumer, stream_id, stream_version)
select $1, stream_id, 0 from unnest($2::text[]) as s(stream_id)
on conflict (consumer, stream_id) do update set stream_version = consumer_streams.stream_version
returning stream_id, stream_version
"""
_STORE = """
with streams as (
    update consumer_streams c set stream_version = s.stream_version
    from unnest($5::text[], $6::int[]) as s(stream_id, stream_version)
    where c.consumer = $1 and c.stream_id = s.stream_id
)
insert into consumer_offsets (consumer, topic, partition, next_offset) values ($1, $2, $3, $4)
on conflict (consumer, topic, partition) do update set next_offset = excluded.next_offset
"""
_STORE_SKIPPED = """
insert into consumer_offsets (consumer, topic, partition, next_offset)
select $1, topic, partition, next_offset
from unnest($2::text[], $3::int[], $4::bigint[]) as x(topic, partition, next_offset)
on conflict (consumer, topic, partition) do update set next_offset = excluded.next_offset
"""


class ConsumerRunner:
    def __init__(self, pool: asyncpg.Pool, bootstrap: str, *, name: str, topics: Sequence[str],
                 handle: Handler | None = None, handle_batch: BatchHandler | None = None,
                 reset: Reset | None = None, retry_delay: float = 1.0, max_records: int = 500,
                 fetch_bytes: int | None = None, gather_ms: int = 0, concurrent_partitions: bool = False,
                 opener: Opener | None = None, types: frozenset[str] | None = None, idempotent: bool = False):
        if (handle is None) == (handle_batch is None):
            raise ValueError("give a ConsumerRunner either handle or handle_batch")
        self.pool = pool
        self.bootstrap = bootstrap
        self.name = name  # also the Kafka consumer group
        self.topics = list(topics)
        self.handle = handle
        self.handle_batch = handle_batch
        self.opener = opener
        # The event types the handler acts on (None: every one). The others only move the
        # offset: no claim of their streams, no unsealing, no handler. A consumer that acts
        # on one event in a hundred (erasures, lead requests) then writes a row per batch,
        # not two per event (issue 21: three such consumers made most of PostgreSQL's writes).
        self.types = types
        self.idempotent = idempotent     # no claims by stream version (see the module's docstring)
        self.max_records = max_records   # per poll, over all partitions
        self.fetch_bytes = fetch_bytes   # per partition and fetch (Kafka's default: 1 MiB)
        # A poll's partition batches in concurrent transactions (a connection each), for a
        # handler whose batches of different partitions touch different rows, or lock the
        # rows they share in one order (projection.replay): a rebuild.
        self.concurrent_partitions = concurrent_partitions
        # How long the broker may hold a fetch to gather more records (0: answer at the
        # first record). For consumers no one waits on (timers, CRM leads): at 100
        # events/s, a few fetches, transactions and offset commits a second instead of
        # one per event - each costs the broker, PostgreSQL and this process.
        self.gather_ms = gather_ms
        self.reset = reset
        self.retry_delay = retry_delay
        self._consumer = None
        # Held while a batch is applied and while a rebalance seeks: a seek must read the
        # offsets stored by every batch that was in hand, or it would replay them.
        self._applying = asyncio.Lock()
        self.positions: dict[TopicPartition, int] = {}  # next offset to apply, per assigned partition
        self.skipped: dict[TopicPartition, int] = {}    # next offset past skipped events, not stored yet
        self.stored_at: dict[TopicPartition, float] = {}  # monotonic: when each partition's offset was stored

    async def rebuild(self) -> None:
        """Forget everything applied; the next run() rebuilds from the first event.
        Run it while this consumer's group is stopped."""
        async with self.pool.acquire() as conn, conn.transaction():
            if self.reset is not None:
                await self.reset(conn)
            await conn.execute("delete from consumer_streams where consumer = $1", self.name)
            await conn.execute("delete from consumer_offsets where consumer = $1", self.name)
        log.info("consumer reset for rebuild", extra={"consumer": self.name})

    async def run(self, stop: asyncio.Event) -> None:
        options = {"max_partition_fetch_bytes": self.fetch_bytes} if self.fetch_bytes else {}
        if self.gather_ms:
            options.update(fetch_max_wait_ms=self.gather_ms, fetch_min_bytes=GATHER_BYTES)
        consumer = kafka.consumer(self.bootstrap, self.name, **options)
        consumer.subscribe(self.topics, listener=_SeekToStoredOffsets(self))
        self._consumer = consumer
        try:
            await consumer.start()   # inside: a start that fails (no broker) still closes the client
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=300, max_records=self.max_records)
                async with self._applying:
                    work = []
                    for tp, messages in batches.items():
                        # A seek to the position a fetch was already at can make the client
                        # hand out the same records twice; what is behind our position is old.
                        messages = [m for m in messages if m.offset >= self.positions.get(tp, 0)]
                        if messages and tp in consumer.assignment():
                            work.append((tp, messages))
                    if self.concurrent_partitions:
                        # Partitions share no stream, so their batches may commit in any order:
                        # the database applies one while this process prepares the next.
                        applied = await asyncio.gather(*(self._apply_with_retry(consumer, tp, messages, stop)
                                                         for tp, messages in work))
                    else:
                        applied = [await self._apply_with_retry(consumer, tp, messages, stop)
                                   for tp, messages in work]
                    await self._store_skipped(consumer)
                    done = {tp: messages[-1].offset + 1 for (tp, messages), ok in zip(work, applied) if ok}
                    if done:
                        try:   # for lag tooling; PostgreSQL is the truth
                            await consumer.commit(done)
                        except Exception as e:
                            log.info("kafka offset commit skipped", extra={"consumer": self.name, "error": repr(e)})
                self._report_lag(consumer)
        finally:
            self._consumer = None
            try:
                await self._store_skipped(consumer, every=True)
            except Exception as e:   # harmless: a restart replays events it skips again
                log.info("skipped offsets not stored", extra={"consumer": self.name, "error": repr(e)})
            await consumer.stop()  # leaves the group at once; offsets live in PostgreSQL

    def _parse(self, tp: TopicPartition, messages) -> list[Event]:
        events: list[Event] = []
        for message in messages:
            try:
                events.append(Event.from_bytes(message.value))
            except Exception:
                INVALID.labels(self.name).inc()
                log.error("skipping a message that is not a Parley event",
                          extra={"consumer": self.name, "topic": tp.topic, "partition": tp.partition,
                                 "offset": message.offset})
        return events

    async def _apply_with_retry(self, consumer, tp: TopicPartition, messages, stop: asyncio.Event) -> bool:
        """Applies the batch, retrying until it commits (True) or the runner is stopped (False:
        the consumer is sought back to the batch's start)."""
        events = [e for e in self._parse(tp, messages) if self.types is None or e.type in self.types]
        if not events and self._stored_lately(tp, time.monotonic()):
            self.positions[tp] = self.skipped[tp] = messages[-1].offset + 1
            return True
        while True:
            try:
                await self._apply(tp, messages, await self.opener(events) if self.opener else events)
                break
            except Exception:
                FAILURES.labels(self.name).inc()
                log.exception("consumer batch failed; rolled back, will retry",
                              extra={"consumer": self.name, "topic": tp.topic, "partition": tp.partition,
                                     "offset": messages[0].offset})
                if stop.is_set():
                    consumer.seek(tp, messages[0].offset)
                    return False
                await asyncio.sleep(self.retry_delay)
        self.positions[tp] = messages[-1].offset + 1
        self.skipped.pop(tp, None)
        self.stored_at[tp] = time.monotonic()
        return True

    def _stored_lately(self, tp: TopicPartition, now: float) -> bool:
        """The partition's offset was stored under OFFSET_DEFER_SECONDS ago: one past skipped events may wait."""
        return now - self.stored_at.get(tp, float("-inf")) < OFFSET_DEFER_SECONDS

    async def _store_skipped(self, consumer, every: bool = False) -> None:
        """The offsets past skipped events that have waited OFFSET_DEFER_SECONDS (or all),
        of partitions still assigned, in one statement."""
        now = time.monotonic()
        due = [tp for tp in self.skipped if tp in consumer.assignment() and (every or not self._stored_lately(tp, now))]
        if not due:
            return
        await self.pool.execute(_STORE_SKIPPED, self.name, [tp.topic for tp in due], [tp.partition for tp in due],
                                [self.skipped[tp] for tp in due])
        for tp in due:
            del self.skipped[tp]
            self.stored_at[tp] = now

    async def _apply(self, tp: TopicPartition, messages, events: list[Event]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            fresh, applied = await self._claim(conn, events)
            if fresh:
                if self.handle_batch is not None:
                    await self.handle_batch(conn, fresh)
                else:
                    for event in fresh:
                        token = logs.correlation_id.set(event.correlation_id)
                        try:
                            await self.handle(conn, event)
                        finally:
                            logs.correlation_id.reset(token)
            await conn.execute(_STORE, self.name, tp.topic, tp.partition, messages[-1].offset + 1,
                               list(applied), list(applied.values()))
        APPLIED.labels(self.name).inc(len(fresh))

    async def _claim(self, conn: asyncpg.Connection, events: list[Event]) -> tuple[list[Event], dict[str, int]]:
        """The events not applied before (in batch order) and each stream's version after
        them. An event at or below its stream's applied version is a duplicate; one that
        skips versions is applied and counted as a gap. An idempotent handler gets them all."""
        if not events or self.idempotent:
            return events, {}
        stored = dict(await conn.fetch(_CLAIM, self.name, sorted({e.stream_id for e in events})))
        fresh: list[Event] = []
        applied: dict[str, int] = {}
        for event in events:
            previous = applied.get(event.stream_id, stored[event.stream_id])
            if event.stream_version <= previous:
                DUPLICATES.labels(self.name).inc()
                continue
            if previous and event.stream_version != previous + 1 and self.types is None:   # (filtered: gaps expected)
                GAPS.labels(self.name).inc()
                log.warning("stream version gap", extra={"consumer": self.name, "stream_id": event.stream_id,
                                                         "previous": previous, "got": event.stream_version})
            applied[event.stream_id] = event.stream_version
            fresh.append(event)
        return fresh, applied

    def _report_lag(self, consumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None and tp in self.positions:
                LAG.labels(self.name, tp.topic, str(tp.partition)).set(max(0, highwater - self.positions[tp]))


class _SeekToStoredOffsets(ConsumerRebalanceListener):
    def __init__(self, runner: ConsumerRunner):
        self.runner = runner

    async def on_partitions_revoked(self, revoked) -> None:
        # Every applied batch stored its offset with its effect. Offsets past skipped
        # events are forgotten: the next owner may be further already, and replaying
        # what it skips costs nothing.
        for tp in revoked:
            self.runner.skipped.pop(tp, None)

    async def on_partitions_assigned(self, assigned) -> None:
        async with self.runner._applying:
            consumer = self.runner._consumer
            rows = await self.runner.pool.fetch(
                "select topic, partition, next_offset from consumer_offsets where consumer = $1", self.runner.name)
            stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
            for tp in assigned:
                if tp in stored:
                    consumer.seek(tp, stored[tp])
                else:
                    await consumer.seek_to_beginning(tp)
                self.runner.positions[tp] = stored.get(tp, 0)
