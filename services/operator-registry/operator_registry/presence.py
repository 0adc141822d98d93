"""Operator presence, kept by the registry (issue 13, item 1; docs/architecture.md,
Presence).

- Gateways report, every third of the grace period, which operators have an app socket
  open on them (`POST /internal/presence/heartbeats`). A heartbeat only moves the
  operator's `last_seen` in the `presence` table: heartbeats never reach the event
  store. With several gateways, whichever reports last keeps the operator present.
- The operator chooses online, away or offline (`PUT /api/presence`, the app header's
  switch). What they are shown as is their choice while some gateway has seen an app of
  theirs within the grace period, else offline.
- Each change of what they are shown as is an event, `operator.presence_changed` on
  their own stream `presence-<operator id>` (operator.events): the gateways push it to
  the project's admins. It is appended in the transaction that changes the row (the
  row, locked, holds the stream's version), so a change is published once whichever
  replica notices it; a sweep (every sixth of the grace) finds those whose heartbeats
  stopped.
- `GET /internal/presence/{project}` names the operators online now: the conversation
  service offers new conversations to them, the gateway tells the widget whether
  someone is there."""
from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp import web

from parley.contract import canonical_uuid
from parley.envelope import new_event
from parley.eventstore import EventStore
from parley.http import Rejected, ok, read_json
from parley.presence import STATUSES, grace_seconds, presence_stream
from parley.service import POOL, STORE

from operator_registry.authentication import actor

HEARTBEAT_MAX = 10_000     # operators in one gateway's report
SWEEP_BATCH = 200


def _avatar(avatar_id: str | None) -> str | None:
    return f"/avatars/{avatar_id}.png" if avatar_id else None


async def settle(conn: asyncpg.Connection, store: EventStore, operator_ids: list[str], grace: float) -> int:
    """Publish the change of every one of these operators whose shown status is not what
    their row says now. Runs inside the caller's transaction; returns how many changed."""
    rows = await conn.fetch(
        """select p.operator_id::text, p.project_id, p.status, p.version, o.name,
                  case when o.id is null or not o.active or o.removed then 'offline'
                       when p.last_seen is null or p.last_seen < now() - make_interval(secs => $2) then 'offline'
                       else p.chosen end as shown
           from presence p left join operators o on o.id = p.operator_id
           where p.operator_id = any($1::uuid[]) order by p.operator_id for update of p skip locked""",
        operator_ids, grace)
    changed = [r for r in rows if r["shown"] != r["status"]]
    # Each change appends to its own stream: shard locks in ascending order (as the scheduler).
    changed = await store.in_shard_order(changed, lambda r: presence_stream(r["operator_id"]), conn)
    for r in changed:
        event = new_event("operator.presence_changed", presence_stream(r["operator_id"]),
                          {"operator_id": r["operator_id"], "status": r["shown"], "previous": r["status"],
                           "operator_name": r["name"] or "Operator"}, project_id=r["project_id"])
        await store.append([event], r["version"], conn=conn)
        await conn.execute("update presence set status = $2, version = version + 1, changed_at = now()"
                           " where operator_id = $1", r["operator_id"], r["shown"])
    return len(changed)


async def heartbeats(request: web.Request) -> web.Response:
    """A gateway's report: {"operators": [ids with an app socket open on it]}."""
    body = await read_json(request)
    ids = body.get("operators")
    if not isinstance(ids, list) or len(ids) > HEARTBEAT_MAX or any(canonical_uuid(i) is None for i in ids):
        raise Rejected(422, "operators_invalid", f"operators is a list of up to {HEARTBEAT_MAX} operator ids.")
    ids = sorted({canonical_uuid(i) for i in ids})
    if not ids:
        return ok({"changed": 0})
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await conn.execute(
            """insert into presence (operator_id, project_id, last_seen)
               select id, project_id, now() from operators where id = any($1::uuid[]) and active and not removed
               order by id
               on conflict (operator_id) do update set last_seen = now()""", ids)
        changed = await settle(conn, request.app[STORE], ids, grace_seconds())
    return ok({"changed": changed})


async def sweep(app: web.Application) -> int:
    """Those shown as present whose heartbeats stopped (or who were deactivated) go offline."""
    grace = grace_seconds()
    async with app[POOL].acquire() as conn, conn.transaction():
        ids = [r["operator_id"] for r in await conn.fetch(
            """select p.operator_id::text from presence p left join operators o on o.id = p.operator_id
               where p.status <> 'offline' and (p.last_seen < now() - make_interval(secs => $1)
                                                or o.id is null or not o.active or o.removed)
               limit $2""", grace, SWEEP_BATCH)]
        return await settle(conn, app[STORE], ids, grace) if ids else 0


def sweep_loop(app: web.Application):
    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await sweep(app)
            try:
                await asyncio.wait_for(stop.wait(), grace_seconds() / 6)
            except asyncio.TimeoutError:
                pass
    return run


async def _operators(pool: asyncpg.Pool, project_id: str, *, online_only: bool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"""select o.id::text, o.name, o.avatar_id, o.is_admin, coalesce(p.status, 'offline') as status,
                   p.changed_at from operators o left join presence p on p.operator_id = o.id
            where o.project_id = $1 and o.active and not o.removed
            {"and p.status = 'online'" if online_only else ""} order by o.name, o.id""", project_id)
    return [{"id": r["id"], "name": r["name"], "avatar_url": _avatar(r["avatar_id"]), "status": r["status"],
             "changed_at": r["changed_at"].isoformat() if r["changed_at"] else None} for r in rows]


async def online(request: web.Request) -> web.Response:
    """Signed: the project's operators who are online now (not away, not offline)."""
    project_id = request.match_info["project"]
    return ok({"project_id": project_id,
               "operators": await _operators(request.app[POOL], project_id, online_only=True)})


async def get_presence(request: web.Request) -> web.Response:
    """Mine ({status, chosen}); admins also get every operator's status."""
    me = actor(request)
    pool = request.app[POOL]
    row = await pool.fetchrow("select chosen, status from presence where operator_id = $1", me.operator_id)
    answer: dict[str, Any] = {"chosen": row["chosen"] if row else "online", "status": row["status"] if row else "offline"}
    if me.is_admin:
        answer["operators"] = await _operators(pool, me.project_id, online_only=False)
    return ok(answer)


async def put_presence(request: web.Request) -> web.Response:
    """The app's switch: {"status": "online" | "away" | "offline"}."""
    me = actor(request)
    body = await read_json(request)
    chosen = body.get("status")
    if chosen not in STATUSES:
        raise Rejected(422, "status_invalid", "status is online, away or offline.")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await conn.execute(
            """insert into presence (operator_id, project_id, chosen) values ($1, $2, $3)
               on conflict (operator_id) do update set chosen = excluded.chosen""",
            me.operator_id, me.project_id, chosen)
        await settle(conn, request.app[STORE], [me.operator_id], grace_seconds())
        status = await conn.fetchval("select status from presence where operator_id = $1", me.operator_id)
    return ok({"chosen": chosen, "status": status})


ROUTES = [
    ("POST", "/internal/presence/heartbeats", heartbeats),
    ("GET", "/internal/presence/{project}", online),
    ("GET", "/api/presence", get_presence),
    ("PUT", "/api/presence", put_presence),
]
