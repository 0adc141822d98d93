"""Durable timers: "unanswered" (a new conversation nobody took) and "idle" (no message
either way), counted in working time (docs/working-hours.md, Timers).

- The consumer of conversation.events (`on_conversation_event`, run by the backbone's
  ConsumerRunner) creates, moves and cancels rows in `timers` in the transaction that
  stores its Kafka offset. A timer's id is uuid5(conversation id, kind, generation), the
  generation being the stream version of the event that set it: a redelivered event
  sets the same row again, which changes nothing.
- A row's `due_at` is `add_working_time(schedule, anchor, N)` under the project's
  current schedule; an edit recomputes every pending timer of the project in its own
  transaction (`recompute_project`), and the fire loop checks it again before firing.
- The fire loop claims due rows with FOR UPDATE SKIP LOCKED. "unanswered" appends
  `schedule.unanswered_alert` - event id and command id = the timer id, on its own
  stream `schedule-timer-<id>` at version 1 - and marks the row fired in the same
  transaction: it is published once, whatever the restarts and replicas. "idle" asks the
  conversation service to close the conversation (`POST
  /internal/conversations/{id}/close-idle`, Idempotency-Key = the timer id): the claim
  is a lease (due_at moves ahead), the call runs outside the transaction, and a retry
  after a crash repeats the same idempotent command."""
from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from aiohttp import web
from prometheus_client import Counter, Gauge

from parley import internal_auth
from parley import working_hours as wh
from parley.config import env, positive_seconds
from parley.contract import id_of
from parley.envelope import Event
from parley.eventstore import ConcurrencyConflict, EventStore
from parley.http import Rejected
from parley.logs import new_correlation_id
from parley.service import POOL, STORE
from parley.service_client import ServiceClient, new_session, path

from scheduler import offer_timers
from scheduler.schedule_rows import current_schedule, locked_schedules, now

log = logging.getLogger(__name__)

FIRED = Counter("parley_scheduler_timers_fired_total", "Timers fired", ["kind", "outcome"])
# Overdue timers: how late the oldest due timer of the last fire pass was, and when that
# pass ran (a stuck or dead loop stops moving it). The alert rules read both.
OVERDUE = Gauge("parley_scheduler_timer_overdue_seconds", "How late the oldest due timer was at the last fire pass")
LAST_PASS = Gauge("parley_scheduler_fire_pass_timestamp_seconds", "When the timer fire loop last looked for due timers")

NAMESPACE = uuid.UUID("0f2b9a64-5d1e-4c8e-8b7a-3e9d2c1a4f60")
MINUTE_SECONDS_VAR = "PARLEY_SCHEDULER_MINUTE_SECONDS"


def minute_seconds() -> float:
    """How many seconds a timer's "minute" lasts: 60, shortened by the tests."""
    return positive_seconds(MINUTE_SECONDS_VAR)


@dataclass
class Tuning:
    poll_interval: float = 0.5
    batch: int = 50
    lease: float = 30.0          # an idle close in flight is retried after this long
    minute: float = 60.0         # seconds in a timer minute

    @classmethod
    def from_env(cls) -> "Tuning":
        minute = minute_seconds()
        return cls(minute=minute, lease=30.0 * minute / 60)   # the lease follows the timers' time scale


TUNING = web.AppKey("scheduler_tuning", Tuning)
CONVERSATION = web.AppKey("scheduler_conversation", dict)   # {"client": ServiceClient}, set at start


