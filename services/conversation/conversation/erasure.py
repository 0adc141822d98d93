"""Erasing one conversation's personal data (issue 20; docs/architecture.md, Personal
data): the conversation service's part, every step idempotent, so a run that crashes
halfway finishes when it is run again.

1. `chat.conversation_erased` (closing it first if it was open) through the one
   command path, command id `erase:<erasure id>:<conversation id>`: the projections
   follow in the same transaction - the inbox row keeps only the record, the visitor's
   current-conversation row goes (their next message starts a new, unlinked one), the
   rating keeps its score, the kept state forgets contacts, params and page.
2. In one transaction: the conversation's key is wiped (a tombstone: what the topics
   hold of it can never be opened again), the personal fields of its rows in the
   event store are replaced by their erased values (parley/personal.py), so the store
   keeps the record of what happened and nothing of what was said, and its search
   entries go (the search consumer deletes them too when the erased event reaches it;
   anything it opens from the topic after the tombstone comes out erased).

The request that drives it, the verified identity row and the other services' parts
(the gateway's files, crm-bridge's copies and client cards): erasure_requests.py."""
from __future__ import annotations

import asyncpg

from parley import personal, subject_keys
from parley.contract import conversation_stream
from parley.envelope import Event
from parley.eventstore import EventStore

from conversation import commands, domain, search_projection

_PERSONAL_ROWS = """
select id, type, data from events
where stream_id = $1 and type = any($2::text[]) and not (data ? 'erased')
for update
"""


async def scrub(conn: asyncpg.Connection, stream: str) -> int:
    """The stream's rows with their personal fields erased; how many were changed."""
    rows = await conn.fetch(_PERSONAL_ROWS, stream, list(personal.PERSONAL))
    changed = [(r["id"], personal.erase_event(Event(r["type"], stream, r["data"])).data) for r in rows]
    if changed:
        await conn.executemany("update events set data = $2 where id = $1", changed)
    return len(changed)


async def file_ids(db, stream: str) -> list[str]:
    """The files the stream's messages carried (read before they are scrubbed)."""
    return [r[0] for r in await db.fetch(
        """select distinct data->'attachment'->>'file_id' from events
           where stream_id = $1 and jsonb_typeof(data->'attachment') = 'object'""", stream)]


async def erase_conversation(store: EventStore, conversation_id: str, erasure_id: str,
                             reason: str = "request") -> int:
    """Erase the conversation's personal data here; how many stored events were scrubbed
    by this run (0 when a previous run did it)."""
    stream = conversation_stream(conversation_id)
    files = await file_ids(store.pool, stream)
    await commands.run(store, f"erase:{erasure_id}:{conversation_id}", conversation_id,
                       lambda state: domain.decide_erase(state, erasure_id, reason, files))
    async with store.pool.acquire() as conn, conn.transaction():
        await subject_keys.erase(conn, [stream])
        await search_projection.erase(conn, [conversation_id])
        return await scrub(conn, stream)
