"""Read views over the whole installation's projects (not one project's): whether any
exists yet (the gateway's /setup page lives only until one does) and the list that
`python -m parley.admin list-projects` prints."""
from __future__ import annotations

from typing import Any

import asyncpg


async def has_project(db: asyncpg.Pool | asyncpg.Connection) -> bool:
    return await db.fetchval("select exists (select 1 from projects)")


async def list_projects(db: asyncpg.Pool | asyncpg.Connection) -> list[dict[str, Any]]:
    """Every project, oldest first. `created` is its project.created event's time: the
    projects table keeps no date, the stream has it (one lookup of the stream's index)."""
    rows = await db.fetch(
        """select p.id, p.name, p.owner_email, p.chat_enabled, e.occurred_at as created
           from projects p left join events e on e.stream_id = 'project-' || p.id and e.stream_version = 1
           order by e.occurred_at nulls last, p.id""")
    return [dict(r) for r in rows]
