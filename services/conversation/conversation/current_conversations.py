"""Which conversation each visitor is in now, for the visitor commands: the lookups that
arrive while one is running go together in the next query (parley.batching), one
statement for many visitors instead of one each (issue 21: the per-message lookup was a
sixth of the service's CPU at 500 messages/s)."""
from __future__ import annotations

from typing import Sequence

import asyncpg
from aiohttp import web

from parley.batching import Batcher

# Two primary-key probes per visitor, whatever the batch's size (lateral, `limit 1`:
# never planned as a scan of the tables; command_batch._READ says why).
_CURRENT = """
select x.n, v.id, v.status
from unnest($1::text[], $2::text[]) with ordinality as x(project_id, visitor_id, n)
cross join lateral (
    select v.conversation_id::text as id, c.status
    from visitor_conversations v left join conversations c on c.id = v.conversation_id
    where v.project_id = x.project_id and v.visitor_id = x.visitor_id limit 1) v
"""


class CurrentConversations:
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool
        self.batcher: Batcher[tuple[str, str]] = Batcher(self._flush, max_batch=500)

    async def of(self, project_id: str, visitor_id: str) -> asyncpg.Record | None:
        """The visitor's current conversation (`id`, `status`: None when the inbox has no
        row for it yet), or None for a visitor who never wrote."""
        return await self.batcher.run((project_id, visitor_id))

    async def _flush(self, visitors: Sequence[tuple[str, str]]) -> list[asyncpg.Record | None]:
        rows = await self.pool.fetch(_CURRENT, [p for p, _ in visitors], [v for _, v in visitors])
        found = {row["n"]: row for row in rows}
        return [found.get(n) for n in range(1, len(visitors) + 1)]


CURRENT = web.AppKey("current_conversations", CurrentConversations)