def timer_id(conversation_id: str, kind: str, generation: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{conversation_id}:{kind}:{generation}"))


def setting(s: wh.Schedule, kind: str) -> int | None:
    return s.unanswered_alert_minutes if kind == "unanswered" else s.idle_close_hours


def due_for(s: wh.Schedule, kind: str, anchor: datetime, minute: float) -> datetime | None:
    n = setting(s, kind)
    if n is None:
        return None                 # switched off: the row waits, an edit may switch it on again
    seconds = n * minute * (60 if kind == "idle" else 1)
    return wh.add_working_time(s, anchor, timedelta(seconds=seconds))


# ---- the consumer ----------------------------------------------------------------------

# The events the consumer acts on (ConsumerSpec.types). Not the messages: the idle timer
# is not moved on every message (issue 21: that was a row written and one cancelled per
# message, kept for ever). When it fires, the conversation service tells whether a
# message came after the event that set it, and it is set again from the last one
# (_close_idle): once per idle period of a conversation that is still going.
EVENT_TYPES = frozenset({"chat.conversation_started", "status.changed", "assignment.taken", "assignment.assigned",
                         "assignment.offered", "assignment.accepted", "assignment.offer_expired"})


# What each event does to a conversation's unanswered and idle timers, in order.
def timer_moves(event: Event) -> list[tuple[str, bool]]:
    """(kind, True: set a timer from this event / False: cancel the pending one)."""
    t = event.type
    if t == "chat.conversation_started":
        return [("unanswered", True), ("idle", True)]
    if t in ("assignment.taken", "assignment.assigned"):
        return [("unanswered", False)]
    if t == "status.changed":
        status = event.data.get("status")
        if status == "closed":
            return [("unanswered", False), ("idle", False)]
        if status == "in_work":      # taken, or reopened: idle counts from here
            return [("unanswered", False), ("idle", True)]
        if status == "new":          # reopened with nobody on it: waiting again
            return [("unanswered", True), ("idle", True)]
    return []


# Set-based: a batch's timer moves in two statements. Only each (conversation, kind)'s
# last move counts - a timer set and moved again in the same batch could never fire in
# between - so the pending timers are cancelled but the one kept, then the kept ones armed.
_CANCEL_MANY = """
update timers t set status = 'cancelled', finished_at = now()
from unnest($1::uuid[], $2::text[], $3::uuid[]) as x(conversation_id, kind, keep)
where t.conversation_id = x.conversation_id and t.kind = x.kind and t.status = 'pending'
  and (x.keep is null or t.id <> x.keep)
"""
_ARM_MANY = """
insert into timers (id, project_id, conversation_id, kind, generation, anchor, due_at)
select * from unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::int[], $6::timestamptz[], $7::timestamptz[])
on conflict (id) do nothing
"""


async def _arm(conn: asyncpg.Connection, armed: list[tuple[str, str, int, str, datetime, datetime | None]]) -> None:
    """Set timers: (conversation id, kind, generation, project id, anchor, due)."""
    rows = [(timer_id(cid, kind, generation), project, cid, kind, generation, anchor, due)
            for cid, kind, generation, project, anchor, due in armed]
    await conn.execute(_ARM_MANY, *(list(column) for column in zip(*rows)))   # one array per column


async def on_conversation_events(conn: asyncpg.Connection, events: list[Event], minute: float | None = None) -> None:
    """A partition batch of conversation.events (the consumer's handle_batch): offers'
    timers event by event (rare), the unanswered and idle timers in a few statements for
    the whole batch (issue 21: they were two per visitor message)."""
    minute = minute if minute is not None else minute_seconds()
    last: dict[tuple[str, str], tuple[Event, bool]] = {}
    for event in events:
        if not event.project_id or not event.stream_id.startswith("conversation-"):
            continue
        conversation_id = id_of(event.stream_id)
        if event.type.startswith("assignment.") or event.type == "status.changed":   # auto-assignment's offers
            await offer_timers.on_conversation_event(conn, event, minute,
                                                     timer_id(conversation_id, "offer", event.stream_version))
        for kind, arm in timer_moves(event):
            last[(conversation_id, kind)] = (event, arm)
    if not last:
        return
    armed = [(cid, kind, event) for (cid, kind), (event, arm) in last.items() if arm]
    schedules = await locked_schedules(conn, {event.project_id for _, _, event in armed}, share=True)
    tids = {(cid, kind): timer_id(cid, kind, event.stream_version) for cid, kind, event in armed}
    moves = list(last)
    await conn.execute(_CANCEL_MANY, [cid for cid, _ in moves], [kind for _, kind in moves],
                       [tids.get(move) for move in moves])
    if armed:
        anchors = [datetime.fromisoformat(event.occurred_at) for _, _, event in armed]
        await _arm(conn, [(cid, kind, event.stream_version, event.project_id, anchor,
                           due_for(schedules[event.project_id], kind, anchor, minute))
                          for (cid, kind, event), anchor in zip(armed, anchors)])


async def on_conversation_event(conn: asyncpg.Connection, event: Event, minute: float | None = None) -> None:
    """One event on its own (tests; the consumer gives batches)."""
    await on_conversation_events(conn, [event], minute)


async def recompute_project(conn: asyncpg.Connection, app: web.Application, project_id: str,
                            schedule: wh.Schedule) -> None:
    """After an edit, in its transaction: every pending timer of the project follows the
    new schedule and settings."""
    minute = app[TUNING].minute if TUNING in app else minute_seconds()
    rows = await conn.fetch("select id, kind, anchor from timers where project_id = $1 and status = 'pending'"
                            " and kind <> 'offer' for update", project_id)   # offers count wall time
    if rows:
        await conn.executemany("update timers set due_at = $2 where id = $1",
                               [(r["id"], due_for(schedule, r["kind"], r["anchor"], minute)) for r in rows])


# ---- firing --------------------------------------------------------------------------

def alert_stream(tid: str) -> str:
    return f"schedule-timer-{tid}"


async def _finish(conn: asyncpg.Connection, tid, status: str, outcome: dict) -> None:
    await conn.execute("update timers set status = $2, outcome = $3, finished_at = now() where id = $1",
                       tid, status, outcome)


async def fire_due(app: web.Application) -> int:
    """One pass of the fire loop; returns how many due rows it handled."""
    pool: asyncpg.Pool = app[POOL]
    store: EventStore = app[STORE]
    tuning: Tuning = app[TUNING]
    idle: list[asyncpg.Record] = []
    offers: list[asyncpg.Record] = []
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """select * from timers where status = 'pending' and due_at <= now()
               order by due_at limit $1 for update skip locked""", tuning.batch)
        LAST_PASS.set_to_current_time()
        OVERDUE.set(max(0.0, (now() - min(r["due_at"] for r in rows)).total_seconds()) if rows else 0.0)
        # Each alert appends to its own stream, so this transaction takes several shards'
        # commit-order locks: always in ascending shard order, so two replicas' passes can
        # never wait on each other in a cycle.
        rows = await store.in_shard_order(list(rows), lambda r: alert_stream(str(r["id"])), conn)
        for row in rows:
            if row["kind"] == "offer":      # wall time, a lease like idle's: offer_timers.py
                await conn.execute(
                    "update timers set due_at = now() + make_interval(secs => $2), attempts = attempts + 1"
                    " where id = $1", row["id"], tuning.lease)
                offers.append(row)
                continue
            schedule = await current_schedule(conn, row["project_id"])
            due = due_for(schedule, row["kind"], row["anchor"], tuning.minute)
            if due is None or (due > now() and row["attempts"] == 0):
                await conn.execute("update timers set due_at = $2 where id = $1", row["id"], due)
                continue
            if row["kind"] == "unanswered":
                await _alert(conn, store, row, setting(schedule, "unanswered"))
            else:
                await conn.execute(
                    "update timers set due_at = now() + make_interval(secs => $2), attempts = attempts + 1"
                    " where id = $1", row["id"], tuning.lease)
                idle.append(row)
    for row in idle:
        await _close_idle(app, row)
    for row in offers:
        await _expire_offer(app, row)
    return len(rows)


