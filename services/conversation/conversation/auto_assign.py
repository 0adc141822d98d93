"""Acknowledged auto-assignment, the I/O around offers.py (issue 13, item 2).

- Settings per project (`assignment_settings`; `GET|PUT /api/project/assignment`,
  admins): mode, how long an offer stands, capacities for least_busy.
- Who is online comes from the registry (`GET /internal/presence/{project}`), asked when
  an offer is decided; the registry unreachable means nobody (the conversation waits in
  New, and the next sweep tries again).
- The sweep (every SWEEP_SECONDS, any number of replicas) finds new, unclaimed
  conversations with no offer standing in projects that auto-assign, and offers each
  to the next operator `offers.choose` names - right after a conversation starts, and
  when someone comes online while conversations wait. One that every online operator
  already let expire this round waits `round_pause_seconds` after its last offer ended,
  then a new round starts with the next operator (`offers.decide_offer(new_round=True)`).
  Two replicas offering the same conversation: optimistic concurrency lets one append;
  the other re-decides on the offer now standing and appends nothing.
- The offer's timeout is the scheduler's durable timer (scheduler/offer_timers.py),
  armed by `assignment.offered`; when it fires the scheduler calls
  `POST /internal/conversations/{id}/offers/{offer_id}/expire`, whose command id is the
  offer id: the offer expires once and the next operator is offered it in the same
  append, whatever the retries and restarts."""
from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from parley import audit, internal_auth
from parley.config import env
from parley.http import Rejected, id_in_path, ok, read_json
from parley.service import POOL, STORE
from parley.service_client import ServiceClient, new_session, path

from conversation import commands, offers
from conversation.routes import conversation_id_of, operator_of, operator_route

log = logging.getLogger(__name__)


@dataclass
class Tuning:
    sweep_seconds: float = 1.0
    batch: int = 100
    # After a round in which every online operator let the offer expire: how long the
    # conversation waits before they are all asked again (a support lead's "nobody is
    # left waiting", without a pop-up in everyone's face the moment they dismissed one).
    round_pause_seconds: float = 30.0


TUNING = web.AppKey("auto_assign_tuning", Tuning)
REGISTRY = web.AppKey("auto_assign_registry", dict)   # {"client": ServiceClient}, set at start


async def load_settings(pool: asyncpg.Pool | asyncpg.Connection, project_id: str) -> offers.Settings:
    raw = await pool.fetchval("select settings from assignment_settings where project_id = $1", project_id)
    return offers.parse_settings(raw) if raw else offers.Settings()


async def online(app: web.Application, project_id: str) -> list[offers.Candidate] | None:
    """The project's operators online now (not away), or None when the registry cannot say."""
    try:
        answer = await app[REGISTRY]["client"].call("GET", path("internal", "presence", project_id))
    except Rejected as e:
        log.warning("presence unavailable", extra={"project_id": project_id, "error": e.message})
        return None
    if answer.status != 200 or not isinstance(answer.body, dict):
        return None
    return [offers.Candidate(o["id"], o["name"], o.get("avatar_url")) for o in answer.body.get("operators", [])]


async def last_offered(pool: asyncpg.Pool, project_id: str) -> str | None:
    return await pool.fetchval(
        """select last_offered_to::text from conversations where project_id = $1 and last_offered_at is not null
           order by last_offered_at desc limit 1""", project_id)


async def loads(pool: asyncpg.Pool, project_id: str) -> dict[str, int]:
    """Each operator's open conversations plus the offers standing for them."""
    rows = await pool.fetch(
        """select who::text, count(*) as n from (
               select assignee_id as who from conversations where project_id = $1 and status = 'in_work'
               union all
               select offered_to from conversations where project_id = $1 and offer_id is not null) w
           group by who""", project_id)
    return {r["who"]: r["n"] for r in rows}


@dataclass(frozen=True)
class Inputs:
    """What an offer decision reads besides the conversation itself."""
    settings: offers.Settings
    online: list[offers.Candidate]
    last_offered: str | None
    load: dict[str, int]

    def next_for(self, tried: tuple[str, ...]) -> offers.Candidate | None:
        return offers.choose(self.settings, self.online, tried=tried, last_offered=self.last_offered, load=self.load)


async def inputs(app: web.Application, project_id: str, settings: offers.Settings | None = None,
                 candidates: list[offers.Candidate] | None = None) -> Inputs:
    pool = app[POOL]
    settings = settings or await load_settings(pool, project_id)
    if candidates is None and settings.mode != "manual":
        candidates = await online(app, project_id)
    return Inputs(settings, candidates or [], await last_offered(pool, project_id),
                  await loads(pool, project_id) if settings.mode == "least_busy" else {})


async def offer(app: web.Application, conversation_id: str, given: Inputs, *, new_round: bool = False) -> int:
    """Offer one waiting conversation to the next operator (of a new round: any online
    one); how many events it appended."""
    offer_id = str(uuid.uuid4())

    def decide(s):
        to = given.next_for(() if new_round else s.offered_ids) if s else None
        return offers.decide_offer(s, to, offer_id, given.settings, new_round=new_round)
    outcome = await commands.run(app[STORE], f"offer:{offer_id}", conversation_id, decide)
    return len(outcome.events)


