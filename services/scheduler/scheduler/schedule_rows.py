"""A project's schedule row, as the API, the boundary loop and the timers read it.

Apart from schedules.py (the API and the boundary loop, which recompute the timers on an
edit) so that timers.py can read schedules without importing the module that imports it.
The row is the project's lock (schedules.py says who takes it how)."""
from __future__ import annotations

from datetime import datetime, timezone

import asyncpg

from parley import working_hours as wh


def now() -> datetime:
    return datetime.now(timezone.utc)


def parse_stored(body: dict) -> wh.Schedule:
    return wh.parse(body)


async def locked_schedule(conn: asyncpg.Connection, project_id: str, *, share: bool) -> wh.Schedule:
    """The project's schedule with its row locked (created with the default first), for
    the rest of the caller's transaction."""
    return (await locked_schedules(conn, {project_id}, share=share))[project_id]


async def locked_schedules(conn: asyncpg.Connection, project_ids: set[str], *, share: bool) -> dict[str, wh.Schedule]:
    """Each project's schedule with its row locked (created with the default first), for
    the rest of the caller's transaction: rows locked in project order, so two batches
    cannot deadlock; one round trip whatever their number, three when one is new."""
    if not project_ids:
        return {}
    wanted = sorted(project_ids)
    lock = f"""select project_id, schedule from schedules where project_id = any($1::text[])
               order by project_id for {'share' if share else 'update'}"""
    rows = await conn.fetch(lock, wanted)
    if len(rows) < len(wanted):
        await conn.execute(
            """insert into schedules (project_id, schedule, saved, next_boundary)
               select p, $2, false, null from unnest($1::text[]) as p on conflict (project_id) do nothing""",
            sorted(set(wanted) - {r["project_id"] for r in rows}), wh.to_json(wh.DEFAULT))
        rows = await conn.fetch(lock, wanted)
    return {r["project_id"]: parse_stored(r["schedule"]) for r in rows}


async def current_schedule(db: asyncpg.Pool | asyncpg.Connection, project_id: str) -> wh.Schedule:
    row = await db.fetchrow("select schedule from schedules where project_id = $1", project_id)
    return parse_stored(row["schedule"]) if row is not None else wh.DEFAULT