async def _expire_offer(app: web.Application, row: asyncpg.Record) -> None:
    finished = await offer_timers.expire(app, app[CONVERSATION]["client"], row)
    if finished is None:
        FIRED.labels("offer", "retry").inc()
        return
    status, outcome = finished
    async with app[POOL].acquire() as conn:
        await conn.execute(
            "update timers set status = $2, outcome = $3, finished_at = now() where id = $1 and status = 'pending'",
            row["id"], status, outcome)
    FIRED.labels("offer", outcome["outcome"]).inc()
    log.info("offer timer fired", extra={"timer_id": str(row["id"]), "conversation_id": str(row["conversation_id"]),
                                         **outcome})


async def _alert(conn: asyncpg.Connection, store: EventStore, row: asyncpg.Record, minutes: int) -> None:
    tid = str(row["id"])
    event = Event(id=tid, type="schedule.unanswered_alert", stream_id=alert_stream(tid),
                  data={"project_id": row["project_id"], "conversation_id": str(row["conversation_id"]),
                        "minutes": minutes},
                  correlation_id=new_correlation_id(), causation_id=tid, project_id=row["project_id"])
    try:
        async with conn.transaction():        # a savepoint: a second firing fails alone
            await store.append([event], 0, command_id=f"timer:{tid}", result={"event_id": tid}, conn=conn)
        outcome = "alerted"
    except (ConcurrencyConflict, asyncpg.UniqueViolationError):
        outcome = "already_fired"          # cannot happen while the row is claimed; kept as a guard
    await _finish(conn, row["id"], "fired", {"outcome": outcome})
    FIRED.labels("unanswered", outcome).inc()
    log.info("unanswered alert", extra={"timer_id": tid, "conversation_id": str(row["conversation_id"]),
                                        "outcome": outcome})


