"""A project's working hours: the admin API, the events an edit appends, and the
boundary loop that publishes availability when the hours begin or end.

- `schedules` holds one row per project (the normalised body, `saved`, and the next
  instant the chat opens or closes). The row is the project's lock: an edit takes it FOR
  UPDATE, the timer consumer FOR SHARE, the boundary loop FOR UPDATE SKIP LOCKED, and
  every append to the stream `schedule-<project>` happens while it is held - so one
  project's events never race for a stream version and two replicas never publish the
  same boundary.
- An edit (PUT) stores the schedule, moves the next boundary, recomputes the project's
  pending timers (timers.py) and appends `schedule.updated` and
  `schedule.availability_changed` (reason edit), all in one transaction.
- A boundary is published exactly once: the loop claims rows whose `next_boundary` has
  come, appends `schedule.availability_changed` (reason boundary) with an event id and
  command id derived from (project, boundary instant), and moves `next_boundary` on, in
  one transaction. If the service was down across several boundaries, one event says
  how things stand now."""
from __future__ import annotations

import asyncio
import logging
import re
import uuid
from datetime import datetime, timezone
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import Counter

from parley import audit, working_hours as wh
from parley.actor import admin_of
from parley.envelope import Event
from parley.eventstore import EventStore
from parley.http import Rejected, ok, read_json
from parley.logs import new_correlation_id
from parley.service import POOL, STORE

from scheduler import timers
from scheduler.schedule_rows import current_schedule, locked_schedule, now, parse_stored

log = logging.getLogger(__name__)

PUBLISHED = Counter("parley_schedule_availability_total", "schedule.availability_changed appended", ["reason"])

NAMESPACE = uuid.UUID("6a3c1f1e-2b7d-4f3a-9a51-6d0c5e1f8b20")
PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")   # the registry's rule
POLL_SECONDS = 0.5
BATCH = 50


def schedule_stream(project_id: str) -> str:
    return f"schedule-{project_id}"


def iso(at: datetime | None) -> str | None:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if at is not None else None


def next_boundary(s: wh.Schedule, at: datetime) -> datetime | None:
    return wh.next_change(s, at)


def availability(s: wh.Schedule, at: datetime) -> dict[str, Any]:
    return {"open": wh.is_open(s, at), "next_open_at": iso(wh.next_open_at(s, at))}


async def append_to_project(store: EventStore, conn: asyncpg.Connection, project_id: str, events: list[Event], *,
                            command_id: str | None = None, result: dict | None = None) -> None:
    """Append to `schedule-<project>`; the caller holds the project's row FOR UPDATE."""
    stream = schedule_stream(project_id)
    version = await conn.fetchval("select coalesce(max(stream_version), 0) from events where stream_id = $1", stream)
    await store.append(events, version, command_id=command_id, result=result, conn=conn)


def availability_event(project_id: str, s: wh.Schedule, at: datetime, reason: str, *, correlation_id: str,
                       event_id: str | None = None, causation_id: str | None = None) -> Event:
    data = {"project_id": project_id, **availability(s, at), "reason": reason}
    kwargs = {"id": event_id} if event_id else {}
    return Event(type="schedule.availability_changed", stream_id=schedule_stream(project_id), data=data,
                 correlation_id=correlation_id, causation_id=causation_id, project_id=project_id, **kwargs)


# ---- the API -------------------------------------------------------------------------

def _admin(request: web.Request) -> tuple[str, str]:
    """(operator id, project) of the admin on this (signed) call."""
    me = admin_of(request, "Only an admin may see or change the working hours.")
    if not PROJECT_ID.fullmatch(me.project_id):
        raise Rejected(401, "unauthenticated", "No operator on this request.")
    return me.id, me.project_id


async def get_schedule(request: web.Request) -> web.Response:
    _, project_id = _admin(request)
    return ok(wh.to_json(await current_schedule(request.app[POOL], project_id)))


async def internal_schedule(request: web.Request) -> web.Response:
    """The normalised schedule of any project (the default when none was saved), for the
    gateway's widget config. Signed calls only, like every route here."""
    project_id = request.match_info["project"]
    if not PROJECT_ID.fullmatch(project_id):
        raise Rejected(404, "not_found", "No such project.")
    return ok(wh.to_json(await current_schedule(request.app[POOL], project_id)))


def _command_id(request: web.Request, project_id: str, operator_id: str) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 8 <= len(key) <= 128 or not (key.isascii() and key.isprintable()):
        raise Rejected(422, "idempotency_key_invalid", "Idempotency-Key is 8-128 printable ASCII characters.")
    return f"schedule:{project_id}:{operator_id}:{key}"


