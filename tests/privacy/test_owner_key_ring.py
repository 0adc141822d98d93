"""The conversation service's own key ring (`parley/key_ring.local`), with which its
search projection opens the conversation topic, on a real PostgreSQL: a conversation's
key is read from the table once, not for every batch, and an erased conversation opens
to its erased form."""
from __future__ import annotations

import uuid

from prometheus_client import REGISTRY

from parley import key_ring, personal, subject_keys
from parley.envelope import new_event


def statements_sent() -> float:
    return REGISTRY.get_sample_value("parley_db_statements_total")


def message(stream_id: str, n: int):
    return new_event("chat.visitor_message_posted", stream_id,
                     {"message_id": f"m{n}", "text": f"call me at {n}", "attachment": None},
                     project_id="demo").with_version(n)


async def test_the_owners_ring_reads_a_key_once_and_opens_an_erased_conversation_erased(pool):
    live, erased = f"conversation-{uuid.uuid4()}", f"conversation-{uuid.uuid4()}"
    keys = await subject_keys.keys_for(pool, [live, erased], make=True)
    async with pool.acquire() as conn:
        await subject_keys.erase(conn, [erased])
    ring = key_ring.local(pool)

    def sealed(stream_id: str, n: int):
        return personal.seal_event(message(stream_id, n), keys[stream_id])

    before = statements_sent()
    first = await ring.open([sealed(live, 1), sealed(erased, 1)])
    assert statements_sent() - before == 1                     # both keys in one read
    assert first[0].data == message(live, 1).data
    assert first[1].data["erased"] is True and first[1].data["text"] == personal.ERASED["text"]

    before = statements_sent()
    later = await ring.open([sealed(live, 2), sealed(erased, 2), sealed(live, 3)])
    assert statements_sent() - before == 0                     # the next batches read no key
    assert [e.data["text"] for e in later] == ["call me at 2", personal.ERASED["text"], "call me at 3"]