async def _close_idle(app: web.Application, row: asyncpg.Record) -> None:
    tid, cid = str(row["id"]), str(row["conversation_id"])
    schedule = await current_schedule(app[POOL], row["project_id"])
    hours = setting(schedule, "idle") or 1
    try:
        answer = await app[CONVERSATION]["client"].call(
            "POST", path("internal", "conversations", cid, "close-idle"),
            json={"hours": hours, "idle_since_version": row["generation"], "idle_since": row["anchor"].isoformat()},
            headers={"Idempotency-Key": tid})
    except Rejected as e:     # unreachable: the lease brings it back
        log.warning("idle close not delivered; will retry", extra={"timer_id": tid, "error": e.message})
        FIRED.labels("idle", "retry").inc()
        return
    if answer.status >= 500:
        log.warning("idle close failed; will retry", extra={"timer_id": tid, "status": answer.status})
        FIRED.labels("idle", "retry").inc()
        return
    active = (answer.body or {}).get("active") if answer.status == 200 else None
    if answer.status == 200 and active:
        status, outcome = "fired", {"outcome": "active", "since_version": active["version"]}
    elif answer.status == 200:
        status, outcome = "fired", {"outcome": "closed" if (answer.body or {}).get("closed") else "unchanged"}
    else:
        status, outcome = "cancelled", {"outcome": "refused", "status": answer.status,
                                        "error": (answer.body or {}).get("error")}
    async with app[POOL].acquire() as conn, conn.transaction():
        finished = await conn.execute(
            "update timers set status = $2, outcome = $3, finished_at = now() where id = $1 and status = 'pending'",
            row["id"], status, outcome)
        if active and finished == "UPDATE 1":
            # A message came after the event that set it: idle counts again from the last one.
            anchor = datetime.fromisoformat(active["occurred_at"])
            await _arm(conn, [(cid, "idle", active["version"], row["project_id"], anchor,
                               due_for(schedule, "idle", anchor, app[TUNING].minute))])
    FIRED.labels("idle", outcome["outcome"]).inc()
    log.info("idle timer fired", extra={"timer_id": tid, "conversation_id": cid, **outcome})


def fire_loop(app: web.Application):
    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not await fire_due(app):
                try:
                    await asyncio.wait_for(stop.wait(), app[TUNING].poll_interval)
                except asyncio.TimeoutError:
                    pass
    return run


async def conversation_client(app: web.Application):
    """Cleanup context: the signed client the idle timer calls the conversation service with."""
    async with new_session() as session:
        app[CONVERSATION]["client"] = ServiceClient("conversation", env("PARLEY_CONVERSATION_URL").rstrip("/"),
                                                    session, internal_auth.secret())
        yield


def setup(app: web.Application) -> None:
    if TUNING not in app:
        app[TUNING] = Tuning.from_env()
    app[CONVERSATION] = {}
    app.cleanup_ctx.append(conversation_client)
