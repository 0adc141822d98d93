"""The search entries follow the conversation topic (consumer `conversation.search`): a
partition batch at a time, its net effect (search_index.fold) in three statements -
deletes, erasures, one upsert. Off the command path on purpose: a message is searchable
within a poll of being stored (the consumer waits up to GATHER_MS to fill a batch), and
no command waits for it (it still takes CPU beside them: docs/performance.md). Its
writes are idempotent (upserts by key, deletes), so it keeps no claims by stream
version, only its offset. A rebuild (reset, then the topic from the start, the events
opened with the service's own keys) makes the same rows; an erased conversation's
events come back emptied and its erasure deletes what is left."""
from __future__ import annotations

from typing import Sequence

import asyncpg
from aiohttp import web

from parley import key_ring
from parley.envelope import Event
from parley.service import POOL, ConsumerSpec

from conversation import search_index

GATHER_MS = 250

_UPSERT = """
insert into search_entries (conversation_id, key, project_id, kind, text, at, document)
select c, k, p, kd, t, a::timestamptz, to_tsvector('russian', t) || to_tsvector('simple', ph)
from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
     as x(c, k, p, kd, t, a, ph)
where not exists (select from conversations e where e.id = x.c and e.erased_at is not null)
on conflict (conversation_id, key) do update
set kind = excluded.kind, text = excluded.text, at = excluded.at, document = excluded.document
"""
_REMOVE = """
delete from search_entries e using unnest($1::uuid[], $2::text[]) as x(c, k)
where e.conversation_id = x.c and e.key = x.k
"""
_ERASE = "delete from search_entries where conversation_id = any($1::uuid[])"


async def apply(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    written, removed, erased = search_index.fold(events)
    if removed:
        await conn.execute(_REMOVE, *map(list, zip(*removed)))
    if erased:
        await erase(conn, list(erased))
    if written:
        rows = list(written.values())
        await conn.execute(_UPSERT, [e.conversation_id for e in rows], [e.key for e in rows],
                           [e.project_id for e in rows], [e.kind for e in rows], [e.text for e in rows],
                           [e.at for e in rows], [e.phone_words for e in rows])


async def erase(conn: asyncpg.Connection, conversation_ids: list[str]) -> None:
    """No entry of these conversations any more (their erasure, here or from the topic)."""
    await conn.execute(_ERASE, conversation_ids)


async def reset(conn: asyncpg.Connection) -> None:
    await conn.execute("truncate search_entries")


def _opener(app: web.Application):
    # Cached keys (key_ring.local). A key cached before an erasure opens the conversation's
    # events still on their way here; the upsert skips an erased conversation (the inbox
    # marks it in the erasure's own transaction), so nothing of it is indexed again.
    return key_ring.local(app[POOL]).open


CONSUMER = ConsumerSpec("conversation.search", ["conversation.events"], apply, reset=reset, gather_ms=GATHER_MS,
                        takes_batch=True, types=search_index.TYPES, opener=_opener, idempotent=True)
