"""The event store against a real PostgreSQL."""
import asyncio
import uuid

import pytest

from parley.eventstore import ConcurrencyConflict, Decision, EventStore, read_shard, shard_count, shard_of
from parley.schemas import SchemaViolation
from tests.support import item_added


@pytest.fixture
def store(pool, catalog):
    return EventStore(pool, catalog, topic_for=lambda stream_id: "test.topic")


async def test_append_and_load_a_stream(store):
    appended = await store.append([item_added("item-a", 1), item_added("item-a", 2)], expected_version=0)
    await store.append([item_added("item-a", 3)], expected_version=2)
    loaded = await store.load("item-a")
    assert [e.stream_version for e in loaded] == [1, 2, 3]
    assert [e.data["n"] for e in loaded] == [1, 2, 3]
    assert loaded[:2] == appended


async def test_two_writers_race_on_one_stream_exactly_one_wins(store):
    for round in range(20):
        stream = f"item-race{round}"
        await store.append([item_added(stream, 0)], expected_version=0)
        results = await asyncio.gather(
            store.append([item_added(stream, 1)], expected_version=1),
            store.append([item_added(stream, 2)], expected_version=1),
            return_exceptions=True)
        winners = [r for r in results if not isinstance(r, Exception)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert isinstance(losers[0], ConcurrencyConflict)
        assert "is at version 2, expected 1" in str(losers[0])
        history = await store.load(stream)
        assert [e.stream_version for e in history] == [1, 2]
        assert history[1].data["n"] == winners[0][0].data["n"]


async def test_a_schema_violation_appends_nothing(store):
    bad = item_added("item-bad", 1)
    bad = bad.__class__(**{**bad.__dict__, "data": {"n": "one"}})
    with pytest.raises(SchemaViolation):
        await store.append([item_added("item-bad", 0), bad], expected_version=0)
    assert await store.load("item-bad") == []


async def test_a_shard_is_read_in_commit_order_even_when_a_transaction_commits_late(store, pool):
    """The classic outbox bug: a transaction that took its sequence number first but
    commits last is skipped by a reader that already moved past it. Here A starts
    first and commits last, on a stream of the same shard as B's; a reader of that shard
    must never see B's event without A's."""
    shard = await store.shard_for("item-early")
    shards = await shard_count(pool)
    late = next(f"item-late{i}" for i in range(1000) if shard_of(f"item-late{i}", shards) == shard)
    async with pool.acquire() as conn_a:
        tx = conn_a.transaction()
        await tx.start()
        await store.append([item_added(late, 1)], expected_version=0, conn=conn_a)
        b = asyncio.create_task(store.append([item_added("item-early", 2)], expected_version=0))
        await asyncio.sleep(0.3)
        seen_while_a_open = await read_shard(pool, shard)
        await tx.commit()
    await b
    seen = await read_shard(pool, shard)
    assert seen_while_a_open == []  # B cannot become visible ahead of A
    assert [s.event.stream_id for s in seen] == [late, "item-early"]
    assert seen[0].position < seen[1].position


def _count_decider(calls: list):
    def decide(history):
        calls.append(len(history))
        n = len(history) + 1
        return Decision([item_added("item-cmd", n)], {"n": n})
    return decide


async def test_a_retried_command_returns_the_first_outcome_and_appends_nothing(store):
    calls: list[int] = []
    command_id = str(uuid.uuid4())
    first = await store.execute(command_id, "item-cmd", _count_decider(calls))
    retry = await store.execute(command_id, "item-cmd", _count_decider(calls))
    assert (first.replayed, retry.replayed) == (False, True)
    assert retry.result == first.result == {"n": 1}
    assert retry.events == []
    assert len(await store.load("item-cmd")) == 1


async def test_the_same_command_sent_concurrently_applies_once(store):
    command_id = str(uuid.uuid4())
    outcomes = await asyncio.gather(*[store.execute(command_id, "item-cmd", _count_decider([])) for _ in range(8)])
    assert sum(not o.replayed for o in outcomes) == 1
    assert {o.result["n"] for o in outcomes} == {1}
    assert len(await store.load("item-cmd")) == 1


async def test_different_commands_on_one_stream_all_apply_by_deciding_again(store):
    outcomes = await asyncio.gather(*[store.execute(str(uuid.uuid4()), "item-cmd", _count_decider([]), attempts=20)
                                      for _ in range(5)])
    assert sorted(o.result["n"] for o in outcomes) == [1, 2, 3, 4, 5]
    assert [e.stream_version for e in await store.load("item-cmd")] == [1, 2, 3, 4, 5]


async def test_appends_sharing_a_transaction_fail_alone(store):
    """Concurrent appends are written in one transaction (group commit); a conflicting one
    must fail by itself and take nothing else with it."""
    await store.append([item_added("item-g0", 0)], expected_version=0)
    results = await asyncio.gather(
        *[store.append([item_added(f"item-g{i}", i)], expected_version=0) for i in range(1, 10)],
        store.append([item_added("item-g0", 99)], expected_version=0),  # stale: g0 is at 1
        return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["list"] * 9 + ["ConcurrencyConflict"]
    for i in range(1, 10):
        assert [e.data["n"] for e in await store.load(f"item-g{i}")] == [i]
    assert [e.data["n"] for e in await store.load("item-g0")] == [0]
    positions = [s.position for s in await store.read_all(after=0)]
    assert positions == sorted(positions) and len(positions) == 10
