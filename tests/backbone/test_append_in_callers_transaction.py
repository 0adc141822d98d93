"""An append made in the caller's transaction (`EventStore.append(conn=...)`) needs no
other connection than the caller's, even on a store that has not read its schema's
shard count yet. Otherwise transactions that hold every pooled connection and each
append wait for one another forever: a crm-bridge restarted after a crash, with 20
due deliveries, hung that way on recording their outcomes (docs/chaos.md)."""
import asyncio

import pytest

from parley import db
from parley.eventstore import EventStore
from tests.support import item_added

HOLDERS = 3   # transactions at once: every connection of the pool


@pytest.fixture
async def small_pool(platform, schema_name):
    pool = await db.create_pool(platform.database_url, schema_name, max_size=HOLDERS)
    await db.migrate(pool, schema_name)
    yield pool
    await pool.close()


async def every_connection_appends(pool, write) -> None:
    """HOLDERS transactions at once, one per pooled connection; once all hold theirs,
    each runs `write(conn)`. Fails (rather than hanging) if they wait on one another."""
    every_connection_held = asyncio.Barrier(HOLDERS)

    async def in_own_transaction(i: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await every_connection_held.wait()
            await write(conn, i)

    # A deadlock guard, not a timing: on a deadlock the tasks would wait forever.
    done, hung = await asyncio.wait([asyncio.create_task(in_own_transaction(i)) for i in range(HOLDERS)],
                                    timeout=30)
    for task in hung:
        task.cancel()
    await asyncio.gather(*hung, return_exceptions=True)
    assert not hung, f"{len(hung)} of {HOLDERS} transactions never finished their append"
    for task in done:
        task.result()


async def test_appends_in_transactions_holding_every_pooled_connection_all_commit(small_pool, catalog):
    """crm-bridge's case: each transaction records one outcome event."""
    store = EventStore(small_pool, catalog, topic_for=lambda stream_id: "test.topic")  # shard count not read yet

    async def append(conn, i):
        await store.append([item_added(f"item-{i}", 1)], 0, conn=conn)
    await every_connection_appends(small_pool, append)
    assert await small_pool.fetchval("select count(*) from events") == HOLDERS


async def test_shard_ordering_in_transactions_holding_every_pooled_connection_needs_no_other(small_pool, catalog):
    """The scheduler's and presence's case: streams put in shard order, then appended."""
    store = EventStore(small_pool, catalog, topic_for=lambda stream_id: "test.topic")

    async def order_and_append(conn, i):
        for stream in await store.in_shard_order([f"item-{i}-a", f"item-{i}-b"], lambda s: s, conn=conn):
            await store.append([item_added(stream, 1)], 0, conn=conn)
    await every_connection_appends(small_pool, order_and_append)
    assert await small_pool.fetchval("select count(*) from events") == 2 * HOLDERS
