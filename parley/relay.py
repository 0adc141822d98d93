"""Outbox relay: publishes a schema's appended events to Kafka in commit order per
shard, keyed by stream id, and records how far it got in each shard.

- Order: a stream lives in one shard, and within a shard appends hand out `position`
  in commit order (the shard's lock is held until commit; see migrations/002), so a
  reader of one shard by `position > cursor` never skips an event that committed
  late. Each shard has its own cursor; one pass reads every shard's next batch in one
  query. Sends go out one after another into an idempotent producer (acks=all), which
  keeps them in order within a partition across retries, so each stream's events reach
  its partition in stream order. Streams of different shards have no order between
  them (nor had they any on the wire: different keys go to different partitions).
- Rows appended before sharding (shard null, written under the old per-schema lock,
  so in position order = commit order) are published first, from their own cursor
  (shard -1), before any sharded row: a stream's old events go out before its new ones.
- Crash safety: cursors are recorded only after Kafka acknowledged the batch. A crash
  in between republishes that batch; consumers skip the duplicates by stream version.
- One active relay per schema: replicas wait on a PostgreSQL advisory lock.

Run standalone with `python -m parley.relay --schema NAME` (services run it in-process)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time
from dataclasses import replace

import asyncpg
from prometheus_client import Counter, Gauge

from parley import db, kafka
from parley.eventstore import _COLUMNS, StoredEvent, _row_to_stored, shard_count
from parley.subject_keys import Sealer

log = logging.getLogger(__name__)

# One active relay per schema ($1): the session lock its leader holds. `privacy migrate`
# (topic_sealing) takes it too, so it never rewrites topics a running relay writes to.
LEADER_LOCK = "select pg_try_advisory_lock(hashtext('parley_relay:' || $1))"

PUBLISHED = Counter("parley_relay_published_total", "Events published to Kafka by the relay", ["schema"])
LAG = Gauge("parley_relay_lag_events", "Events appended but not yet published", ["schema"])
LAG_COUNT_INTERVAL = 1.0  # seconds between counts of the unpublished events
ERRORS = Counter("parley_relay_errors_total", "Relay passes that failed and will be retried", ["schema"])


class Relay:
    def __init__(self, database_url: str, schema: str, bootstrap: str, *,
                 batch_size: int = 500, poll_interval: float = 1.0, name: str = "relay",
                 sealer: Sealer | None = None):
        self.database_url = database_url
        self.schema = db.check_schema_name(schema)
        self.bootstrap = bootstrap
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.name = name
        # A service whose events carry personal data seals those fields on the way out
        # (parley/personal.py): Kafka keeps its topics forever, so it never gets them plain.
        self.sealer = sealer
        self._wake = asyncio.Event()
        self._next_lag_count = 0.0
        self.is_leader = False

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; survive database and broker outages by retrying."""
        while not stop.is_set():
            try:
                await self._run_as_leader(stop)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("relay connection lost, retrying", extra={"schema": self.schema, "error": str(e)})
                ERRORS.labels(self.schema).inc()
                await _sleep_unless(stop, 2)

    async def _run_as_leader(self, stop: asyncio.Event) -> None:
        # The relay writes only its cursors: one lost in a database crash republishes a
        # batch, which consumers skip by stream version; a cursor commit need not wait for
        # the disk before the next batch goes out.
        conn = await db.connect(self.database_url, self.schema, durable_commits=False)
        try:
            while not await conn.fetchval(LEADER_LOCK, self.schema):
                if await _sleep_unless(stop, self.poll_interval):
                    return
            self.is_leader = True
            await conn.add_listener(f"parley_events_{self.schema}", lambda *_: self._wake.set())
            await shard_count(conn)  # fails clearly on a schema that was never migrated
            await conn.execute("""insert into relay_cursors (relay, shard, position)
                                  select $1, shard, 0 from event_shards on conflict do nothing""", self.name)
            producer = kafka.producer(self.bootstrap)
            try:
                await producer.start()
                await self._publish_until(stop, conn, producer)
            finally:
                await producer.stop()
        finally:
            self.is_leader = False
            await conn.close()

    async def _publish_until(self, stop, conn, producer) -> None:
        unsharded_left = True  # rows from before sharding go first (none appear later)
        while not stop.is_set():
            self._wake.clear()
            try:
                if unsharded_left:
                    unsharded_left = await self._publish_unsharded(conn, producer) > 0
                    if unsharded_left:
                        continue
                published = await self._publish_batch(conn, producer)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                raise  # the database is gone: reconnect (and re-elect) in run()
            except Exception as e:  # broker trouble: keep the batch, try again shortly
                log.warning("relay could not publish, retrying", extra={"schema": self.schema, "error": repr(e)})
                ERRORS.labels(self.schema).inc()
                await _sleep_unless(stop, 1)
                continue
            if published < self.batch_size:
                await _wait_either(stop, self._wake, self.poll_interval)

    async def _publish_unsharded(self, conn: asyncpg.Connection, producer) -> int:
        """One batch of the rows from before sharding, in position order; 0 when none are left."""
        last = await conn.fetchval("select position from relay_cursors where relay = $1 and shard = -1",
                                   self.name) or 0
        rows = await conn.fetch(f"select {_COLUMNS}, shard from events where shard is null and position > $1"
                                " order by position limit $2", last, self.batch_size)
        if not rows:
            return 0
        await self._send(producer, await self._outgoing(conn, rows))
        await conn.execute("""insert into relay_cursors (relay, shard, position) values ($1, -1, $2)
                              on conflict (relay, shard) do update set position = excluded.position""",
                           self.name, rows[-1]["position"])
        PUBLISHED.labels(self.schema).inc(len(rows))
        log.info("published events from before sharding", extra={"schema": self.schema, "events": len(rows)})
        return len(rows)

    async def _publish_batch(self, conn: asyncpg.Connection, producer) -> int:
        """Every shard's next batch (up to batch_size each), read in one query and sent in
        commit order per shard; then each shard's cursor moves to its batch's last position.
        Returns the size of the largest shard batch (batch_size: more may be waiting)."""
        rows = await conn.fetch(f"""
            select e.* from relay_cursors c cross join lateral (
                select {_COLUMNS}, shard from events
                where shard = c.shard and position > c.position order by position limit $2) e
            where c.relay = $1 and c.shard >= 0
            order by e.shard, e.position""", self.name, self.batch_size)
        if not rows:
            LAG.labels(self.schema).set(0)
            return 0
        await self._send(producer, await self._outgoing(conn, rows))
        last: dict[int, int] = {}
        sizes: dict[int, int] = {}
        for r in rows:
            last[r["shard"]] = r["position"]
            sizes[r["shard"]] = sizes.get(r["shard"], 0) + 1
        await conn.execute("""update relay_cursors c set position = v.position
                              from unnest($2::smallint[], $3::bigint[]) as v(shard, position)
                              where c.relay = $1 and c.shard = v.shard""",
                           self.name, list(last), list(last.values()))
        PUBLISHED.labels(self.schema).inc(len(rows))
        # The lag gauge is for dashboards scraped every few seconds: counting it after every
        # batch was one query per published batch, i.e. per message on a steady stream.
        if time.monotonic() >= self._next_lag_count:
            self._next_lag_count = time.monotonic() + LAG_COUNT_INTERVAL
            LAG.labels(self.schema).set(await conn.fetchval("""
                select count(*) from (select 1 from relay_cursors c
                                      join events e on e.shard = c.shard and e.position > c.position
                                      where c.relay = $1 and c.shard >= 0 limit 100000) unpublished""", self.name))
        return max(sizes.values())

    async def _outgoing(self, conn: asyncpg.Connection, rows) -> list[StoredEvent]:
        """The rows as they go on the bus: sealed, when this service seals."""
        stored = [_row_to_stored(r) for r in rows]
        if self.sealer is None:
            return stored
        sealed = await self.sealer.seal(conn, [s.event for s in stored])
        return [replace(s, event=e) for s, e in zip(stored, sealed)]

    @staticmethod
    async def _send(producer, batch: list[StoredEvent]) -> None:
        """Send in list order, then wait for every acknowledgement (raises if any failed)."""
        acks = [await producer.send(s.topic, s.event.to_bytes(), key=s.event.stream_id.encode(),
                                    headers=[("type", s.event.type.encode())]) for s in batch]
        await asyncio.gather(*acks)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early if `stop` is set; returns whether it was."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
        return True
    except asyncio.TimeoutError:
        return False


async def _wait_either(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def main() -> None:
    from parley.logs import setup_logging
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema", required=True, help="the service schema whose events to publish")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--batch-size", type=int, default=500, help="events per Kafka round trip")
    args = parser.parse_args()
    if not args.database_url or not args.bootstrap:
        parser.error("set DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (or --database-url/--bootstrap)")
    setup_logging("relay", os.environ.get("PARLEY_LOG_LEVEL", "INFO"))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Relay(args.database_url, args.schema, args.bootstrap, batch_size=args.batch_size).run(stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
