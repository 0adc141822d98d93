"""The inbox written a batch at a time (projection.apply_all, projection.replay) equals
the inbox written an event at a time as the live path writes it, on real PostgreSQL:
batches of any size, a returning visitor's start chained inside one batch, reads after
messages of the same batch, and a replay in which conversations come in another order
than they were written (as two Kafka partitions deliver them)."""
from __future__ import annotations

import random

import pytest

from parley.contract import id_of

from conversation import projection
from bench import chat_histories
from tests.conversations.test_inbox_rebuild import TABLES, conversation_schemas, table


@pytest.fixture
async def three_schemas(platform):
    async with conversation_schemas(platform, 3, max_size=2) as made:
        yield [pool for _, pool in made]


async def test_batches_of_any_size_and_a_replay_out_of_order_equal_the_event_by_event_inbox(three_schemas):
    live, batched, replayed = three_schemas
    events = list(chat_histories.events(600, seed=7, at_once=8))   # ~700 events, 7 returning visitors
    async with live.acquire() as conn:
        for event in events:
            async with conn.transaction():
                await projection.apply(conn, event)
    rng = random.Random(4)
    async with batched.acquire() as conn:
        i = 0
        while i < len(events):
            n = rng.choice([1, 2, 7, 50, 400])
            async with conn.transaction():
                await projection.apply_all(conn, events[i:i + n])
            i += n
    # Two "partitions", each in its conversations' order: the returning visitors' new
    # conversations, applied before all the others - the ones they replaced among them.
    returning = {id_of(e.stream_id) for e in events
                 if e.type == "chat.conversation_started" and e.data.get("previous_conversation_id")}
    assert returning, "no returning visitor: the test proves less than it says"
    ahead = [e for e in events if id_of(e.stream_id) in returning]
    behind = [e for e in events if id_of(e.stream_id) not in returning]
    async with replayed.acquire() as conn:
        for part in (ahead, behind):
            for i in range(0, len(part), 300):
                async with conn.transaction():
                    await projection.replay(conn, part[i:i + 300])
    for name, key in TABLES.items():
        expected = await table(live, name, key)
        assert expected, f"{name} is empty: the test proves nothing"
        assert await table(batched, name, key) == expected, name
        assert await table(replayed, name, key) == expected, name