async def sweep(app: web.Application) -> int:
    """One pass: offers for the waiting conversations of projects that auto-assign."""
    pool = app[POOL]
    tuning = app[TUNING]
    # round_due: the last offer ended (its seconds ran out) a round pause ago or more.
    rows = await pool.fetch(
        """select c.id::text, c.project_id, s.settings, coalesce(k.state->'offered_ids', '[]'::jsonb) as tried,
                  c.last_offered_at is null or c.last_offered_at < now() - make_interval(
                      secs => (s.settings->>'offer_seconds')::float + $2) as round_due
           from conversations c join assignment_settings s on s.project_id = c.project_id
           left join conversation_state k on k.conversation_id = c.id
           where c.status = 'new' and c.assignee_id is null and c.offer_id is null
             and s.settings->>'assignment_mode' <> 'manual'
           order by c.started_at limit $1""", tuning.batch, tuning.round_pause_seconds)
    by_project: dict[str, Inputs] = {}
    offered = 0
    for row in rows:
        project_id = row["project_id"]
        if project_id not in by_project:
            by_project[project_id] = await inputs(app, project_id, offers.parse_settings(row["settings"]))
        given = by_project[project_id]
        tried = tuple(row["tried"] or ())
        new_round = given.next_for(tried) is None
        if new_round and (not row["round_due"] or given.next_for(()) is None):
            continue      # this round is over (or nobody is online): it waits in New for now
        try:
            if await offer(app, row["id"], given, new_round=new_round):
                offered += 1
                by_project[project_id] = await inputs(app, project_id, given.settings, given.online)
        except Exception:
            log.exception("offer failed; the next sweep tries again", extra={"conversation_id": row["id"]})
    return offered


def sweep_loop(app: web.Application):
    async def loop(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await sweep(app)
            except (OSError, asyncpg.PostgresError) as e:
                log.warning("offer sweep failed", extra={"error": str(e)})
            try:
                await asyncio.wait_for(stop.wait(), app[TUNING].sweep_seconds)
            except asyncio.TimeoutError:
                pass
    return loop


# ---- HTTP ----------------------------------------------------------------------

async def expire(request: web.Request) -> web.Response:
    """The scheduler's offer timer fired: expire exactly this offer (command id = the
    offer id: a second call appends nothing) and offer the conversation to the next
    online operator in the same append."""
    conversation_id = conversation_id_of(request)
    offer_id = id_in_path(request, "No such offer.", "offer_id")
    project_id = await request.app[POOL].fetchval("select project_id from conversations where id = $1",
                                                  conversation_id)
    if project_id is None:
        raise Rejected(404, "not_found", "Conversation not found.")
    given = await inputs(request.app, project_id)
    next_offer_id = str(uuid.uuid4())
    outcome = await commands.run(request.app[STORE], f"expire:{offer_id}", conversation_id,
                                 lambda s: offers.decide_expire(s, offer_id, given.next_for(s.offered_ids) if s else None,
                                                                next_offer_id, given.settings))
    events = list(outcome.events)
    following = next((e.data for e in events if e.type == "assignment.offered"), None)
    return ok({"conversation_id": conversation_id, "expired": bool(events),
               "offered_to": following["operator_id"] if following else None})


async def accept(request: web.Request) -> web.Response:
    """The offered operator's Accept: {"offer_id"}."""
    body = await read_json(request)
    return await operator_route(request, "accept", lambda s, me, _: offers.decide_accept(s, me, body.get("offer_id")))


def _admin(request: web.Request):
    me = operator_of(request)
    if not me.is_admin:
        raise Rejected(403, "admin_only", "Only an admin may see or change how conversations are assigned.")
    return me


async def get_settings(request: web.Request) -> web.Response:
    me = _admin(request)
    return ok(offers.settings_json(await load_settings(request.app[POOL], me.project_id)))


async def put_settings(request: web.Request) -> web.Response:
    me = _admin(request)
    settings = offers.parse_settings(await read_json(request))
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await conn.execute(
            """insert into assignment_settings (project_id, settings) values ($1, $2)
               on conflict (project_id) do update set settings = excluded.settings""",
            me.project_id, offers.settings_json(settings))
        await audit.record(request.app[STORE], conn, me.project_id, me.id, "settings.assignment", "assignment",
                           mode=settings.mode)
    return ok(offers.settings_json(settings))


ROUTES = [
    ("POST", "/internal/conversations/{id}/offers/{offer_id}/expire", expire),
    ("POST", "/api/conversations/{id}/accept", accept),
    ("GET", "/api/project/assignment", get_settings),
    ("PUT", "/api/project/assignment", put_settings),
]


async def registry_client(app: web.Application):
    """Cleanup context: the signed client that asks the registry who is online."""
    async with new_session() as session:
        app[REGISTRY]["client"] = ServiceClient("operator-registry", env("PARLEY_OPERATOR_REGISTRY_URL").rstrip("/"),
                                                session, internal_auth.secret())
        yield


def setup(app: web.Application) -> None:
    if TUNING not in app:
        app[TUNING] = Tuning()
    app[REGISTRY] = {}
    app.cleanup_ctx.append(registry_client)
    for method, route, handler in ROUTES:
        app.router.add_route(method, route, handler)