async def put_schedule(request: web.Request) -> web.Response:
    operator_id, project_id = _admin(request)
    body = await read_json(request)
    try:
        schedule = wh.parse(body)
    except wh.ScheduleInvalid as e:
        raise Rejected(422, e.code, e.message) from None
    normalised = wh.to_json(schedule)
    command_id = _command_id(request, project_id, operator_id)
    pool, store = request.app[POOL], request.app[STORE]
    async with pool.acquire() as conn, conn.transaction():
        if command_id is not None:
            first = await conn.fetchval("select result from commands where command_id = $1", command_id)
            if first is not None:
                return ok(first)
        await locked_schedule(conn, project_id, share=False)
        row = await conn.fetchrow("select schedule, saved from schedules where project_id = $1", project_id)
        if row["saved"] and row["schedule"] == normalised:
            return ok(normalised)      # the same schedule again: nothing changes, nothing is appended
        at = now()
        await conn.execute(
            """update schedules set schedule = $2, saved = true, next_boundary = $3, updated_at = now(),
                      updated_by = $4 where project_id = $1""",
            project_id, normalised, next_boundary(schedule, at), operator_id)
        await timers.recompute_project(conn, request.app, project_id, schedule)
        correlation = new_correlation_id()
        updated = Event(type="schedule.updated", stream_id=schedule_stream(project_id),
                        data={"project_id": project_id, "schedule": normalised}, correlation_id=correlation,
                        project_id=project_id)
        changed = availability_event(project_id, schedule, at, "edit", correlation_id=correlation,
                                     causation_id=updated.id)
        await append_to_project(store, conn, project_id, [updated, changed], command_id=command_id,
                                result=normalised)
        await audit.record(store, conn, project_id, operator_id, "settings.hours", "hours",
                           beside=schedule_stream(project_id), open=changed.data["open"])
    PUBLISHED.labels("edit").inc()
    log.info("schedule saved", extra={"project_id": project_id, "open": changed.data["open"]})
    return ok(normalised)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/project/schedule", get_schedule)
    app.router.add_put("/api/project/schedule", put_schedule)
    app.router.add_get("/internal/schedules/{project}", internal_schedule)


# ---- the boundary loop ---------------------------------------------------------------

def boundary_id(project_id: str, boundary: datetime) -> str:
    return str(uuid.uuid5(NAMESPACE, f"boundary:{project_id}:{iso(boundary)}"))


async def publish_due_boundaries(pool: asyncpg.Pool, store: EventStore, batch: int = BATCH) -> int:
    """One pass: every project whose next boundary has come gets one
    schedule.availability_changed (reason boundary). Returns how many were published."""
    published = 0
    async with pool.acquire() as conn, conn.transaction():
        # Due by the module's one clock (now()), the one the boundaries are computed with.
        rows = await conn.fetch(
            """select project_id, schedule, next_boundary from schedules where next_boundary <= $2
               order by next_boundary limit $1 for update skip locked""", batch, now())
        # several projects' streams in one transaction: shard locks in ascending order
        for row in await store.in_shard_order(list(rows), lambda r: schedule_stream(r["project_id"]), conn):
            project_id, boundary = row["project_id"], row["next_boundary"]
            schedule = parse_stored(row["schedule"])
            at = max(now(), boundary)
            event_id = boundary_id(project_id, boundary)
            async with conn.transaction():   # a savepoint: one project's failure keeps the others
                try:
                    event = availability_event(project_id, schedule, at, "boundary", event_id=event_id,
                                               correlation_id=new_correlation_id())
                    await append_to_project(store, conn, project_id, [event], command_id=f"boundary:{event_id}",
                                            result={"event_id": event_id})
                    published += 1
                except asyncpg.UniqueViolationError:
                    log.warning("boundary already published", extra={"project_id": project_id,
                                                                      "boundary": iso(boundary)})
            await conn.execute("update schedules set next_boundary = $2 where project_id = $1",
                               project_id, next_boundary(schedule, at))
    for _ in range(published):
        PUBLISHED.labels("boundary").inc()
    return published


def boundary_loop(app: web.Application):
    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not await publish_due_boundaries(app[POOL], app[STORE]):
                try:
                    await asyncio.wait_for(stop.wait(), POLL_SECONDS)
                except asyncio.TimeoutError:
                    pass
    return run
